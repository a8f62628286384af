"""Per-call policies every Azure client of the gateway gets: request accounting, Azure's clock (the ``Date`` of
its answers) and the write gate the runner uses to check its lock before each write (issue 13, defect 5)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Protocol

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy


class _HasBeforeWrite(Protocol):
    before_write: Callable[[str, str], None] | None


MUTATING_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})


@dataclass
class RequestStats:
    """What this process sent (per method), for reports and the bench's request accounting."""

    by_method: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, method: str) -> None:
        with self.lock:
            self.by_method[method] = self.by_method.get(method, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_method.values())

    @property
    def mutating(self) -> int:
        return sum(n for m, n in self.by_method.items() if m in MUTATING_METHODS)


class AzureClock:
    """Azure's "now", from the ``Date`` header of its latest answer (RFC 7231). Checks and waits use it rather
    than this machine's clock: a skewed operator clock, or the twin's simulated time, agree with Azure's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dt.datetime | None = None

    def saw(self, header: str | None) -> None:
        if not header:
            return
        try:
            moment = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            return  # a malformed Date is ignored, never trusted
        if moment.tzinfo is None:
            return
        with self._lock:
            if self._latest is None or moment > self._latest:
                self._latest = moment.astimezone(dt.timezone.utc)

    def now(self) -> dt.datetime:
        """The latest time Azure stated, or this machine's clock before any answer."""
        with self._lock:
            return self._latest or dt.datetime.now(dt.timezone.utc)


class Accounting(SansIOHTTPPolicy[Any, Any]):
    def __init__(self, stats: RequestStats, clock: AzureClock) -> None:
        super().__init__()
        self.stats = stats
        self.clock = clock

    def on_request(self, request: PipelineRequest[Any]) -> None:
        self.stats.count(request.http_request.method.upper())

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        self.clock.saw(response.http_response.headers.get("Date"))


BeforeWrite = Callable[[str, str], None]  # (method, URL without query) -> None, or raise to send nothing


class WriteGate(SansIOHTTPPolicy[Any, Any]):
    """Calls the gateway's ``before_write`` immediately before every mutating request is sent, retries included
    (a per-retry policy): the runner checks its lock there and journals the intent (issue 13, defect 5). An
    exception it raises leaves the pipeline before the transport: nothing is sent."""

    def __init__(self, gateway: _HasBeforeWrite) -> None:
        super().__init__()
        self.gateway = gateway

    def on_request(self, request: PipelineRequest[Any]) -> None:
        method = request.http_request.method.upper()
        hook = self.gateway.before_write
        if hook is not None and method in MUTATING_METHODS:
            hook(method, str(request.http_request.url).split("?")[0])
