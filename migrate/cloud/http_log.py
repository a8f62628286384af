"""``--debug``'s one line per HTTP request: method, URL, status, ``x-ms-request-id`` and duration (issue 14).

A per-retry policy every gateway client gets. It reads no body and no header but the request id, and the line
goes through :func:`migrate.safe_output.redact` (a SAS ``sig=`` in a URL is masked); azure-core's own
HttpLoggingPolicy adds the headers, redacted by its allow-list, on the same stderr.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from ..safe_output import redact

log = logging.getLogger("sfmigrate.http")
_STARTED = "sfmigrate.http.started"


class HttpTrace(SansIOHTTPPolicy[Any, Any]):
    """A per-retry policy: every attempt is one line (a 429 then a 200 are two)."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context[_STARTED] = time.monotonic()

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        started = request.context.get(_STARTED)
        elapsed = f"{(time.monotonic() - started) * 1000:.0f} ms" if started is not None else "?"
        http = response.http_response
        request_id = http.headers.get("x-ms-request-id") or http.headers.get("x-ms-client-request-id") or "-"
        log.debug(redact(f"HTTP {request.http_request.method} {request.http_request.url} -> {http.status_code} "
                         f"in {elapsed} (x-ms-request-id {request_id})"))
