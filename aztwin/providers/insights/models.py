"""The activity log: ARM's record of the writes it received (docs/twin.md, "Activity log").

Every management write that reached a provider with an authenticated caller is logged as Azure logs it: a
``Started`` event (``BeginRequest``) and its outcome (``EndRequest``): ``Succeeded`` (200/201), ``Accepted`` (202,
or any answer naming a long-running operation, then ``Succeeded``/``Failed`` when the operation ends) or ``Failed`` (level ``Error``, with the
answer's status and error in ``properties``). Event fields follow EventData
(https://learn.microsoft.com/en-us/rest/api/monitor/activity-logs/list). The log keeps the newest
``MAX_EVENTS`` events (Azure keeps 90 days; the twin bounds memory instead).

``$filter`` accepts what the REST docs allow and az sends: ``eventTimestamp ge '…'`` (required), optionally
``eventTimestamp le '…'``, and at most one of ``resourceGroupName``, ``resourceId``/``resourceUri``,
``resourceProvider``, ``correlationId``, plus ``caller`` and ``status``, each ``eq '…'`` joined by ``and``.
Anything else is Azure's 400 ("No other syntax is allowed"; the wording is the twin's).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...resources import new_guid
from ...wire import TwinError

if TYPE_CHECKING:
    from ...world import World

MAX_EVENTS = 5000
SUBJECTS = {"resourcegroupname": "resourceGroupName", "resourceid": "resourceId", "resourceuri": "resourceId",
            "resourceprovider": "resourceProviderName", "correlationid": "correlationId"}
EXTRAS = {"caller": "caller", "status": "status"}
_OPERATION_URL = re.compile(r"/(?:operations|operationResults)/([^/?]+)", re.IGNORECASE)
_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ge|le|gt|lt)\s+(?:'([^']*)'|(\S+))\s*$", re.IGNORECASE)


def _value(value: str) -> dict[str, str]:
    return {"value": value, "localizedValue": value}


def _parse_time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_filter(f"'{text}' is not a valid eventTimestamp.") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def bad_filter(detail: str) -> TwinError:
    return TwinError(400, "BadRequest", f"The $filter query parameter is invalid: {detail} The filter must be "
                     "eventTimestamp ge '<start>' [and eventTimestamp le '<end>'] [and resourceGroupName|resourceUri|"
                     "resourceProvider|correlationId eq '<value>'] [and caller eq '<value>'] [and status eq '<value>'].")


@dataclass
class Write:
    """What the log needs of one management write (decoded by the server from the request and its answer)."""

    method: str
    path: str
    status: int
    caller: str
    tenant: str
    client_request_id: str
    headers: dict[str, str]
    error: dict[str, Any] | None = None


def describe(method: str, path: str) -> tuple[str, str, str, str]:
    """(resourceId, resource group, provider namespace, operationName) of a management write's path."""
    parts = path.strip("/").split("/")
    group = parts[3] if len(parts) > 3 and parts[2].lower() == "resourcegroups" else ""
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return path, group, "Microsoft.Resources", f"Microsoft.Resources/{'resourceGroups' if group else 'subscriptions'}/write"
    index = len(lowered) - 1 - lowered[::-1].index("providers")
    namespace, rest = parts[index + 1], parts[index + 2:]
    action = ""
    if method == "POST" and len(rest) % 2 == 1:
        action, rest = rest[-1], rest[:-1]
    types = "/".join([namespace] + rest[0::2])
    resource_id = "/" + "/".join(parts[: index + 2] + rest)
    verb = f"{action}/action" if action else {"DELETE": "delete"}.get(method, "write")
    return resource_id, group, namespace, f"{types}/{verb}"


class ActivityLog:
    def __init__(self, world: World) -> None:
        self.world = world
        self.events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self.pending: dict[str, dict[str, Any]] = {}  # operation id -> its Accepted event (for the end event)

    def _event(self, base: dict[str, Any], status: str, name: str, when: str, level: str = "Informational",
               sub_status: str = "", properties: dict[str, Any] | None = None) -> dict[str, Any]:
        event_data_id = new_guid()
        event = {**base, "eventDataId": event_data_id, "eventName": _value(name), "status": _value(status),
                 "subStatus": _value(sub_status), "level": level, "eventTimestamp": when, "submissionTimestamp": when,
                 "properties": properties or {}}
        event["id"] = f"{base['resourceId']}/events/{event_data_id}/ticks/{int(self.world.now().timestamp() * 10**7)}"
        self.events.append(event)
        return event

    def record(self, write: Write) -> None:
        resource_id, group, namespace, operation = describe(write.method, write.path)
        subscription = write.path.strip("/").split("/")[1] if write.path.lower().startswith("/subscriptions/") else ""
        when = self.world.iso_now()
        base = {
            "authorization": {"action": operation, "scope": resource_id},
            "caller": write.caller, "channels": "Operation", "correlationId": new_guid(),
            "category": _value("Administrative"), "description": "", "operationId": new_guid(),
            "operationName": _value(operation), "resourceGroupName": group, "resourceId": resource_id,
            "resourceProviderName": _value(namespace), "resourceType": _value(operation.rsplit("/", 2 if operation.endswith("/action") else 1)[0]),
            "subscriptionId": subscription, "tenantId": write.tenant,
            "httpRequest": {"clientRequestId": write.client_request_id, "clientIpAddress": "127.0.0.1", "method": write.method},
        }
        self._event(base, "Started", "BeginRequest", when)
        if write.status >= 400:
            detail = {"statusCode": str(write.status), "statusMessage": str({"error": write.error} if write.error else "")}
            self._event(base, "Failed", "EndRequest", when, "Error", _sub_status(write.status), detail)
            return
        url = write.headers.get("Azure-AsyncOperation") or write.headers.get("Location") or ""
        found = _OPERATION_URL.search(url)
        accepted = write.status == 202 or found is not None  # a long-running write ends when its operation does
        self._event(base, "Accepted" if accepted else "Succeeded", "EndRequest", when,
                    sub_status={200: "OK", 201: "Created", 202: "Accepted", 204: "NoContent"}.get(write.status, ""),
                    properties={"statusCode": {200: "OK", 201: "Created", 202: "Accepted"}.get(write.status, str(write.status))})
        if found:
            self.pending[found.group(1)] = base

    def _settle(self) -> None:
        """Log the end of each long-running operation that has ended since the last look."""
        for operation_id, base in list(self.pending.items()):
            operation = self.world.operations.get(operation_id)
            if operation is None:
                del self.pending[operation_id]
            elif operation.done:
                del self.pending[operation_id]
                failed = operation.status != "Succeeded"
                self._event(base, operation.status, "EndRequest", operation.ended or self.world.iso_now(),
                            "Error" if failed else "Informational", properties={"error": operation.error} if operation.error else None)

    def query(self, subscription: str, filter_text: str, select: str = "") -> list[dict[str, Any]]:
        """The events of ``subscription`` matching ``filter_text``, newest first."""
        self._settle()
        start, end, equals = parse_filter(filter_text)
        found = []
        for event in reversed(self.events):
            when = _parse_time(event["eventTimestamp"])
            if event["subscriptionId"].lower() != subscription.lower() or when < start or (end and when > end):
                continue
            if all(_field(event, name).lower() == wanted.lower() for name, wanted in equals.items()):
                found.append(event)
        found.sort(key=lambda e: str(e["eventTimestamp"]), reverse=True)  # an operation's end is logged when seen
        if select:
            keep = {s.strip() for s in select.split(",") if s.strip()}
            found = [{k: v for k, v in e.items() if k in keep} for e in found]
        return found


def _sub_status(status: int) -> str:
    return {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            412: "PreconditionFailed", 429: "TooManyRequests"}.get(status, "InternalServerError" if status >= 500 else "")


def _field(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    return str(value.get("value", "")) if isinstance(value, dict) else str(value or "")


def parse_filter(text: str) -> tuple[dt.datetime, dt.datetime | None, dict[str, str]]:
    """(start, end, field -> value) of an activity log ``$filter``; a 400 for anything the docs do not allow."""
    if not text.strip():
        raise bad_filter("it is required.")
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    equals: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause)
        if not match:
            raise bad_filter(f"'{clause}' is not supported.")
        name, operator, value = match.group(1).lower(), match.group(2).lower(), match.group(3) if match.group(3) is not None else match.group(4)
        if name == "eventtimestamp" and operator in ("ge", "gt") and start is None:
            start = _parse_time(value)
        elif name == "eventtimestamp" and operator in ("le", "lt") and end is None:
            end = _parse_time(value)
        elif operator == "eq" and name in SUBJECTS and not any(k in equals for k in SUBJECTS.values()):
            equals[SUBJECTS[name]] = value
        elif operator == "eq" and name in EXTRAS and EXTRAS[name] not in equals:
            equals[EXTRAS[name]] = value
        else:
            raise bad_filter(f"'{clause}' is not supported.")
    if start is None:
        raise bad_filter("it must start the time range with eventTimestamp ge '<start>'.")
    return start, end, equals
