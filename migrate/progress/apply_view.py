"""What ``apply`` shows while it runs: the chosen sink (or the live view, started at the first event) behind the
heartbeat timer, which also polls the cluster's state during upgrades (migrate.progress.heartbeat)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .heartbeat import Heartbeat, HeartbeatSink, cluster_state_probe
from .live import LiveProgress

if TYPE_CHECKING:
    from ..commands import Session


class ApplyProgress:
    """``sink`` None: the live view (no heartbeat lines: its elapsed times move by themselves)."""

    def __init__(self, sink: HeartbeatSink | None, heartbeat: float, session: Session) -> None:
        self._probe, self._every = cluster_state_probe(session), session.gateway.poll_interval
        self.live: LiveProgress | None = None
        self.watch = None if sink is None else Heartbeat(sink, heartbeat, probe=self._probe, probe_interval=self._every)

    def __call__(self, event: dict[str, Any]) -> None:
        if self.watch is None:
            self.live = LiveProgress()
            self.watch = Heartbeat(self.live, None, probe=self._probe, probe_interval=self._every)
        self.watch(event)

    def idle(self) -> None:
        """A prompt waits for an answer: no heartbeat meanwhile."""
        if self.watch is not None:
            self.watch.idle()

    @property
    def interrupted_in_a_step(self) -> bool:
        """The runner said it was interrupted (Ctrl-C, SIGTERM): its journal names the step in flight."""
        return self.watch is not None and self.watch.tracker.outcome_type == "run-interrupted"

    def close(self) -> None:
        """Stop the timer, then leave the live view's per-step table on screen."""
        if self.watch is not None:
            self.watch.close()
        if self.live is not None:
            self.live.close()
