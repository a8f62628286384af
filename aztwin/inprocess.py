"""An azure-core transport that hands each request to a running twin's request handler, with no socket.

httpx's ``WSGITransport`` pattern: the SDK clients, their policies (retry, authentication, polling) and the
twin's handler run unchanged; only the bytes on the wire are skipped. The twin's origins are its main URL
(ARM, tokens, control) and one origin per Key Vault; any other URL is refused, so a client given this
transport can never reach the outside. A fault that resets the connection raises what a real reset raises
(azure-core's ``ServiceResponseError``).
"""

from __future__ import annotations

import http
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.pipeline.transport import HttpResponse as LegacyHttpResponse
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest, HttpResponse

from .server import Outcome
from .twin import RunningTwin

AnyRequest = HttpRequest | LegacyHttpRequest
AnyResponse = HttpResponse | LegacyHttpResponse


class ForeignOriginError(ServiceRequestError):
    """A request for a URL that is not one of the twin's origins (nothing was sent anywhere)."""


class InProcessTransport(HttpTransport[AnyRequest, AnyResponse]):
    """Send azure-core requests to ``twin``'s handler in this process (``Gateway(transport=...)``)."""

    def __init__(self, twin: RunningTwin) -> None:
        self.twin = twin

    # -- HttpTransport --------------------------------------------------------------------------------
    def __enter__(self) -> "InProcessTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass  # shared by every client of a gateway: closing one client must not close it for the others

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: AnyRequest, **kwargs: Any) -> AnyResponse:
        """Answer ``request`` from the twin; per-call options (timeouts, TLS, proxies) have nothing to act on."""
        method = request.method.upper()
        target = self.target(request.url)
        outcome = self.twin.server.app.handle(method, target, dict(request.headers.items()), _body(request),
                                              self.twin.base_url)
        if outcome.reset:  # the server would drop the connection without answering
            raise ServiceResponseError(
                f"Connection aborted: the twin reset the connection for {method} {request.url}",
                error=ConnectionResetError(104, "Connection reset by peer"),
            )
        headers = {**outcome.headers, "Content-Length": str(len(outcome.body)), "x-ms-request-id": str(id(outcome))}
        body = b"" if method == "HEAD" else outcome.body
        if isinstance(request, HttpRequest):
            return _RestResponse(request, outcome.status, headers, body)
        return _LegacyResponse(request, outcome, headers, body)

    # -- routing ----------------------------------------------------------------------------------------
    def target(self, url: str) -> str:
        """The request target the twin's HTTPS server would hand to its handler for ``url``."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if origin == self.twin.base_url.lower():
            return path
        vault = self.vault_origins().get(origin)
        if vault is None:
            raise ForeignOriginError(f"refused: {origin} is not one of the twin's origins (in-process transport)")
        return f"/kv/{vault}{path}"  # as the vault's own listener does

    def vault_origins(self) -> dict[str, str]:
        """Each Key Vault's origin (``https://127.0.0.1:port``) and the vault it serves."""
        return self.twin.server.vault_origins()


def _body(request: AnyRequest) -> bytes:
    """The request body as the bytes a real transport would put on the wire."""
    if isinstance(request, HttpRequest):
        if request._files:  # pragma: no cover - no client of the twin uploads multipart files
            raise ServiceRequestError("the in-process transport does not send multipart bodies")
        content: Any = request.content
    else:
        if request.files:  # pragma: no cover
            raise ServiceRequestError("the in-process transport does not send multipart bodies")
        content = request.data
    if content is None:
        return b""
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, Mapping):  # form fields (token requests)
        return urlencode(dict(content), doseq=True).encode("ascii")
    if hasattr(content, "read"):
        data = content.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if isinstance(content, Iterable):
        return b"".join(chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk) for chunk in content)
    raise ServiceRequestError(f"unsupported request content: {type(content).__name__}")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _charset(content_type: str | None) -> str:
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8-sig"


class _RestResponse(HttpResponse):
    """A complete, in-memory ``azure.core.rest.HttpResponse``."""

    def __init__(self, request: HttpRequest, status: int, headers: dict[str, str], body: bytes) -> None:
        from azure.core.utils import case_insensitive_dict

        self._request = request
        self._status = status
        self._headers = case_insensitive_dict(headers)
        self._body = body
        self._encoding: str | None = None
        self._closed = False

    @property
    def request(self) -> HttpRequest:
        return self._request

    @property
    def status_code(self) -> int:
        return self._status

    @property
    def headers(self) -> Any:
        return self._headers

    @property
    def reason(self) -> str:
        return _reason(self._status)

    @property
    def content_type(self) -> str | None:
        value = self._headers.get("Content-Type")
        return str(value) if value is not None else None

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def is_stream_consumed(self) -> bool:
        return True

    @property
    def encoding(self) -> str | None:
        return self._encoding

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        self._encoding = value

    @property
    def url(self) -> str:
        return str(self._request.url)

    @property
    def content(self) -> bytes:
        return self._body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode(encoding or self._encoding or _charset(self.content_type), errors="replace")

    def json(self) -> Any:
        return json.loads(self.text())  # an empty body is a ValueError, as with any transport

    def raise_for_status(self) -> None:
        if self._status >= 400:
            raise HttpResponseError(response=self)

    def __enter__(self) -> "_RestResponse":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True

    def read(self) -> bytes:
        return self._body

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body

    def body(self) -> bytes:  # the legacy accessor some SDK code still calls on any response
        return self._body


class _LegacyResponse(LegacyHttpResponse):
    """The older ``azure.core.pipeline.transport.HttpResponse``, for clients that still send legacy requests."""

    def __init__(self, request: LegacyHttpRequest, outcome: Outcome, headers: dict[str, str], body: bytes) -> None:
        from azure.core.utils import case_insensitive_dict

        super().__init__(request, outcome)
        self.status_code = outcome.status
        self.headers = case_insensitive_dict(headers)
        self.reason = _reason(outcome.status)
        self.content_type = self.headers.get("Content-Type")
        self._body = body

    def body(self) -> bytes:
        return self._body

    def stream_download(self, pipeline: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body
