"""``fleet apply``: every cluster through the same apply (lock, journal, runner), at most N at once.

Each cluster has its own journal and lock under ``--state`` (the journal key is the cluster id), its own gateway
and its own thread; the credential and the per-subscription write budget are shared (migrate.fleet.session).
Scheduling (gh-ost / Ansible ``max_fail_percentage`` style):
- the first K clusters are canaries: the others start only once every canary is done (complete or nothing to do)
  with the cluster Ready in ARM; a canary that fails, is blocked or is postponed stops the fleet there;
- after F failures no new cluster starts (the running ones finish);
- a blocked cluster is skipped (nothing was changed) and reported.
Only the main thread handles signals: ``stop()`` (Ctrl-C, SIGTERM) makes each running cluster stop at its next
progress event (its journal saved: rerun to resume) and starts no other.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..commands import apply as apply_one
from ..errors import Blocked, ExitCode, Interrupted, Locked, SfmigrateError, StoppedAtRequest, UsageError
from ..runner import RunOptions, one_line
from .resolve import FleetMember
from .sdk_warmup import warm_up_sdk_models
from .session import LoadedFleet

if TYPE_CHECKING:
    from ..commands import Session

# A run's last events: a stop request never turns them into an interruption (the journal already says how it ended).
_ENDINGS = frozenset({"run-complete", "run-failed", "run-stopped", "run-interrupted", "step-failed"})

Emit = Callable[[dict[str, Any]], None]
# outcome of one cluster: done | nothing-to-do | postponed | skipped-blocked | failed | locked | not-started | interrupted
FINISHED_WELL = ("done", "nothing-to-do")


@dataclass
class FleetApplyOptions:
    state_location: str | None = None
    concurrency: int = 4
    canary: int = 0
    max_failures: int | None = None  # None: never stop starting clusters because of failures
    run: RunOptions = field(default_factory=RunOptions)


@dataclass
class ClusterOutcome:
    member: FleetMember
    label: str
    outcome: str = "not-started"
    detail: str = ""
    steps: int = 0
    mutating: int = 0
    requests: int = 0
    canary: bool = False
    started_at: float | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.member.cluster_id, "label": self.label, "outcome": self.outcome, "detail": self.detail,
                "canary": self.canary, "steps": self.steps, "mutating_requests": self.mutating, "requests": self.requests,
                "seconds": None if self.seconds is None else round(self.seconds, 2)}


@dataclass
class FleetApplyResult:
    clusters: list[ClusterOutcome]
    stopped_reason: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        """1 any failed or not started (resumable: run again), 3 some skipped as blocked, 4 postponed, 0 all done;
        130 when interrupted (as apply)."""
        outcomes = {c.outcome for c in self.clusters}
        if self.stopped_reason == "interrupted" or "interrupted" in outcomes:
            return ExitCode.INTERRUPTED
        if outcomes & {"failed", "locked", "not-started", "interrupted"}:
            return ExitCode.FAILED
        if "skipped-blocked" in outcomes:
            return ExitCode.BLOCKED
        if "postponed" in outcomes:
            return ExitCode.STOPPED
        return ExitCode.OK

    @property
    def mutating(self) -> int:
        return sum(c.mutating for c in self.clusters)

    def to_report(self) -> dict[str, Any]:
        return {"exit_code": int(self.exit_code), "stopped_reason": self.stopped_reason, "mutating_requests": self.mutating,
                "clusters": [c.to_dict() for c in self.clusters]}


class FleetRun:
    def __init__(self, fleet: LoadedFleet, options: FleetApplyOptions, emit: Emit | None = None) -> None:
        if options.concurrency < 1:
            raise UsageError("--concurrency: must be at least 1")
        if options.canary < 0:
            raise UsageError("--canary: must be 0 or more")
        if options.max_failures is not None and options.max_failures < 1:
            raise UsageError("--max-failures: must be at least 1")
        self.fleet, self.options = fleet, options
        self._emit = emit or (lambda event: None)
        self._emit_lock = threading.Lock()
        self._stop = threading.Event()
        self.outcomes = [ClusterOutcome(m, fleet.label(m), canary=i < options.canary) for i, m in enumerate(fleet.members)]

    def stop(self) -> None:
        """Called from the main thread (signals): no new cluster starts; running ones stop at their next event."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def emit(self, outcome: ClusterOutcome, event: dict[str, Any]) -> None:
        with self._emit_lock:  # one writer at a time: lines never interleave
            self._emit({**event, "cluster": outcome.label, "cluster_id": outcome.member.cluster_id})

    # -- one cluster (a worker thread) ------------------------------------------------------------------------
    def _run_one(self, outcome: ClusterOutcome) -> None:
        outcome.started_at = time.monotonic()
        interrupted = False

        def emit(event: dict[str, Any]) -> None:
            nonlocal interrupted
            self.emit(outcome, event)
            if self._stop.is_set() and not interrupted and event.get("type") not in _ENDINGS:
                interrupted = True
                raise KeyboardInterrupt  # the runner saves the journal as interrupted (resumable)

        session: Session | None = None
        try:
            session = self.fleet.session.session_for(outcome.member.spec)
            result = apply_one(outcome.member.spec, state_location=self.options.state_location, options=self.options.run,
                               emit=emit, session=session)
            outcome.steps, outcome.mutating, outcome.requests = len(result.plan.steps), result.mutating, result.requests
            finished = "nothing-to-do" if result.nothing_to_do else "done"
            if outcome.canary and not self._ready(session):  # decided before the scheduler may read it
                outcome.detail, finished = "canary finished but the cluster is not Ready in ARM", "failed"
            outcome.outcome = finished
        except Blocked as exc:
            outcome.outcome, outcome.detail = "skipped-blocked", one_line(exc)
        except StoppedAtRequest as exc:
            outcome.outcome, outcome.detail = "postponed", one_line(exc)
        except Locked as exc:
            outcome.outcome, outcome.detail = "locked", one_line(exc)
        except KeyboardInterrupt:
            outcome.outcome, outcome.detail = "interrupted", "interrupted; the journal is saved — run fleet apply again to resume"
        except SfmigrateError as exc:
            outcome.outcome, outcome.detail = ("interrupted" if isinstance(exc, Interrupted) else "failed"), one_line(exc)
        except Exception as exc:  # a bug in one cluster's run must not take the others down: report it
            outcome.outcome, outcome.detail = "failed", f"internal error: {type(exc).__name__}: {one_line(exc)}"
        finally:
            if session is not None:
                outcome.mutating = outcome.mutating or session.gateway.stats.mutating
                outcome.requests = outcome.requests or session.gateway.stats.total
            outcome.seconds = time.monotonic() - outcome.started_at
            self.emit(outcome, {"type": "cluster-finished", "step": None, "time": _now(),
                                "detail": {"outcome": outcome.outcome, "error": outcome.detail or None}})

    @staticmethod
    def _ready(session: Any) -> bool:
        try:
            properties = session.gateway.get_cluster(session.spec.cluster.id).get("properties") or {}
        except SfmigrateError:
            return False
        return str(properties.get("clusterState")) == "Ready"

    # -- the schedule (the calling thread) --------------------------------------------------------------------
    def run(self) -> FleetApplyResult:
        pending = list(self.outcomes)
        canaries = [o for o in pending if o.canary]
        running: dict[Future[None], ClusterOutcome] = {}
        stopped_reason: str | None = None
        warm_up_sdk_models()  # before any worker thread deserialises (Azure/azure-sdk-for-python#47426)
        with ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="sfmigrate-cluster") as pool:
            while pending or running:
                stopped_reason = stopped_reason or self._why_not_start(canaries)
                while pending and not stopped_reason and len(running) < self.options.concurrency:
                    if not pending[0].canary and not all(c.outcome in FINISHED_WELL for c in canaries):
                        break  # the canaries first: every one finished well before anyone else starts
                    outcome = pending.pop(0)
                    outcome.outcome = "running"
                    running[pool.submit(self._run_one, outcome)] = outcome
                if not running:
                    break
                try:
                    done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:  # only reached when the caller did not route signals to stop()
                    self.stop()
                    continue
                for future in done:
                    running.pop(future)
        if self._stop.is_set():  # also when the last clusters ended in the same wait as the signal
            stopped_reason = "interrupted"
        for outcome in self.outcomes:
            if outcome.outcome == "running":  # cannot happen: every worker sets its outcome
                outcome.outcome = "failed"
        return FleetApplyResult(self.outcomes, stopped_reason)

    def _why_not_start(self, canaries: list[ClusterOutcome]) -> str | None:
        if self._stop.is_set():
            return "interrupted"
        failures = sum(o.outcome in ("failed", "locked") for o in self.outcomes)
        if self.options.max_failures is not None and failures >= self.options.max_failures:
            return f"{failures} cluster(s) failed (--max-failures {self.options.max_failures}): no other cluster started"
        finished = [c for c in canaries if c.outcome not in ("not-started", "running")]
        bad = [c for c in finished if c.outcome not in FINISHED_WELL]
        if bad:
            return f"canary {bad[0].label} ended {bad[0].outcome}: no other cluster started"
        return None


def _now() -> str:
    from ..journal import now_iso

    return now_iso()


def fleet_apply(fleet: LoadedFleet, options: FleetApplyOptions, emit: Emit | None = None) -> FleetApplyResult:
    return FleetRun(fleet, options, emit).run()
