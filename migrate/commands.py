"""The library's commands — plan, apply, status, unlock — as plain functions (alembic's ``command.py``).

The CLI wraps each one; tests, the demo and rehearsals call them directly. They return data and raise
``migrate.errors`` exceptions; rendering and exit codes belong to the caller.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import readers
from .cloud.azure_errors import set_caller
from .cloud.credentials import caller_tenant, choose_credential
from .cloud.endpoints import CloudEndpoints, resolve_cloud
from .cloud.gateway import Gateway, Transport
from .discovery import discover
from .errors import Blocked, Declined, ExitCode, OperationalError, StalePlan, StepFailed, UsageError
from .input_files import check_certificate_file, read_limited, read_text_limited
from .journal import JournalState, JournalStore, LockHolder, StepRecord, open_store
from .plan import FORMAT_VERSION, Plan
from .planner import make_plan
from .runner import RunOptions, Runner, carry_over, close_converged, fail_in_flight, merge_journal, one_line
from .snapshot import Snapshot
from .steps.base import reattach_operation
from .spec import PlanSpec, load_plan

log = logging.getLogger("sfmigrate")
SAVED_PLAN_KIND = "sfmigrate-saved-plan"
# A saved plan's format follows the report it embeds (plan.FORMAT_VERSION): 1.1 adds each step's typed
# params to the report; steps have always carried them in "plan". Same major version: still read.
SAVED_PLAN_MAJOR = FORMAT_VERSION.split(".", 1)[0]
UNREADABLE = ("RESOURCE_NOT_FOUND", "PERMISSION_DENIED")  # findings about what could not be observed: exit 1
Emit = Callable[[dict[str, Any]], None]


@dataclass
class Session:
    """Everything needed to talk to one cloud for one plan file."""

    spec: PlanSpec
    cloud: CloudEndpoints
    credential: Any
    credential_description: str
    gateway: Gateway


def open_session(spec: PlanSpec, poll_interval: float | None = None, retry_backoff: float | None = None,
                 credential: Any = None, transport: Transport | None = None) -> Session:
    """``transport`` (azure-core) carries every request of the session: cloud metadata, tokens, ARM, Key Vault
    (a ``credential`` passed in keeps its own)."""
    cloud = resolve_cloud(spec.cloud, transport)
    if credential is None:
        credential, description = choose_credential(cloud, transport=transport)
    else:
        description = type(credential).__name__
    log.info("credential: %s", description)  # which credential, never a token
    set_caller(f"{description}{caller_tenant()}")  # named by a wrong-subscription error (issue 14)
    interval = poll_interval if poll_interval is not None else spec.rollout.pollIntervalSeconds
    gateway = Gateway(cloud, credential, poll_interval=interval, retry_backoff=retry_backoff, transport=transport)
    return Session(spec, cloud, credential, description, gateway)


# -- saved plans --------------------------------------------------------------------------------------
@dataclass
class SavedPlan:
    spec: PlanSpec
    plan: Plan
    path: Path


def save_plan(plan: Plan, spec: PlanSpec, path: str | Path) -> Path:
    """Write the plan with the fingerprints of what was observed (``apply`` refuses it once stale)."""
    document = {
        "kind": SAVED_PLAN_KIND,
        "format_version": FORMAT_VERSION,
        "spec": spec.model_dump(mode="json"),
        "plan": plan.to_dict(),
        "report": plan.to_report(),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return target


def load_saved_plan(path: Path) -> SavedPlan:
    """Read a saved plan (formats 1.x). It is untrusted input: every step is validated against its kind's
    typed parameters, and a malformed one is a UsageError naming the field (exit 64)."""
    try:
        document = json.loads(read_text_limited(path, "PLANFILE"))
        if not isinstance(document, dict) or document.get("kind") != SAVED_PLAN_KIND:
            raise ValueError("not a saved plan")
        spec = PlanSpec.model_validate(document["spec"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"PLANFILE: '{path}' is neither a plan file nor a saved plan ({one_line(exc)[:300]})") from None
    version = str(document.get("format_version") or "")
    if version.split(".", 1)[0] != SAVED_PLAN_MAJOR:
        raise UsageError(f"PLANFILE: saved plan format {version or '(missing)'} is not supported (this sfmigrate reads {SAVED_PLAN_MAJOR}.x)")
    try:
        plan = Plan.from_dict(document.get("plan"))
    except UsageError as exc:
        raise UsageError(f"PLANFILE: '{path}': {exc}") from None
    return SavedPlan(spec, plan, path)


def load_source(path: str | Path | PlanSpec) -> tuple[PlanSpec, SavedPlan | None]:
    """A plan file (YAML), a saved plan (JSON from ``plan --out``), or a plan model (a fleet's cluster)."""
    if isinstance(path, PlanSpec):
        check_plan_files(path)
        return path, None
    file = Path(path)
    head = read_limited(file, "PLANFILE")[:4096].decode("utf-8", errors="replace").lstrip()
    if head.startswith("{") and SAVED_PLAN_KIND in head:
        saved = load_saved_plan(file)
        check_plan_files(saved.spec)
        return saved.spec, saved
    spec = load_plan(file)
    check_plan_files(spec)
    return spec, None


def check_plan_files(spec: PlanSpec) -> None:
    """The files a plan names hold certificates (caBundle, goal.issuerCertificates): one line naming the
    file otherwise, before anything is sent (issue 13)."""
    if spec.cloud.caBundle:
        check_certificate_file(spec.cloud.caBundle, "cloud.caBundle")
    for path in spec.goal.issuerCertificates:
        check_certificate_file(path, "goal.issuerCertificates", pem_only=False)


# -- plan -----------------------------------------------------------------------------------------------
@dataclass
class PlanResult:
    plan: Plan
    snapshot: Snapshot
    session: Session
    requests: int = 0

    @property
    def exit_code(self) -> ExitCode:
        """0 nothing to do; 2 changes pending, none blocking; 3 blocked; 1 resources unreadable."""
        if any(f.code in UNREADABLE for f in self.plan.findings):
            return ExitCode.FAILED
        if self.plan.blocked:
            return ExitCode.BLOCKED
        return ExitCode.CHANGES_PENDING if self.plan.has_changes else ExitCode.OK


def plan(source: str | Path, *, session: Session | None = None, now: dt.datetime | None = None) -> PlanResult:
    spec, saved = load_source(source)
    if saved is not None:
        raise UsageError("PLANFILE: this is a saved plan; read it with 'sfmigrate show' or apply it")
    session = session or open_session(spec)
    before = session.gateway.stats.total
    snapshot = discover(session.gateway, spec, now)
    result = PlanResult(make_plan(snapshot, spec, now), snapshot, session)
    result.requests = session.gateway.stats.total - before
    return result


# -- apply ----------------------------------------------------------------------------------------------
@dataclass
class ApplyResult:
    plan: Plan
    state: JournalState | None
    nothing_to_do: bool = False
    requests: int = 0
    mutating: int = 0
    credential: str = ""
    notes: list[str] = field(default_factory=list)


def _busy(snapshot: Snapshot) -> str | None:
    """Why the world is still moving after an interrupted run (None when quiet)."""
    cluster = snapshot.cluster
    if cluster and readers.cluster_still_updating(cluster.cluster_state, cluster.provisioning_state):
        return f"cluster {cluster.cluster_state}/{cluster.provisioning_state}"
    for node_type in snapshot.node_types:
        if readers.still_provisioning(readers.provisioning_state(node_type.raw)):
            return f"scale set {node_type.name} updating"
        if any(readers.still_provisioning(i.provisioning_state) for i in node_type.instances):
            return f"instances of {node_type.name} updating"
    return None


def _settle(session: Session, spec: PlanSpec, state: JournalState, store: JournalStore, emit: Emit, timeout: float = 6 * 3600) -> Snapshot:
    """A resumed run first re-attaches to the operation left in flight, then waits for the world to be quiet.

    An operation that failed meanwhile (an upgrade that failed its health check and rolled back) stops the
    run with Azure's reason (exit 1): sending the same change again is the operator's call, by running apply
    once more, not a silent retry.
    """
    for record in state.steps:
        if not record.operation_url:
            continue
        url = record.operation_url
        try:
            reattach_operation(session.gateway, url, spec.cluster.id, timeout, lambda: emit(
                {"type": "reattach", "step": record.name, "time": _now(), "detail": {"url": url.split("?")[0]}}))
        except OperationalError as exc:
            _upgrade_ended(session, state, record)
            fail_in_flight(store, state, record, f"the operation in flight when the previous run stopped failed: {exc}")
            raise StepFailed(record.name, record.last_error or str(exc)) from exc
        _upgrade_ended(session, state, record)
        record.operation_url = None
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        snapshot = discover(session.gateway, spec)
        reason = _busy(snapshot)
        if reason is None:
            if waited:  # whatever kept the world busy (an upgrade) just ended: the settle window runs from now
                state.cluster_upgrade_ended_at = session.gateway.clock.now().isoformat()
            return snapshot
        waited = True
        if time.monotonic() > deadline:
            raise OperationalError(f"the world did not settle after the interrupted run: {reason}")
        emit({"type": "waiting", "step": None, "time": _now(), "detail": {"reason": reason}})
        time.sleep(session.gateway.poll_interval)


def _upgrade_ended(session: Session, state: JournalState, record: StepRecord) -> None:
    """A cluster upgrade left in flight has ended (or rolled back): journal when, for the settle window."""
    if record.step is not None and record.step.cluster_upgrade:
        state.cluster_upgrade_ended_at = session.gateway.clock.now().isoformat()


def _now() -> str:
    from .journal import now_iso

    return now_iso()


def _stale(saved: Plan, snapshot: Snapshot) -> list[str]:
    current = snapshot.fingerprints()
    return sorted(k for k, v in saved.fingerprints.items() if current.get(k) != v)


@dataclass
class PreparedRun:
    """A run ready to execute: the lock is held (release it), the world observed and settled, the plan to
    run chosen (the fresh plan, or the reviewed saved plan) with the optional steps a previous run left."""

    spec: PlanSpec
    session: Session
    store: JournalStore
    holder: LockHolder
    journal: JournalState | None  # as found: None for a first run
    plan: Plan
    replan: bool
    before_total: int
    before_mutating: int

    @property
    def nothing_to_do(self) -> bool:
        return not self.plan.steps

    def release(self) -> None:
        self.store.release()


def prepare_apply(source: str | Path | PlanSpec, *, state_location: str | None = None, replan: bool = False,
                  emit: Emit | None = None, session: Session | None = None) -> PreparedRun:
    """Load the source, take the lock, resume (re-attach, settle), re-plan, refuse a stale saved plan and
    add the carried-over steps. Writes no status: only the runner does (runner.fail_in_flight included)."""
    spec, saved = load_source(source)
    session = session or open_session(spec)
    emit = emit or (lambda event: None)
    before_total, before_mutating = session.gateway.stats.total, session.gateway.stats.mutating
    store = open_store(state_location, spec.cluster.id, credential=session.credential, connection_verify=session.cloud.ca_bundle)
    holder = LockHolder.current("apply")
    store.acquire(holder)  # exit 5 naming the holder when another run has it
    try:
        journal = store.load()
        resuming = journal is not None and journal.status != "complete"
        if resuming and journal is not None and journal.spec_fingerprint != spec.fingerprint() and not replan:
            raise UsageError(
                f"PLANFILE: the journal at {store.location} was written for a different plan file "
                f"(fingerprint {journal.spec_fingerprint}, now {spec.fingerprint()}); rerun with --replan to continue with this one"
            )
        snapshot = _settle(session, spec, journal, store, emit) if resuming and journal is not None else discover(session.gateway, spec)
        fresh = make_plan(snapshot, spec)
        unreadable = [f for f in fresh.findings if f.code in UNREADABLE]
        if unreadable:  # as for plan: what cannot be observed is an operational failure (exit 1), not a block
            raise OperationalError("; ".join(f"{f.code}: {f.message}" for f in unreadable[:3]) + " — nothing was changed")
        if fresh.blocked:
            errors = [f for f in fresh.findings if f.severity == "error"]
            raise Blocked("blocked by " + "; ".join(f"{f.code}: {f.message}" for f in errors[:3]) + " — nothing was changed")
        to_run = fresh
        if saved is not None and fresh.steps and not resuming:
            # A fresh start runs exactly the reviewed plan, if the world is still the one it was made for;
            # a resumed run re-plans by convergence like any other (the journal already holds its history).
            changed = _stale(saved.plan, snapshot)
            if changed:
                raise StalePlan(f"the saved plan is stale: {', '.join(changed[:3])} changed since it was made; run plan again")
            # The saved plan is input anyone with access to the artifact can edit: it runs only if a re-plan of
            # the same world gives the same steps *and parameters*; what runs is then the re-plan, whose roles,
            # permissions and scopes come from the code's rules (issue 13, defect 2; docs/security.md).
            differences = saved.plan.differences(fresh)
            if differences:
                raise UsageError(
                    f"PLANFILE: the saved plan '{saved.path}' does not match a re-plan of the same world "
                    f"({'; '.join(differences[:3])}): it was edited, or made by another sfmigrate version; "
                    "nothing was changed — run plan again and review it")
        if resuming and journal is not None:
            carry_over(to_run, journal.steps, {node_type.vmss_id.lower() for node_type in snapshot.node_types})
        return PreparedRun(spec, session, store, holder, journal, to_run, replan, before_total, before_mutating)
    except BaseException:
        store.release()
        raise


def execute(prepared: PreparedRun, *, options: RunOptions | None = None, emit: Emit | None = None,
            confirm: Callable[[Plan], bool] | None = None) -> ApplyResult:
    """Run a prepared run's steps (the runner writes every status). Does not release the lock."""
    emit = emit or (lambda event: None)
    plan, journal, gateway = prepared.plan, prepared.journal, prepared.session.gateway
    result = ApplyResult(plan, journal, credential=prepared.session.credential_description)
    if prepared.nothing_to_do:
        close_converged(prepared.store, journal)
        result.nothing_to_do = True
        return result
    if confirm is not None and not confirm(plan):
        raise Declined("apply cancelled: nothing was changed")  # exit 1, not 130: a "no" is no interruption
    state = merge_journal(journal, plan, prepared.holder.run_id, replan=prepared.replan)
    result.state = state
    runner = Runner(plan, prepared.spec, gateway, prepared.store, state, emit, options)
    try:
        runner.run()
    finally:
        result.requests = gateway.stats.total - prepared.before_total
        result.mutating = gateway.stats.mutating - prepared.before_mutating
    return result


def apply(
    source: str | Path | PlanSpec,
    *,
    state_location: str | None = None,
    options: RunOptions | None = None,
    replan: bool = False,
    emit: Emit | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    session: Session | None = None,
) -> ApplyResult:
    """Prepare the run (lock, resume, re-plan, stale check), then execute it (exit codes: errors.ExitCode)."""
    prepared = prepare_apply(source, state_location=state_location, replan=replan, emit=emit, session=session)
    try:
        return execute(prepared, options=options, emit=emit, confirm=confirm)
    finally:
        prepared.release()


# -- status and unlock ----------------------------------------------------------------------------------
@dataclass
class Status:
    location: str
    state: JournalState | None
    holder: LockHolder | None
    cluster: dict[str, Any] | None = None


def status(cluster_id: str, state_location: str | None = None, session: Session | None = None) -> Status:
    store = open_store(state_location, cluster_id, credential=session.credential if session else None,
                       connection_verify=session.cloud.ca_bundle if session else None)
    result = Status(store.location, store.load(), store.holder())
    if session is not None:
        try:
            raw = session.gateway.get_cluster(cluster_id)
            properties = raw.get("properties") or {}
            result.cluster = {
                "clusterState": properties.get("clusterState"),
                "provisioningState": properties.get("provisioningState"),
                "declaration": readers.declaration_kind(raw),
            }
        except OperationalError as exc:
            result.cluster = {"error": str(exc)}
    return result


def journal_state(cluster_id: str, state_location: str | None = None, session: Session | None = None) -> JournalState | None:
    """The journal as saved (no Azure call beyond the state's storage): what an interrupted apply left."""
    store = open_store(state_location, cluster_id, credential=session.credential if session else None,
                       connection_verify=session.cloud.ca_bundle if session else None)
    return store.load()


def unlock(cluster_id: str, state_location: str | None = None, credential: Any = None) -> LockHolder | None:
    store = open_store(state_location, cluster_id, credential=credential)
    return store.break_lock()
