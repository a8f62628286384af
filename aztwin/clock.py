"""Simulated time and the event queue that moves the twin's world forward.

Simulated time runs ``time_scale`` times faster than the wall clock (moto's time-based ManagedState,
https://github.com/getmoto/moto, moto/moto_api/_internal/managed_state_model.py). Everything that takes time
in Azure (an upgrade domain walk, an instance taking a new model, a Key Vault extension poll) is an event scheduled at a simulated instant; the world
runs due events in order, so outcomes depend on the order of requests, not on thread timing.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


class SimClock:
    """Wall-clock-driven simulated time: ``start + (monotonic elapsed) * time_scale``."""

    def __init__(self, start: dt.datetime | None = None, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.start = start or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.time_scale = time_scale
        self._t0 = time.monotonic()
        self._offset = 0.0  # simulated seconds added by explicit advance()

    def seconds(self) -> float:
        """Simulated seconds since ``start``."""
        return (time.monotonic() - self._t0) * self.time_scale + self._offset

    def now(self) -> dt.datetime:
        return self.at(self.seconds())

    def at(self, seconds: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=seconds)

    def real_delay(self, simulated_seconds: float) -> float:
        """Wall seconds until ``simulated_seconds`` from now have passed."""
        return max(0.0, simulated_seconds) / self.time_scale

    def advance(self, simulated_seconds: float) -> None:
        """Jump forward (control API and unit tests)."""
        self._offset += max(0.0, simulated_seconds)


class ManualClock(SimClock):
    """A clock that moves only when told to (unit tests of the world model)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        super().__init__(start, 1.0)
        self._manual = 0.0

    def seconds(self) -> float:
        return self._manual

    def advance(self, simulated_seconds: float) -> None:
        self._manual += max(0.0, simulated_seconds)


@dataclass(order=True)
class Event:
    due: float
    seq: int
    name: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class EventQueue:
    """Events at simulated instants, run in (due, insertion) order by :meth:`run_due`."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._heap: list[Event] = []
        self._seq = itertools.count()
        self.current: float = 0.0  # the simulated instant of the event being run (or last run)
        self._in_event = False

    def schedule(self, delay: float, name: str, action: Callable[[], None]) -> Event:
        base = self.current if self._in_event else max(self.current, self.clock.seconds())
        event = Event(base + max(0.0, delay), next(self._seq), name, action)
        heapq.heappush(self._heap, event)
        return event

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else None

    def run_due(self, until: float | None = None) -> int:
        """Run every event due at or before ``until`` (default: now). Returns how many ran."""
        horizon = self.clock.seconds() if until is None else until
        ran = 0
        while True:
            due = self.next_due()
            if due is None or due > horizon:
                break
            event = heapq.heappop(self._heap)
            self.current = event.due
            self._in_event = True
            try:
                event.action()
            finally:
                self._in_event = False
            ran += 1
        self.current = max(self.current, horizon)
        return ran

    def pending(self) -> list[tuple[float, str]]:
        return sorted((e.due, e.name) for e in self._heap if not e.cancelled)


class BusyBy:
    """Simulated seconds during which at least one activity was in flight, per subject (a cluster's id): O(1) per
    begin and end whatever the number of subjects. ``now`` gives simulated seconds; callers hold the world lock."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._active: dict[str, int] = {}
        self._since: dict[str, float] = {}
        self._total: dict[str, float] = {}

    def begin(self, subject: str) -> None:
        active = self._active.get(subject, 0)
        if active == 0:
            self._since[subject] = self._now()
        self._active[subject] = active + 1

    def end(self, subject: str) -> None:
        active = self._active.get(subject, 0)
        if active == 0:
            return
        if active > 1:
            self._active[subject] = active - 1
            return
        del self._active[subject]
        since = self._since.pop(subject)
        self._total[subject] = self._total.get(subject, 0.0) + max(0.0, self._now() - since)

    def seconds(self, subject: str) -> float:
        total = self._total.get(subject, 0.0)
        since = self._since.get(subject)
        return total if since is None else total + max(0.0, self._now() - since)


class BusyMeter:
    """Wall time during which at least one long-running activity was in progress (bench ratio)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._since = 0.0
        self.busy_seconds = 0.0

    def begin(self) -> None:
        with self._lock:
            if self._active == 0:
                self._since = time.monotonic()
            self._active += 1

    def end(self) -> None:
        with self._lock:
            if self._active == 0:
                return
            self._active -= 1
            if self._active == 0:
                self.busy_seconds += time.monotonic() - self._since

    def total(self) -> float:
        with self._lock:
            extra = time.monotonic() - self._since if self._active else 0.0
            return self.busy_seconds + extra
