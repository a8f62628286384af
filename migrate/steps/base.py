"""What every step shares: its context, re-attaching to an operation a previous run left in flight,
waiting for a cluster or a scale set to settle, and rolling a new model out under each upgrade policy.

A step asks Azure whether it is already done before acting (luigi ``Task.complete``), makes the minimal
change, waits for it to take effect, verifies, and returns what it observed for the journal.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import readers
from ..cloud.gateway import Gateway
from ..cloud.endpoints import operation_url_refusal
from ..errors import NotFound, OperationalError, StepFailed, UsageError
from ..journal.model import StepRecord
from ..plan import Change
from ..scale_set_writes import scale_set_writes
from ..spec import PlanSpec
from .domain_walk import Cancellation, UpdateDomainWalk

UPGRADE_FINISHED_AT = "upgrade_finished_at"  # what a cluster step journals when its upgrade ended (Azure's clock)


@dataclass
class StepContext:
    gateway: Gateway
    spec: PlanSpec
    step_name: str
    record: StepRecord  # the step's journal record (the context writes only its operation_url)
    save: Callable[[], None]
    emit: Callable[..., None]
    timeout: float = 6 * 3600
    observed: dict[str, Any] = field(default_factory=dict)
    walk: UpdateDomainWalk | None = None  # node types rolled out together (Manual: one update domain at a time across them)
    cancellation: Cancellation | None = None  # set when the step runs in a group (the run's stop signals)

    @property
    def poll_interval(self) -> float:
        return self.gateway.poll_interval

    def sleep(self) -> None:
        """Wait one poll interval (in a group: wake and stop at once when the run stops)."""
        if self.cancellation is not None:
            self.cancellation.sleep(self.poll_interval)
        else:
            time.sleep(self.poll_interval)

    def check_cancelled(self) -> None:
        if self.cancellation is not None:
            self.cancellation.check()

    def operation_started(self, url: str) -> None:
        """Record an in-flight operation at once, so a killed run re-attaches instead of re-sending."""
        self.record.operation_url = url
        self.save()
        self.emit("operation", step=self.step_name, url=url.split("?")[0])

    def operation_finished(self) -> None:
        if self.record.operation_url:
            self.record.operation_url = None
            self.save()

    def reattach(self, resource_id: str, *, cluster_upgrade: bool = False) -> bool:
        """Wait for the operation a previous run left in flight; True when there was one (it has ended). A cluster
        upgrade's end, success or rollback, is journaled with it (the settle window runs from there)."""
        url = self.record.operation_url
        if not url:
            return False
        try:
            reattach_operation(self.gateway, url, resource_id, self.timeout,
                               lambda: self.emit("reattach", step=self.step_name, url=url.split("?")[0]))
        except OperationalError as exc:
            if cluster_upgrade:
                self.upgrade_ended()
            self.operation_finished()
            raise StepFailed(self.step_name, f"the operation a previous run started failed: {exc}") from exc
        if cluster_upgrade:
            self.upgrade_ended()
        self.operation_finished()
        return True

    def upgrade_ended(self) -> None:
        """Record now (Azure's clock) as the end of a cluster upgrade in the step's observed facts; the caller's next
        save (clearing the operation) writes both at once, so no crash can lose it (rollout.settleMinutes)."""
        # copy-on-write: another thread of a node-type group may be saving the journal meanwhile
        self.record.observed = {**self.record.observed, UPGRADE_FINISHED_AT: self.gateway.clock.now().isoformat()}

    def change_found_in_place(self) -> None:
        """The step's cluster change is already in place although an earlier attempt of it ran: that attempt may
        have sent it and died before journaling the operation, so Azure's upgrade may have ended just now. Its end
        is taken as now (pessimistic; rollout.settleMinutes runs from here; a kill -9 test found the gap)."""
        if self.record.attempts > 1 and UPGRADE_FINISHED_AT not in self.record.observed:
            self.upgrade_ended()
            self.save()

    def upgrade_mark(self) -> dict[str, Any]:
        """The end of the cluster upgrade this step (or its interrupted attempt) made, for its observed facts."""
        return {k: v for k, v in self.record.observed.items() if k == UPGRADE_FINISHED_AT}

    def deadline(self) -> float:
        return time.monotonic() + self.timeout


def reattach_operation(gateway: Gateway, url: str, resource_id: str, timeout: float, announce: Callable[[], None]) -> None:
    """The one way to re-attach to an operation a previous run left in flight (``operation_url`` in the journal;
    StepContext.reattach and commands._settle both call it). The URL is untrusted input: one that is not on the
    cloud's ARM endpoint is refused (UsageError, exit 64) before ``announce`` and before any connection
    (issue 13, docs/security.md). An operation Azure no longer knows is over: the resource's state decides;
    one that failed raises OperationalError."""
    refusal = operation_url_refusal(url, gateway.cloud)
    if refusal is not None:
        raise UsageError(f"the journal's operation URL {url.split('?')[0][:200]!r} is refused: {refusal}; "
                         "sfmigrate sends its token only to the cloud's ARM endpoint (docs/security.md)")
    announce()
    try:
        gateway.wait_operation(url, resource_id, timeout)
    except NotFound:
        pass


# -- Service Fabric clusters ------------------------------------------------------------------------------
def wait_cluster_ready(ctx: StepContext, cluster_id: str) -> dict[str, Any]:
    """GET until clusterState Ready and provisioningState Succeeded (never update a cluster mid-upgrade)."""
    deadline = ctx.deadline()
    last = None
    while True:
        raw = ctx.gateway.get_cluster(cluster_id)
        state, provisioning = readers.cluster_states(raw)
        if readers.cluster_accepts_updates(state, provisioning):
            return raw
        if state == readers.UPGRADE_SERVICE_UNREACHABLE:
            raise StepFailed(ctx.step_name, "the cluster is UpgradeServiceUnreachable: the resource provider cannot manage it (runbooks/failures/upgrade-stuck.md)")
        if (state, provisioning) != last:
            ctx.emit("cluster", step=ctx.step_name, cluster_state=state, provisioning_state=provisioning)
            last = (state, provisioning)
        if time.monotonic() > deadline:
            raise StepFailed(ctx.step_name, f"the cluster stayed in {state}/{provisioning}; see runbooks/failures/upgrade-stuck.md")
        ctx.sleep()


def last_upgrade_end(recorded: str | None) -> dt.datetime | None:
    """The journal's ``cluster_upgrade_ended_at`` as a time (None when absent or not an aware ISO time)."""
    try:
        moment = dt.datetime.fromisoformat(str(recorded)) if recorded else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def latest_upgrade_end(recorded: str | None, observed: dict[str, Any]) -> str | None:
    """The later of the journal's last upgrade end and the one a step just observed (ISO, Azure's clock)."""
    moments = [m for m in (last_upgrade_end(recorded), last_upgrade_end(observed.get(UPGRADE_FINISHED_AT))) if m is not None]
    return max(moments).isoformat() if moments else None


def wait_cluster_settled(ctx: StepContext, cluster_id: str, since: dt.datetime | None) -> None:
    """Wait out the settle window after a cluster upgrade (``rollout.settleMinutes``): Service Fabric keeps rolling
    it out for about 15 minutes after ARM reports Succeeded (docs/twin.md, "Cluster upgrades"). Time is Azure's:
    each poll's Date header moves the clock."""
    minutes = ctx.spec.rollout.settleMinutes
    if since is None or minutes <= 0:
        return
    until = since + dt.timedelta(minutes=minutes)
    announced = False
    while True:
        ctx.gateway.get_cluster(cluster_id)
        now = ctx.gateway.clock.now()
        if now >= until:
            return
        if not announced:
            ctx.emit("waiting", step=ctx.step_name, reason=f"the cluster settles until {until.strftime('%H:%M:%S')} UTC "
                     f"({minutes:g} min after the last upgrade reported Succeeded: rollout.settleMinutes)")
            announced = True
        ctx.sleep()


_DOMAIN = re.compile(r"\bUD ?(\d+)\b|upgrade domain (\d+)", re.IGNORECASE)


def cluster_upgrade_failed(ctx: StepContext, cluster_id: str, exc: Exception, took: Callable[[dict[str, Any]], bool]) -> StepFailed:
    """A cluster upgrade whose operation failed. SFRP accepts a certificate upgrade and rolls it back when an
    upgrade domain fails its health check (docs/twin.md, "Cluster upgrades"): wait for the cluster to settle and
    say whether it is back on its previous declaration (``took`` tells whether the wanted one is in effect)."""
    raw = wait_cluster_ready(ctx, cluster_id)
    ctx.upgrade_ended()  # a rollback ends an upgrade too: the settle window runs from here
    ctx.operation_finished()
    reason = str(exc)
    if took(raw):
        return StepFailed(ctx.step_name, f"the cluster upgrade reported a failure, but the declaration is in effect: {reason}")
    found = _DOMAIN.search(reason)
    where = f" in upgrade domain {found.group(1) or found.group(2)}" if found else ""
    return StepFailed(
        ctx.step_name,
        f"Service Fabric accepted the cluster upgrade, then rolled it back{where}: the cluster is Ready on its previous "
        f"declaration. Azure says: {reason} (runbooks/failures/upgrade-rolled-back.md)",
    )


# -- scale sets -------------------------------------------------------------------------------------------
def _settled(raw: dict[str, Any], instances: list[dict[str, Any]]) -> bool:
    return readers.scale_set_settled(raw, instances)


def wait_scale_set_settled(ctx: StepContext, vmss_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    deadline = ctx.deadline()
    while True:
        raw = ctx.gateway.get_scale_set(vmss_id)
        instances = ctx.gateway.list_instances(vmss_id)
        if _settled(raw, instances):
            return raw, instances
        if time.monotonic() > deadline:
            raise StepFailed(ctx.step_name, f"{vmss_id} did not settle (instances still updating)")
        ctx.sleep()


def upgrade_mode(raw: dict[str, Any]) -> str:
    """The scale set's upgrade policy mode, lower-cased (``manual`` when absent: Azure's default)."""
    return str(((raw.get("properties") or {}).get("upgradePolicy") or {}).get("mode") or "Manual").lower()


def _update_domain(instance: dict[str, Any]) -> int:
    return readers.rollout_update_domain(instance)


def manual_batches(instances: list[dict[str, Any]], percent: int) -> list[list[str]]:
    """Manual policy: upgrade by update domain, each domain split into batches of ``percent`` of the scale set."""
    stale = [i for i in instances if not readers.on_latest_model(i)]
    size = max(1, (len(instances) * percent + 99) // 100)
    batches: list[list[str]] = []
    for domain in sorted({_update_domain(i) for i in stale}):
        ids = [str(i.get("instanceId")) for i in sorted(stale, key=lambda i: int(i.get("instanceId", 0))) if _update_domain(i) == domain]
        batches.extend(ids[k : k + size] for k in range(0, len(ids), size))
    return batches


def manual_domains(instances: list[dict[str, Any]], percent: int) -> dict[int, list[list[str]]]:
    """:func:`manual_batches` by update domain, in domain order."""
    domains = {str(i.get("instanceId")): _update_domain(i) for i in instances}
    by_domain: dict[int, list[list[str]]] = {}
    for batch in manual_batches(instances, percent):
        by_domain.setdefault(domains[batch[0]], []).append(batch)
    return by_domain


def manual_upgrade(ctx: StepContext, vmss_id: str, name: str, instances: list[dict[str, Any]], deadline: float) -> None:
    """Manual policy: upgrade the stale instances one update domain at a time, never during a cluster upgrade.
    With node types rolled out together (``ctx.walk``) domain *d* waits until every node type of the group is
    done with the domains below it: SF's upgrade domains span node types (domain_walk)."""
    by_domain = manual_domains(instances, ctx.spec.rollout.manualBatchPercent)
    if ctx.walk is not None:
        ctx.walk.plan(ctx.step_name, by_domain)
    for domain, batches in by_domain.items():
        if ctx.walk is not None:
            try:
                ctx.walk.turn(ctx.step_name, domain, deadline, ctx.check_cancelled, ctx.poll_interval)
            except TimeoutError as exc:
                raise StepFailed(ctx.step_name, f"{name}: {exc}") from None
        for batch in batches:
            wait_cluster_ready(ctx, ctx.spec.cluster.id)  # one update domain at a time, never during an upgrade
            ctx.emit("manual-upgrade", step=ctx.step_name, scale_set=name, instances=batch, update_domain=domain)
            ctx.gateway.update_instances(vmss_id, batch, ctx.operation_started)
            ctx.operation_finished()
        if ctx.walk is not None:
            ctx.walk.done(ctx.step_name, domain)


def roll_out(ctx: StepContext, vmss_id: str, settled: tuple[dict[str, Any], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Every instance takes the latest model: Manual -> we upgrade them; Automatic/Rolling -> we wait.

    ``settled`` is a read the caller just made of a quiet scale set (saves reading it again)."""
    raw, instances = settled or wait_scale_set_settled(ctx, vmss_id)
    mode = upgrade_mode(raw)
    deadline = ctx.deadline()
    while True:
        stale = [i for i in instances if not readers.on_latest_model(i)]
        ctx.emit("instances", step=ctx.step_name, scale_set=raw.get("name"), updated=len(instances) - len(stale), total=len(instances))
        if not stale:
            break
        if time.monotonic() > deadline:
            raise StepFailed(ctx.step_name, f"{raw.get('name')}: instances did not take the new model under the {mode} upgrade policy")
        if mode == "manual":
            manual_upgrade(ctx, vmss_id, str(raw.get("name")), instances, deadline)
        else:
            if ctx.walk is not None:
                ctx.walk.leave(ctx.step_name)  # Azure rolls this node type out on its own: no part in the walk
            ctx.sleep()
        raw, instances = wait_scale_set_settled(ctx, vmss_id)
    return verify_instances(ctx, raw, instances)


def verify_instances(ctx: StepContext, raw: dict[str, Any], instances: list[dict[str, Any]]) -> dict[str, Any]:
    """Every instance runs the latest model and every extension reports success."""
    failures = []
    for instance in instances:
        state = readers.provisioning_state(instance)
        if state != readers.SUCCEEDED:
            failures.append(f"{instance.get('name')}: provisioning {state or None}")
        for name, status in readers.extension_statuses(instance).items():
            if not status["code"].endswith("succeeded"):
                failures.append(f"{instance.get('name')}: extension {name} {status['code']}: {status['message']}")
    if failures:
        hint = " (runbooks/failures/kv-extension-sync.md)" if any("KeyVault" in f or "Forbidden" in f for f in failures) else ""
        raise StepFailed(ctx.step_name, "; ".join(failures[:4]) + hint)
    return {"scale_set": raw.get("name"), "instances": len(instances), "latest_model_applied": len(instances)}


def write_subtrees(ctx: StepContext, vmss_id: str, raw: dict[str, Any], desired: dict[str, Any], changes: list[Change]) -> None:
    """Write only the changed subtrees (migrate.scale_set_writes): a full PUT built from a GET would drop the
    extensions' protectedSettings, which a GET never returns. Under Automatic/Rolling each write's model is
    rolled out before the next (the order matters there); under Manual the instances take them all at once."""
    manual = upgrade_mode(raw) == "manual"
    for index, write in enumerate(scale_set_writes(raw, desired, changes)):
        if index and not manual:
            roll_out(ctx, vmss_id)
        if write.route == "scale-set-patch":
            # If-Match on the first write: a change made since the GET (an autoscale, a deployment) refuses it
            ctx.gateway.patch_scale_set(vmss_id, write.body, ctx.operation_started, etag=raw.get("etag") if index == 0 else None)
        elif write.route == "extension-put":
            ctx.gateway.put_scale_set_extension(vmss_id, str(write.extension), write.body, ctx.operation_started)
        else:
            ctx.gateway.patch_scale_set_extension(vmss_id, str(write.extension), write.body, ctx.operation_started)
        ctx.operation_finished()


def change_scale_set(ctx: StepContext, vmss_id: str, transform: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Re-attach, observe, apply ``transform`` if it changes anything, then roll out and verify."""
    from ..transforms import diff

    ctx.reattach(vmss_id)
    raw, instances = wait_scale_set_settled(ctx, vmss_id)
    if ctx.walk is not None and upgrade_mode(raw) != "manual":
        ctx.walk.leave(ctx.step_name)  # Azure rolls this node type out on its own: no part in the update-domain walk
    desired = transform(raw)
    changes = diff(raw, desired)
    if changes:
        wait_cluster_ready(ctx, ctx.spec.cluster.id)  # no node-type change while the cluster upgrades
        ctx.emit("change", step=ctx.step_name, resource=vmss_id, properties=len(changes))
        write_subtrees(ctx, vmss_id, raw, desired, changes)
    observed = roll_out(ctx, vmss_id, None if changes else (raw, instances))
    observed["changed_properties"] = len(changes)
    return observed
