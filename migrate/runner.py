"""The runner: executes a plan's steps in order, journals every transition, resumes, stops on request.

It knows no Azure details (the steps do). Per step: mark running and save (so a crash leaves a visible
trace), run the step with step-level retries for transient failures, record what was observed, save.
The journal is saved atomically at every transition; the lock is held by the caller for the whole run.

Node types in parallel (issue 15): consecutive scale-set steps of one phase (stage, swap, cleanup), one per
node type in the plan, run together as a group, at most ``RunOptions.node_type_concurrency`` at once, each in
a thread of its own with its own journal record; the group ends when all have. Under the Manual policy the
group walks one update domain at a time across its node types (steps.domain_walk). One journal writer: every
save and event goes through ``self._lock``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait as wait_all
from dataclasses import dataclass
from typing import Any, Callable

from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt

from .errors import (
    AzureRequestFailed, Interrupted, NotFound, OperationalError, PermissionDenied, StepFailed, StoppedAtRequest,
)
from .journal import JournalState, JournalStore, StepRecord, now_iso
from .journal.guard import redact
from .plan import Plan, Step
from .spec import PlanSpec
from .step_types import step_registry
from .steps import CUTOVER_KIND, cleanup_secrets
from .steps.base import StepContext, last_upgrade_end, latest_upgrade_end, wait_cluster_settled
from .steps.domain_walk import Cancellation, RunCancelled, UpdateDomainWalk

Emit = Callable[..., None]
TRANSIENT_STATUS = {408, 409, 412, 429, 500, 502, 503, 504}  # 412: the resource changed since our GET; re-read
# Steps that start a certificate upgrade or a roll-out: they wait out the settle window of the last cluster upgrade.
SETTLE_BEFORE = {"set_cluster_certificate", "convert_cluster", "stage_goal", "install_kv_extension", "deliver_by_secret",
                 "cleanup_secrets"}
# Steps that change one node type's scale set, by phase: consecutive steps of one phase run together.
SCALE_SET_PHASES = {"stage_goal": "stage", "install_kv_extension": "swap", "deliver_by_secret": "swap",
                    "cleanup_secrets": "cleanup"}


@dataclass
class RunOptions:
    until: str | None = None  # stop before this step (exit 4)
    postpone_cutover: bool = False  # stop before the cluster conversion (exit 4)
    attempts: int = 5  # step-level attempts for transient failures
    backoff: float = 1.0  # seconds, doubled per attempt (Retry-After wins when larger)
    node_type_concurrency: int | None = None  # node types rolled out at once (None: all; 1: one after another)

    def __post_init__(self) -> None:
        if self.node_type_concurrency is not None and self.node_type_concurrency < 1:
            from .errors import UsageError

            raise UsageError(f"--node-type-concurrency: {self.node_type_concurrency} is not 1 or more "
                             "(1 rolls the node types out one after another; default: all at once)")


def scale_set_of(step: Step) -> str | None:
    """The scale set a node-type step changes (its resource id), None for any other step."""
    if step.kind not in SCALE_SET_PHASES:
        return None
    return str(step.params_dict().get("vmss_id") or "") or None


def step_groups(steps: list[Step], concurrency: int | None, until: str | None = None) -> list[list[Step]]:
    """The steps to run, as groups run together: consecutive steps of one scale-set phase on distinct scale
    sets, at most ``concurrency`` per group (None: no limit); every other step alone. The ``until`` step
    starts a group of its own, so the run stops right before it."""
    groups: list[list[Step]] = []
    for step in steps:
        last = groups[-1] if groups else None
        joins = (
            last is not None and step.name != until and SCALE_SET_PHASES.get(step.kind) is not None
            and SCALE_SET_PHASES.get(step.kind) == SCALE_SET_PHASES.get(last[0].kind)
            and (concurrency is None or len(last) < concurrency)
            and (scale_set_of(step) or "").lower() not in {(scale_set_of(s) or "").lower() for s in last}
        )
        if joins and last is not None:
            last.append(step)
        else:
            groups.append([step])
    return groups


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: throttling, 5xx, network errors — never a refusal or a failed upgrade."""
    if isinstance(exc, (StepFailed, NotFound, PermissionDenied)):
        return False
    if isinstance(exc, AzureRequestFailed):
        return exc.status is None or exc.status in TRANSIENT_STATUS
    return isinstance(exc, OperationalError) and type(exc) is OperationalError


class Runner:
    def __init__(self, plan: Plan, spec: PlanSpec, gateway: Any, store: JournalStore, state: JournalState,
                 emit: Emit, options: RunOptions | None = None) -> None:
        self.plan, self.spec, self.gateway, self.store, self.state = plan, spec, gateway, store, state
        self.options = options or RunOptions()
        self._emit_sink = emit
        self._lock = threading.RLock()  # one journal writer: saves, events and record transitions
        self._local = threading.local()  # the step a group's thread runs (write intents name it)
        self._cancellation: Cancellation | None = None  # the running group's stop signals
        self._scale_sets = {s.name: str(scale_set_of(s)).rsplit("/", 1)[-1] for s in plan.steps if scale_set_of(s)}

    # -- journal -----------------------------------------------------------------------------------
    def save(self) -> None:
        with self._lock:
            self.state.updated_at = now_iso()
            self.store.save(self.state)

    def emit(self, type: str, **detail: Any) -> None:
        step = detail.pop("step", None)
        if step in self._scale_sets:
            detail.setdefault("scale_set", self._scale_sets[step])  # which node type, when several roll out together
        with self._lock:
            event = self.state.add_event(type, step, redact(detail) or None)
            self._emit_sink(event)

    def before_write(self, method: str, url: str) -> None:
        """Immediately before every mutating request (the gateway's WriteGate, migrate.cloud.policies): journal the intent, which also
        checks the lock (``store.save`` raises LeaseLost before writing), so a run that lost its lock sends
        nothing and "stopped before writing" is true (issue 13, defect 5; docs/security.md "Locks")."""
        cancellation = self._cancellation
        if cancellation is not None:
            cancellation.check(writing=True)  # a group that is stopping sends nothing new
        with self._lock:
            step = getattr(self._local, "step", None) or next((r.name for r in self.state.steps if r.status == "running"), None)
            self.state.add_event("write-intent", step, {"method": method, "url": url})
            self.save()

    # -- the run -------------------------------------------------------------------------------------
    def run(self) -> JournalState:
        previous = getattr(self.gateway, "before_write", None)
        self.gateway.before_write = self.before_write
        try:
            return self._run()
        finally:
            self.gateway.before_write = previous

    def _run(self) -> JournalState:
        names = [s.name for s in self.plan.steps]
        unknown = self.options.until and self.options.until not in names
        if unknown:
            from .errors import UsageError

            raise UsageError(f"--until: '{self.options.until}' is not a step of this plan ({', '.join(names) or 'no steps'})")
        self.state.status = "running"
        self.state.last_error = None
        self.save()
        pending = [s for s in self.plan.steps if self.state.step(s.name).status != "done"]
        try:
            self.emit("run-start", steps=len(self.plan.steps), cluster=self.plan.cluster_id)  # a sink may raise Ctrl-C here too
            for group in step_groups(pending, self.options.node_type_concurrency, self.options.until):
                self._stop_if_requested(group[0])
                if len(group) == 1:
                    self._run_step(group[0], self.state.step(group[0].name))
                else:
                    self._run_group(group)
        except StoppedAtRequest as exc:
            self.state.status = "stopped"
            self.state.last_error = None
            self.save()
            self.emit("run-stopped", reason=str(exc))
            raise
        except KeyboardInterrupt:
            self.state.status = "interrupted"
            self.state.last_error = "interrupted (Ctrl-C)"
            self.save()
            self.emit("run-interrupted")
            raise Interrupted("interrupted; the journal is saved — run apply again to resume") from None
        except OperationalError as exc:
            self.state.status = "failed"
            self.state.last_error = one_line(exc)
            self.save()
            self.emit("run-failed", error=one_line(exc))
            raise
        self.state.status = "complete"
        self.save()
        self.emit("run-complete")
        return self.state

    def _stop_if_requested(self, step: Step) -> None:
        if self.options.until == step.name:
            raise StoppedAtRequest(f"stopped before step '{step.name}' (--until); run apply again to continue")
        if self.options.postpone_cutover and step.kind == CUTOVER_KIND:
            raise StoppedAtRequest(
                f"stopped before the cutover step '{step.name}' (--postpone-cutover); run apply again to convert the cluster"
            )

    def _begin(self, step: Step, record: StepRecord) -> StepContext:
        with self._lock:
            record.status = "running"
            record.started_at = record.started_at or now_iso()
            record.last_error = None
            self.save()
            self.emit("step-start", step=step.name, title=step.title, kind=step.kind)
        return StepContext(self.gateway, self.spec, step.name, record, self.save, self.emit)

    def _settle_first(self, steps: list[Step]) -> bool:
        """Wait out the settle window of the last cluster upgrade (rollout.settleMinutes) before a roll-out or a
        certificate upgrade starts: it is that upgrade's tail, not the step's work, and a group waits once. True
        when waited; a failure here is left to the step's first attempt, which waits again with its retries."""
        if not any(s.kind in SETTLE_BEFORE for s in steps):
            return False
        first = steps[0]
        emit = self.emit if len(steps) == 1 else (lambda type, **detail: self.emit(type, **{**detail, "step": None}))
        context = StepContext(self.gateway, self.spec, first.name, self.state.step(first.name), self.save, emit)
        try:
            wait_cluster_settled(context, self.plan.cluster_id, last_upgrade_end(journal_upgrade_end(self.state)))
        except OperationalError:
            return False
        return True

    def _attempt(self, step: Step, record: StepRecord, context: StepContext, settled: bool = False) -> dict[str, Any]:
        """Run the step with step-level retries for transient failures (``settled``: the runner has just waited
        out the settle window, so the first attempt need not; a retry waits again)."""
        first = record.attempts + 1
        implementation = step_registry().get(step.kind).run

        def before_sleep(retry_state: RetryCallState) -> None:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            self.emit("step-retry", step=step.name, attempt=retry_state.attempt_number, error=one_line(error))

        def wait(retry_state: RetryCallState) -> float:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            backoff = float(self.options.backoff * 2 ** (retry_state.attempt_number - 1))
            asked = float(getattr(error, "retry_after", None) or 0.0)
            return min(max(backoff, asked), 120.0)  # honour Retry-After on throttling

        @retry(retry=retry_if_exception(is_transient), stop=stop_after_attempt(self.options.attempts),
               wait=wait, before_sleep=before_sleep, reraise=True)
        def attempt() -> dict[str, Any]:
            record.attempts += 1
            if step.kind in SETTLE_BEFORE and not (settled and record.attempts == first):
                wait_cluster_settled(context, self.plan.cluster_id, last_upgrade_end(journal_upgrade_end(self.state)))
            return implementation(context, step)

        return attempt()

    def _failed(self, step: Step, record: StepRecord, exc: OperationalError) -> StepFailed:
        with self._lock:
            self.state.cluster_upgrade_ended_at = journal_upgrade_end(self.state)  # a rollback ends an upgrade too
            record.status = "failed"
            record.last_error = one_line(exc)
            record.finished_at = now_iso()
            self.save()
            self.emit("step-failed", step=step.name, error=one_line(exc))
        if isinstance(exc, StepFailed):
            return exc
        if is_transient(exc):  # retries exhausted on throttling/5xx/timeouts: the throttling runbook (issue 14)
            return StepFailed(step.name, f"{exc} (still failing after {self.options.attempts} attempts: "
                                         "see runbooks/failures/throttling.md)")
        return StepFailed(step.name, str(exc))

    def _done(self, step: Step, record: StepRecord, observed: dict[str, Any], started: float) -> None:
        with self._lock:
            record.status = "done"
            self.state.cluster_upgrade_ended_at = latest_upgrade_end(journal_upgrade_end(self.state), observed)
            record.observed = redact(observed)
            record.finished_at = now_iso()
            self.save()
            self.emit("step-done", step=step.name, seconds=round(time.monotonic() - started, 2), observed=observed)

    def _run_step(self, step: Step, record: StepRecord) -> None:
        settled = self._settle_first([step])
        context = self._begin(step, record)
        started = time.monotonic()
        try:
            observed = self._attempt(step, record, context, settled)
        except OperationalError as exc:
            failure = self._failed(step, record, exc)
            if failure is exc:
                raise
            raise failure from exc
        self._done(step, record, observed, started)

    # -- node types together ---------------------------------------------------------------------------
    def _run_group(self, group: list[Step]) -> None:
        """Run a group's steps at once, one thread each, and wait for all. A failed step stops the others'
        writes (what they sent is still waited for); Ctrl-C stops their waits too. Each step journals its own
        record and operation URL, so a killed run re-attaches to every roll-out in flight."""
        walk = UpdateDomainWalk(s.name for s in group)
        cancellation = Cancellation()
        settled = self._settle_first(group)
        contexts = []
        for step in group:
            context = self._begin(step, self.state.step(step.name))
            context.walk, context.cancellation = walk, cancellation
            contexts.append(context)
        failures: list[BaseException] = []
        self._cancellation = cancellation
        try:
            with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix="node-type") as pool:
                futures = [pool.submit(self._group_member, step, context, walk, cancellation, failures, settled)
                           for step, context in zip(group, contexts)]
                try:
                    wait_all(futures)
                except KeyboardInterrupt:
                    cancellation.stop("interrupted", waits=True)
                    wait_all(futures)
                    raise
        finally:
            self._cancellation = None
        unexpected = [f for f in failures if not isinstance(f, StepFailed)]
        if unexpected or failures:
            raise (unexpected or failures)[0]

    def _group_member(self, step: Step, context: StepContext, walk: UpdateDomainWalk, cancellation: Cancellation,
                      failures: list[BaseException], settled: bool) -> None:
        """One step of a group, in its own thread: whatever it raises reaches ``failures`` (never a lost future)."""
        self._local.step = step.name
        try:
            self._member(step, context, cancellation, failures, settled)
        except BaseException as exc:  # a defect or a lost lock: stop the group and let the run raise it
            cancellation.stop(f"step {step.name}: {type(exc).__name__}", waits=True)
            failures.append(exc)
        finally:
            walk.leave(step.name)
            self._local.step = None

    def _member(self, step: Step, context: StepContext, cancellation: Cancellation, failures: list[BaseException],
                settled: bool) -> None:
        record = context.record
        started = time.monotonic()
        try:
            observed = self._attempt(step, record, context, settled)
        except OperationalError as exc:
            cancellation.stop(f"step {step.name} failed", waits=False)
            failures.append(self._failed(step, record, exc))
            return
        except RunCancelled:
            if not cancellation.waits.is_set():  # stopped before a write by a failed sibling: not started again
                with self._lock:
                    record.status, record.last_error = "pending", f"not finished: {cancellation.reason}"
                    self.save()
            return
        self._done(step, record, observed, started)


def journal_upgrade_end(state: JournalState) -> str | None:
    """The latest cluster-upgrade end the journal knows: its own field, or a step's observed facts (a step journals
    it when its upgrade ends, before the step is done: a crash in between keeps it)."""
    latest = state.cluster_upgrade_ended_at
    for record in state.steps:
        latest = latest_upgrade_end(latest, record.observed)
    return latest


def one_line(error: BaseException | str | None, limit: int = 2000) -> str:
    """An error as one line without credentials (messages land in logs, journals and ##vso lines)."""
    text = " ".join(str(error or "").split())
    return str(redact(text))[:limit]


def merge_journal(state: JournalState | None, plan: Plan, run_id: str, *, replan: bool = False) -> JournalState:
    """The journal for this run: a new one, or the resumed one with the fresh plan's steps.

    A resumed run re-plans by convergence. Every step of the fresh plan is needed now — even one an
    earlier run finished (a rotation may have undone it) — so it runs again, checking before acting.
    Unfinished steps the fresh plan no longer needs were completed by the world, or by the previous run
    after its last save: they are marked done with that reason, except the optional cleanup, whose intent
    (recorded with the step) the fresh plan cannot rediscover once the old certificates are undeclared.
    """
    names = [s.name for s in plan.steps]
    if state is None or state.status == "complete":
        ended = state.cluster_upgrade_ended_at if state is not None else None
        state = JournalState.new(plan.cluster_id, plan.plan_hash(), plan.spec_fingerprint, names, run_id=run_id)
        state.cluster_upgrade_ended_at = ended  # the settle window outlives the run that started it
        _remember_definitions(state, plan)
        return state
    state.run_id = run_id
    if replan:
        state.spec_fingerprint, state.plan_hash = plan.spec_fingerprint, plan.plan_hash()
    for record in state.steps:
        if record.name in names:
            if record.status == "done":
                record.status = "pending"
                record.observed = {**record.observed, "note": "needed again when the run resumed"}
        elif record.status != "done":
            if carried_over(record) is not None:
                continue
            record.status = "done"
            record.finished_at = now_iso()
            record.observed = {**record.observed, "note": "already in place when the run resumed"}
    known = {r.name for r in state.steps}
    for name in names:
        if name not in known:
            state.steps.append(StepRecord(name))
    order = {name: index for index, name in enumerate(names)}
    state.steps.sort(key=lambda r: (0, order[r.name]) if r.name in order else ((1, 0) if carried_over(r) else (-1, 0)))
    _remember_definitions(state, plan)
    return state


CARRY_OVER_KINDS = (cleanup_secrets.KIND,)


def _remember_definitions(state: JournalState, plan: Plan) -> None:
    """Every record keeps its step (the journal shows what each step does; an optional one is carried over)."""
    for step in plan.steps:
        state.step(step.name).step = step


def carried_over(record: StepRecord) -> Step | None:
    """An unfinished optional step whose definition the journal kept (see merge_journal)."""
    step = record.step
    if record.status == "done" or step is None or step.kind not in CARRY_OVER_KINDS:
        return None
    return step


def carry_over(plan: Plan, records: list[StepRecord], scale_sets: set[str] | None = None) -> None:
    """Add to a resumed run's fresh plan the optional steps the journal kept: a cleanup the fresh plan also
    has (the goal's secrets) is widened by what the journal kept (the old certificates', which a converted
    cluster no longer names); any other is added as it was. The journal is input anyone who can write the state
    can edit: a kept step may touch only ``scale_sets`` (the cluster's node types, lower-cased), else UsageError."""
    from .errors import UsageError

    for step in (s for s in (carried_over(r) for r in records) if s is not None):
        foreign = [r for r in step.resources if scale_sets is not None and r.lower() not in scale_sets]
        if foreign or (scale_sets is not None and step.typed(cleanup_secrets.Params).vmss_id.lower() not in scale_sets):
            raise UsageError(f"journal step {step.name}: {(foreign or [step.typed(cleanup_secrets.Params).vmss_id])[0]} "
                             "is not a node type of this cluster; the journal was edited — nothing was changed")
        same = [i for i, s in enumerate(plan.steps) if s.name == step.name]
        if not same:
            plan.add_step(step)
        else:
            plan.steps[same[0]] = cleanup_secrets.widen(plan.steps[same[0]], step)


# -- status words outside a run: the runner alone writes step and run status ------------------------------
def fail_in_flight(store: JournalStore, state: JournalState, record: StepRecord, error: str) -> None:
    """The operation a previous run left in flight failed meanwhile: the step and the run failed."""
    record.operation_url = None
    record.status = "failed"
    record.last_error = one_line(error)
    state.status = "failed"
    state.last_error = record.last_error
    store.save(state)


def close_converged(store: JournalStore, state: JournalState | None) -> None:
    """Nothing is left to do: an unfinished journal's run is complete (the world converged)."""
    if state is not None and state.status != "complete":
        state.status = "complete"
        store.save(state)
