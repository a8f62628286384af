"""HTTP plumbing of the twin: requests, responses, error bodies and the route table.

Providers register handlers on a :class:`Router`; handlers take the world and a :class:`Request` and return a
:class:`Response` or raise a :class:`TwinError`, which the server renders in the wire format of the
surface that was called (ARM, Key Vault data plane, or OAuth).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from .providers.identity.models import Principal
    from .world import World

ARM = "arm"
KEYVAULT = "keyvault"
OAUTH = "oauth"
CONTROL = "control"
GRAPH = "graph"  # Microsoft Graph: ARM's error shape plus ``innerError`` (https://learn.microsoft.com/graph/errors)


class TwinError(Exception):
    """An error the twin answers with instead of a result."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details or []

    def body(self, style: str) -> dict[str, Any]:
        if style == OAUTH:
            return {"error": self.code, "error_description": self.message}
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        if style == GRAPH:
            request_id = str(uuid.uuid4())
            error["innerError"] = {"request-id": request_id, "client-request-id": request_id}
        return {"error": error}


def bad_request(message: str, code: str = "InvalidRequestContent") -> TwinError:
    return TwinError(400, code, message)


class CaseInsensitiveDict(dict[str, str]):
    """Header map with case-insensitive lookup (keys stored lower-case)."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__()
        for key, value in (items or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: CaseInsensitiveDict
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)
    principal: Principal | None = None  # once authenticated

    @classmethod
    def from_target(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes, base_url: str
    ) -> "Request":
        path, _, query_string = target.partition("?")
        from urllib.parse import unquote

        query = {k.lower(): v for k, v in parse_qsl(query_string, keep_blank_values=True)}
        return cls(method.upper(), unquote(path), query, CaseInsensitiveDict(headers), body, base_url)

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    @property
    def caller(self) -> Principal:
        """The authenticated principal (the server sets it before any ``authenticated`` route runs)."""
        if self.principal is None:
            raise TwinError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        return self.principal

    def json(self) -> Any:
        """The body as JSON; malformed input is a 400, never a 500."""
        if not self.body:
            raise bad_request("The request content was empty; a JSON body is required.")
        try:
            return json.loads(self.body)
        except RecursionError as exc:  # absurdly deep nesting is bad input too, not a twin failure
            raise bad_request("The request content was invalid and could not be deserialized: nested too deeply.") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"The request content was invalid and could not be deserialized: {exc}.") from exc

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise bad_request("The request content must be a JSON object.")
        return value

    def form(self) -> dict[str, str]:
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise TwinError(400, "invalid_request", "The request body is not form-encoded text.") from exc


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list serialised as JSON, bytes sent as is, None = empty
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


def ok(body: Any = None, status: int = 200, **headers: str) -> Response:
    return Response(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


Handler = Callable[["World", Request], Response]  # (world, request) -> response


@dataclass
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler
    style: str
    mutating: bool
    authenticated: bool
    audience: str  # "arm", "keyvault" or "graph": which tokens the route accepts


_PLACEHOLDER = re.compile(r"\{(\w+)(\*?)\}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/subscriptions/{sub}/x`` -> a case-insensitive regex; a trailing slash is optional.

    ``{name}`` matches one path segment, ``{name*}`` any number of them (an ARM scope).
    """
    parts = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        name = match.group(1)
        parts.append(f"(?P<{name}>.*)" if match.group(2) else f"(?P<{name}>[^/]+)")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("^" + "".join(parts).rstrip("/") + "/?$", re.IGNORECASE)


class Router:
    """Ordered route table; first match wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        style: str = ARM,
        mutating: bool | None = None,
        authenticated: bool = True,
        audience: str = ARM,
    ) -> None:
        if mutating is None:
            mutating = method.upper() in {"PUT", "PATCH", "POST", "DELETE"}
        self.routes.append(
            Route(method.upper(), pattern, compile_pattern(pattern), handler, style, mutating, authenticated, audience)
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``method path``, or None: the server answers 501 ``TwinRouteNotImplemented``.

        A path served for other methods is not a 405: Azure may well accept the method (``POST
        /certificates/{name}/create``), so the honest answer is that the twin does not implement it.
        """
        for route in self.routes:
            found = route.regex.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None


def require(obj: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path of a request body; missing required fields are a 400 naming the field."""
    current: Any = obj
    walked = []
    for key in path.split("."):
        walked.append(key)
        if not isinstance(current, Mapping) or key not in current or current[key] is None:
            raise bad_request(f"The required property '{'.'.join(walked)}' is missing.", "MissingRequiredProperty")
        current = current[key]
    return current


def expect_type(value: Any, kind: type | tuple[type, ...], path: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool) and bool not in _as_tuple(kind)):
        names = "/".join(t.__name__ for t in _as_tuple(kind))
        raise bad_request(f"The property '{path}' has an invalid type: expected {names}.", "InvalidRequestFormat")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def optional(obj: Mapping[str, Any], path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    current: Any = obj
    for key in path.split("."):
        if not isinstance(current, Mapping) or current.get(key) is None:
            return default
        current = current[key]
    return expect_type(current, kind, path)


# -- request shapes: wrong JSON types are a 400 before any handler reads the body ---------------------
# A shape is a Python type (or tuple of types), ``ANY``, ``{field: shape}`` (an object; other fields are
# free, as in the Swagger models), ``[shape]`` (an array of it) or ``MapOf(shape)`` (an object of it).
# ``null`` counts as absent for an object's member (ARM ignores it; a PATCH uses it to delete).
ANY = object()
OBJECT: dict[str, Any] = {}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", float: "a number", dict: "an object", list: "an array"}


@dataclass(frozen=True)
class MapOf:
    values: Any


def check_shape(value: Any, shape: Any, path: str = "") -> None:
    """Raise ARM's 400 ``InvalidRequestFormat`` naming the first property whose JSON type is wrong."""
    if shape is ANY:
        return
    if isinstance(shape, dict):
        _expect(value, dict, path)
        for key, member in shape.items():
            if value.get(key) is not None:
                check_shape(value[key], member, f"{path}.{key}" if path else key)
    elif isinstance(shape, list):
        _expect(value, list, path)
        for index, item in enumerate(value):
            check_shape(item, shape[0], f"{path}[{index}]")
    elif isinstance(shape, MapOf):
        _expect(value, dict, path)
        for key, item in value.items():
            check_shape(item, shape.values, f"{path}.{key}" if path else key)
    else:
        _expect(value, shape, path)


def _expect(value: Any, kind: type | tuple[type, ...], path: str) -> None:
    kinds = _as_tuple(kind)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        got = "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__).split(" ")[-1]
        message = f"Cannot parse the request: the property '{path or '(body)'}' must be {wanted}, not {got}."
        raise TwinError(400, "InvalidRequestFormat", message, details=[{"code": "InvalidJson", "target": path, "message": message}])
