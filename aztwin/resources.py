"""ARM resource ids and the envelope every tracked resource shares."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from .wire import Request, Response, TwinError, ok

if TYPE_CHECKING:
    from .world import World

T = TypeVar("T")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$")


@dataclass(frozen=True)
class ResourceId:
    subscription: str
    resource_group: str
    namespace: str
    type: str
    name: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/{self.type}/{self.name}"
        )

    @property
    def key(self) -> str:
        return self.id.lower()

    @classmethod
    def parse(cls, text: str) -> "ResourceId":
        """Parse ``/subscriptions/s/resourceGroups/g/providers/NS/type/name``; anything else is a 400."""
        parts = [p for p in text.strip().split("/") if p]
        if (
            len(parts) != 8
            or parts[0].lower() != "subscriptions"
            or parts[2].lower() != "resourcegroups"
            or parts[4].lower() != "providers"
        ):
            raise TwinError(400, "LinkedInvalidPropertyId", f"Property id '{text}' is not a valid ARM resource id.")
        return cls(parts[1], parts[3], parts[5], parts[6], parts[7])


def resource_not_found(resource_type: str, resource_id: str) -> TwinError:
    """ARM's 404 for a tracked resource that does not exist (code ResourceNotFound, as ARM words it)."""
    rid = ResourceId.parse(resource_id)
    return TwinError(404, "ResourceNotFound",
                     f"The Resource '{resource_type}/{rid.name}' under resource group '{rid.resource_group}' was not found.")


def check_subscription_id(value: str) -> str:
    if not _GUID.match(value):
        raise TwinError(
            400, "InvalidSubscriptionId", f"The provided subscription identifier '{value}' is malformed or invalid."
        )
    return value


def check_name(value: str, what: str = "resource") -> str:
    if not _NAME.match(value):
        raise TwinError(400, "InvalidResourceName", f"The {what} name '{value}' is invalid.")
    return value


def scope_contains(outer: str, inner: str) -> bool:
    """True when ``inner`` is ``outer`` or below it (scopes compare case-insensitively, by segment)."""
    outer_parts = [p.lower() for p in outer.split("/") if p]
    inner_parts = [p.lower() for p in inner.split("/") if p]
    return inner_parts[: len(outer_parts)] == outer_parts


def new_guid() -> str:
    return str(uuid.uuid4())


def tracked_id(world: World, params: dict[str, str], namespace: str, type_: str, name_key: str = "name") -> ResourceId:
    """The id of a tracked resource addressed by a request; the subscription and group must exist."""
    subscription = world.subscription(params["sub"]).id
    group = world.resource_group(subscription, params["rg"]).name
    return ResourceId(subscription, group, namespace, type_, check_name(params[name_key]))


def location_of(body: dict[str, Any], default: str | None = None) -> str:
    location = body.get("location", default)
    if not isinstance(location, str) or not location:
        raise TwinError(400, "LocationRequired", "The location property is required for this definition.")
    return location.replace(" ", "").lower()


def tags_of(body: dict[str, Any]) -> dict[str, str]:
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise TwinError(400, "InvalidTagFormat", "The 'tags' property must be an object of strings.")
    return dict(tags)


def list_tracked(
    world: World, request: Request, action: str, items: Mapping[str, T], render: Callable[[T], dict[str, Any]],
) -> Response:
    """ARM list at subscription or resource-group scope (whichever the route names), authorised at that scope."""
    subscription = world.subscription(request.params["sub"]).id
    scope = f"/subscriptions/{subscription}"
    if "rg" in request.params:
        scope += f"/resourceGroups/{world.resource_group(subscription, request.params['rg']).name}"
    world.authorization.demand(request.principal, action, scope)
    prefix = scope.lower() + "/"
    return ok({"value": [render(item) for key, item in items.items() if key.startswith(prefix)]})
