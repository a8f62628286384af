"""Per-call policies every Azure client of the gateway gets: request accounting, Azure's clock (the ``Date`` of
its answers), the write gate the runner uses to check its lock before each write (issue 13, defect 5) and a
fleet's per-subscription write budget (issue 15)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Protocol

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from .azure_errors import retry_after


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


# -- the fleet's ARM write budget ---------------------------------------------------------------------------
# ARM refills a subscription's write bucket at 10 requests per second (bucket 200), per principal and region:
# https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling
ARM_WRITES_PER_MINUTE = 600


class WriteBudget:
    """At most ``writes_per_minute`` mutating requests per subscription in any sliding 60 s window, shared by every
    cluster of a fleet in that subscription; a 429's Retry-After pauses that subscription's writes fleet-wide (the
    other subscriptions keep going). Pure over an injected ``clock`` (seconds) and ``sleep``."""

    WINDOW = 60.0

    def __init__(self, writes_per_minute: int = ARM_WRITES_PER_MINUTE, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        if writes_per_minute < 1:
            raise ValueError("writes_per_minute must be at least 1")
        self.limit = writes_per_minute
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self._lock = threading.Lock()
        self._sent: dict[str, list[float]] = {}
        self._paused_until: dict[str, float] = {}
        self.waited: dict[str, float] = {}  # seconds each subscription's writers waited (reports, tests)

    def try_acquire(self, subscription: str) -> float:
        """0.0 when a write may go now (and counts it), else how many seconds to wait before asking again."""
        key = subscription.lower()
        with self._lock:
            now = self.clock()
            paused = self._paused_until.get(key, 0.0)
            if paused > now:
                return paused - now
            sent = [t for t in self._sent.get(key, []) if t > now - self.WINDOW]
            self._sent[key] = sent
            if len(sent) < self.limit:
                sent.append(now)
                return 0.0
            return sent[0] + self.WINDOW - now

    def acquire(self, subscription: str) -> None:
        """Block until a write to ``subscription`` fits the budget."""
        while (wait := self.try_acquire(subscription)) > 0:
            with self._lock:
                self.waited[subscription.lower()] = self.waited.get(subscription.lower(), 0.0) + wait
            self.sleep(wait)

    def pause(self, subscription: str, seconds: float) -> None:
        """Azure throttled a write (429 with Retry-After): no write to this subscription for ``seconds``."""
        key = subscription.lower()
        with self._lock:
            until = self.clock() + max(0.0, seconds)
            self._paused_until[key] = max(self._paused_until.get(key, 0.0), until)


class _HasBudget(Protocol):
    write_budget: WriteBudget | None


def _subscription_in(url: str) -> str | None:
    parts = url.split("?", 1)[0].split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == "subscriptions":
            return parts[index + 1]
    return None


class BudgetGate(SansIOHTTPPolicy[Any, Any]):
    """Takes a slot of the gateway's ``write_budget`` before each mutating ARM request (retries included) and
    pauses the subscription on a 429's Retry-After; no budget (a single-cluster run): does nothing."""

    def __init__(self, gateway: _HasBudget) -> None:
        super().__init__()
        self.gateway = gateway

    def on_request(self, request: PipelineRequest[Any]) -> None:
        budget = self.gateway.write_budget
        if budget is not None and request.http_request.method.upper() in MUTATING_METHODS:
            subscription = _subscription_in(str(request.http_request.url))
            if subscription:
                budget.acquire(subscription)

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        budget = self.gateway.write_budget
        if budget is None or response.http_response.status_code != 429:
            return
        subscription = _subscription_in(str(request.http_request.url))
        if subscription and request.http_request.method.upper() in MUTATING_METHODS:
            budget.pause(subscription, retry_after(response.http_response.headers, 0.0))

