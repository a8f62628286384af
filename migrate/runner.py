"""The runner: executes a plan's steps in order, journals every transition, resumes, stops on request.

It knows no Azure details (the steps do). Per step: mark running and save (so a crash leaves a visible
trace), run the step with step-level retries for transient failures, record what was observed, save.
The journal is saved atomically at every transition; the lock is held by the caller for the whole run.
"""

from __future__ import annotations

import time
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

Emit = Callable[..., None]
TRANSIENT_STATUS = {408, 409, 412, 429, 500, 502, 503, 504}  # 412: the resource changed since our GET; re-read
# Steps that start a certificate upgrade or a roll-out: they wait out the settle window of the last cluster upgrade.
SETTLE_BEFORE = {"set_cluster_certificate", "convert_cluster", "stage_goal", "install_kv_extension", "deliver_by_secret",
                 "cleanup_secrets"}


@dataclass
class RunOptions:
    until: str | None = None  # stop before this step (exit 4)
    postpone_cutover: bool = False  # stop before the cluster conversion (exit 4)
    attempts: int = 5  # step-level attempts for transient failures
    backoff: float = 1.0  # seconds, doubled per attempt (Retry-After wins when larger)


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

    # -- journal -----------------------------------------------------------------------------------
    def save(self) -> None:
        self.state.updated_at = now_iso()
        self.store.save(self.state)

    def emit(self, type: str, **detail: Any) -> None:
        step = detail.pop("step", None)
        event = self.state.add_event(type, step, redact(detail) or None)
        self._emit_sink(event)

    def before_write(self, method: str, url: str) -> None:
        """Immediately before every mutating request (the gateway's WriteGate, migrate.cloud.policies): journal the intent, which also
        checks the lock (``store.save`` raises LeaseLost before writing), so a run that lost its lock sends
        nothing and "stopped before writing" is true (issue 13, defect 5; docs/security.md "Locks")."""
        step = next((r.name for r in self.state.steps if r.status == "running"), None)
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
        self.emit("run-start", steps=len(self.plan.steps), cluster=self.plan.cluster_id)
        try:
            for step in self.plan.steps:
                record = self.state.step(step.name)
                if record.status == "done":
                    continue
                self._stop_if_requested(step)
                self._run_step(step, record)
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

    def _run_step(self, step: Step, record: StepRecord) -> None:
        record.status = "running"
        record.started_at = record.started_at or now_iso()
        record.last_error = None
        self.save()
        self.emit("step-start", step=step.name, title=step.title, kind=step.kind)
        context = StepContext(self.gateway, self.spec, step.name, record, self.save, self.emit)
        implementation = step_registry().get(step.kind).run
        started = time.monotonic()

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
            if step.kind in SETTLE_BEFORE:
                wait_cluster_settled(context, self.plan.cluster_id, last_upgrade_end(journal_upgrade_end(self.state)))
            return implementation(context, step)

        try:
            observed = attempt()
        except OperationalError as exc:
            self.state.cluster_upgrade_ended_at = journal_upgrade_end(self.state)  # a rollback ends an upgrade too
            record.status = "failed"
            record.last_error = one_line(exc)
            record.finished_at = now_iso()
            self.save()
            self.emit("step-failed", step=step.name, error=one_line(exc))
            if isinstance(exc, StepFailed):
                raise
            if is_transient(exc):  # retries exhausted on throttling/5xx/timeouts: the throttling runbook (issue 14)
                raise StepFailed(step.name, f"{exc} (still failing after {self.options.attempts} attempts: "
                                            "see runbooks/failures/throttling.md)") from exc
            raise StepFailed(step.name, str(exc)) from exc
        record.status = "done"
        self.state.cluster_upgrade_ended_at = latest_upgrade_end(journal_upgrade_end(self.state), observed)
        record.observed = redact(observed)
        record.finished_at = now_iso()
        self.save()
        self.emit("step-done", step=step.name, seconds=round(time.monotonic() - started, 2), observed=observed)


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
