"""What every progress sink shares: the words for the runner's events, one line per event, and a tracker of
what the events said so far (the step in flight, since when, the last known cluster / instance state).

An event is ``{"type", "step", "time", "detail"}`` (the journal keeps the same events, bounded).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

Sink = Callable[[dict[str, Any]], None]

WORDS = {
    "run-start": "started",
    "step-start": "start",
    "step-done": "done",
    "step-failed": "FAILED",
    "step-retry": "retry",
    "change": "change",
    "operation": "operation",
    "reattach": "re-attach",
    "cluster": "cluster",
    "instances": "instances",
    "manual-upgrade": "upgrade",
    "waiting": "waiting",
    "grant-propagation": "waiting",
    "run-complete": "complete",
    "run-stopped": "stopped",
    "run-failed": "failed",
    "run-interrupted": "interrupted",
    "heartbeat": "still",
}
RUN_END = ("run-complete", "run-stopped", "run-failed", "run-interrupted")


def describe(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    kind = event.get("type", "")
    step = event.get("step") or ""
    if kind == "step-start":
        return f"{step}: {detail.get('title', '')}"
    if kind == "step-done":
        return f"{step} ({detail.get('seconds', '?')} s)"
    if kind == "cluster":
        return f"{step + ': ' if step else ''}cluster {detail.get('cluster_state')} / {detail.get('provisioning_state')}"
    if kind == "instances":
        return f"{step}: {detail.get('scale_set')} {detail.get('updated')}/{detail.get('total')} instances on the latest model"
    if kind == "manual-upgrade":
        return (f"{step}: manual upgrade of {detail.get('scale_set')} update domain {detail.get('update_domain')}: "
                f"instances {', '.join(detail.get('instances') or [])}")
    if kind == "change":
        return f"{step}: updating {str(detail.get('resource', '')).rsplit('/', 1)[-1]} ({detail.get('properties')} properties)"
    if kind == "grant-propagation":
        return (f"{step}: the vault still denies the Key Vault extension on {detail.get('denied')} instance(s) of "
                f"{detail.get('scale_set')} although ARM shows the grant (propagating: {detail.get('waited_minutes')} of at most "
                f"{detail.get('bound_minutes')} minutes); running the extension again (attempt {detail.get('rerun')})")
    if kind == "run-start":
        return f"{detail.get('steps')} steps for {str(detail.get('cluster', '')).rsplit('/', 1)[-1]}"
    if kind == "heartbeat":
        return heartbeat_text(event)
    parts = [step] if step else []
    parts += [f"{k}={v}" for k, v in detail.items() if k not in ("observed",)]
    return " ".join(str(p) for p in parts)


def elapsed_text(seconds: float) -> str:
    """terraform's way: 45s, 12m30s, 2h05m00s."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def heartbeat_text(event: dict[str, Any]) -> str:
    """``still running: STEP: cluster UpgradeInProgress / Updating [12m30s elapsed]`` (terraform's "Still modifying...")."""
    detail = event.get("detail") or {}
    step, state = event.get("step"), detail.get("state")
    what = f"running: {step}" if step else "waiting"
    return f"still {what}{': ' + str(state) if state else ''} [{elapsed_text(float(detail.get('elapsed_seconds') or 0))} elapsed]"


@dataclass
class StepRow:
    name: str
    title: str
    status: str  # running | done | failed | interrupted
    started: float  # monotonic
    seconds: float | None = None  # when it ended


@dataclass
class RunTracker:
    """The run as the events told it (no Azure call): used by the heartbeat, the live view and the pipeline's
    progress. Not thread-safe by itself: its users hold their lock around ``see``."""

    clock: Callable[[], float] = time.monotonic
    total: int = 0
    rows: dict[str, StepRow] = field(default_factory=dict)
    current: str | None = None
    waiting_since: float | None = None  # a wait outside any step (a resumed run re-attaching, settling)
    waiting_step: str | None = None  # the step whose operation that wait re-attached to
    state: str | None = None  # the last known cluster / instance state, for the heartbeat
    cluster: str | None = None  # "UpdatingUserCertificate / Updating"
    instances: str | None = None
    cluster_operation: bool = False  # a cluster upgrade is in flight (its state is worth polling)
    outcome_type: str | None = None  # the run-* event that ended the run

    @property
    def done(self) -> int:
        return sum(1 for row in self.rows.values() if row.status == "done")

    def see(self, event: dict[str, Any]) -> None:
        kind, step, detail = event.get("type", ""), event.get("step"), event.get("detail") or {}
        now = self.clock()
        if kind == "run-start":
            self.total, self.waiting_since, self.cluster_operation = int(detail.get("steps") or 0), None, False
        elif kind == "step-start" and step:
            self.rows[step] = StepRow(step, str(detail.get("title", "")), "running", now)
            self.current, self.state, self.cluster, self.instances, self.cluster_operation = step, None, None, None, False
        elif kind in ("step-done", "step-failed") and step in self.rows:
            row = self.rows[step]
            row.status = "done" if kind == "step-done" else "failed"
            row.seconds = float(detail["seconds"]) if kind == "step-done" and "seconds" in detail else now - row.started
            self.current, self.cluster_operation = None, False
        elif kind == "cluster":
            self.cluster = f"{detail.get('cluster_state')} / {detail.get('provisioning_state')}"
            self.state = f"cluster {self.cluster}"
        elif kind == "instances":
            self.instances = f"{detail.get('scale_set')}: {detail.get('updated')}/{detail.get('total')} instances on the latest model"
            self.state = self.instances
        elif kind == "manual-upgrade":
            self.instances = (f"{detail.get('scale_set')}: upgrading update domain {detail.get('update_domain')} "
                              f"(instances {', '.join(detail.get('instances') or [])})")
            self.state = self.instances
        elif kind in ("operation", "reattach"):
            self.cluster_operation = "/microsoft.servicefabric/" in str(detail.get("url", "")).lower()
            if kind == "reattach":
                self.state = "waiting for the operation a previous run left in flight"
            self._outside_a_step(step, now)
        elif kind == "waiting":
            self.state = str(detail.get("reason") or self.state or "")
            self._outside_a_step(step, now)
        elif kind in RUN_END:
            if self.current in self.rows and kind == "run-interrupted":
                row = self.rows[self.current]
                row.status, row.seconds = "interrupted", now - row.started
            self.outcome_type = kind
            self.current, self.waiting_since, self.cluster_operation = None, None, False

    def _outside_a_step(self, step: str | None, now: float) -> None:
        """A resumed run re-attaching or settling before its first step: a wait too (its step, if any, named)."""
        if self.current is None and self.waiting_since is None:
            self.waiting_since, self.waiting_step = now, step

    @property
    def active_step(self) -> str | None:
        return self.current if self.current is not None else self.waiting_step if self.waiting_since is not None else None

    def idle(self) -> None:
        """Nothing is waited for (a prompt is on screen): no heartbeat until the next event."""
        self.waiting_since = None

    def heartbeat(self) -> dict[str, Any] | None:
        """The heartbeat event for now, or None when nothing is in progress."""
        from ..journal import now_iso

        if self.current in self.rows:
            since = self.rows[self.current].started
        elif self.waiting_since is not None:
            since = self.waiting_since
        else:
            return None
        seconds = self.clock() - since
        return {"type": "heartbeat", "step": self.active_step, "time": now_iso(),
                "detail": {"state": self.state, "elapsed_seconds": round(seconds, 1), "elapsed": elapsed_text(seconds)}}
