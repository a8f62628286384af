"""A timer in front of a progress sink: every wait says it is alive, without touching any step.

``Heartbeat`` forwards the runner's events to its sink (one lock: the timer thread and the runner never write
at once) and, from its own thread:

- when no line went out for ``seconds`` while a step (or a resumed run's settle wait) is in progress, gives the
  sink a ``heartbeat`` event: ``still running: STEP: cluster UpgradeInProgress / Updating [12m30s elapsed]``
  (terraform's "Still modifying... [10m elapsed]");
- while a cluster upgrade is in flight (the step blocks on the operation, which says nothing), polls the
  cluster's state with ``probe`` every ``probe_interval`` seconds and passes a change on as a ``cluster`` event
  (shown, not journaled).

A failing probe never stops the run: the next tick tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .events import RunTracker

if TYPE_CHECKING:
    from ..commands import Session

log = logging.getLogger("sfmigrate")
Probe = Callable[[], "dict[str, Any] | None"]


class HeartbeatSink(Protocol):
    def __call__(self, event: dict[str, Any]) -> None: ...

    def heartbeat(self, event: dict[str, Any]) -> None: ...


class Heartbeat:
    def __init__(self, sink: HeartbeatSink, seconds: float | None, *, probe: Probe | None = None,
                 probe_interval: float = 10.0, tracker: RunTracker | None = None) -> None:
        if seconds is not None and seconds < 1:
            raise ValueError("heartbeat: at least 1 second")
        self.sink, self.seconds, self.probe, self.probe_interval = sink, seconds, probe, max(1.0, probe_interval)
        self.tracker = tracker or RunTracker()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._last_line = time.monotonic()
        self._last_probe = 0.0
        self._seen: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._loop, name="sfmigrate-heartbeat", daemon=True)
        self._thread.start()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.tracker.see(event)
            if event.get("type") == "cluster":
                self._seen = _cluster_detail(event.get("detail") or {})
            elif event.get("type") == "step-start":
                self._seen, self._last_probe = None, 0.0  # each step's upgrade gets its own state line
            self.sink(event)
            self._last_line = time.monotonic()

    def idle(self) -> None:
        """A prompt is on screen: nothing is waited for until the next event."""
        with self._lock:
            self.tracker.idle()

    def close(self) -> None:
        """Stop the timer: nothing reaches the sink after this returns (a probe still waiting for Azure is left
        to its daemon thread, whose answer is dropped)."""
        with self._lock:
            self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # -- the timer ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        tick = min(1.0, self.seconds or 1.0) / 4
        while not self._stop.wait(tick):
            try:
                self._poll()
                self._beat()
            except Exception as exc:  # the heartbeat must never end the run it reports on
                log.debug("heartbeat: %s", exc)

    def _poll(self) -> None:
        if self.probe is None or not self.tracker.cluster_operation:
            return
        now = time.monotonic()
        if now - self._last_probe < self.probe_interval:
            return
        self._last_probe = now
        detail = self.probe()  # a GET, outside the lock: the runner keeps emitting meanwhile
        if detail is None or self._stop.is_set():
            return
        from ..journal import now_iso

        with self._lock:  # re-entrant: the event goes out under the same lock, never after close()
            if self._stop.is_set() or not self.tracker.cluster_operation or _cluster_detail(detail) == self._seen:
                return
            self({"type": "cluster", "step": self.tracker.active_step, "time": now_iso(), "detail": {**detail, "polled": True}})

    def _beat(self) -> None:
        if self.seconds is None:
            return
        with self._lock:
            if self._stop.is_set() or time.monotonic() - self._last_line < self.seconds:
                return
            event = self.tracker.heartbeat()
            if event is None:
                return
            self.sink.heartbeat(event)
            self._last_line = time.monotonic()


def _cluster_detail(detail: dict[str, Any]) -> dict[str, Any]:
    return {"cluster_state": detail.get("cluster_state"), "provisioning_state": detail.get("provisioning_state")}


def cluster_state_probe(session: Session) -> Probe:
    """Read the cluster's state with a gateway of its own (its requests, clock and write gate stay apart from
    the run's; a GET only)."""
    from .. import readers
    from ..cloud.gateway import Gateway

    gateway = Gateway(session.cloud, session.credential, poll_interval=session.gateway.poll_interval)
    cluster_id = session.spec.cluster.id

    def probe() -> dict[str, Any] | None:
        state, provisioning = readers.cluster_states(gateway.get_cluster(cluster_id))
        return {"cluster_state": state, "provisioning_state": provisioning}

    return probe
