"""``ControlClient``: the ``/_emulator`` control API over HTTPS, as any outside program would call it.

Programs that drive a twin (sfmigrate's demo and rehearsal, test harnesses) use this instead of reaching
into the world in-process, so what they see is what the twin publishes.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any


class ControlError(Exception):
    """The control API answered with an error (``status`` and the twin's ``code``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class ControlClient:
    def __init__(self, base_url: str, ca_bundle: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._context = ssl.create_default_context(cafile=ca_bundle)
        self._timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=self._timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read()).get("error") or {}
            except ValueError:
                error = {}
            raise ControlError(exc.code, str(error.get("code", "")), str(error.get("message", exc.reason))) from None

    def world(self) -> dict[str, Any]:
        """``GET /_emulator/world``: the whole observable world, with the verdict."""
        result: dict[str, Any] = self.call("GET", "/_emulator/world")
        return result

    def requests(self, since: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/_emulator/requests?since={int(since)}")
        return result

    def reset(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/_emulator/reset", {})
        return result

    def set_faults(self, spec: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/_emulator/faults", {"spec": spec})
        return result

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/_emulator/clock/advance", {"seconds": seconds})
        return result

    def principal_credentials(self, display_name: str) -> dict[str, str]:
        """A fresh client secret for one of the scenario's service principals (tenantId, clientId, clientSecret)."""
        result: dict[str, str] = self.call("POST", "/_emulator/principals/credentials", {"displayName": display_name})
        return result

    def set_node_health(self, node: str, unhealthy: str | None) -> dict[str, Any]:
        """Make ``node`` fail every upgrade's health check (``unhealthy`` is why), or heal it with None."""
        result: dict[str, Any] = self.call("POST", "/_emulator/nodes/health", {"node": node, "unhealthy": unhealthy})
        return result
