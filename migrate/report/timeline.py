"""The migration's timeline: one bar per step, grouped in phases, with expected (plan) or actual (run) times.

Pure functions: :func:`expected_timeline` from a plan and the scale sets' instance and update-domain counts
(:func:`shapes_from_snapshot`); :func:`run_timeline` from a journal; :func:`measured_timeline` from a
rehearsal's events (the twin's simulated seconds). :func:`layout` turns a timeline into SVG geometry.

Expected durations follow the documented timings where Microsoft documents them, an assumption (said so in
the report's footnotes) where it does not:

- a cluster upgrade walks the update domains one at a time and, per domain, waits
  ``HealthCheckStableDuration`` (default 120 s) before the next one
  (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-upgrade,
  https://learn.microsoft.com/azure/service-fabric/service-fabric-application-upgrade-parameters);
  the domain's own work (Fabric restarting on its nodes) is undocumented: assumed ``DOMAIN_WORK`` seconds;
  a certificate change walks them ``CERTIFICATE_PASSES`` times (docs/twin.md, the twin's reading);
- after ARM reports an upgrade Succeeded, Service Fabric keeps rolling it out for about 15 minutes, which
  sfmigrate waits out (``rollout.settleMinutes``; docs/twin.md cites the troubleshooting guide);
- a scale set roll-out: Manual upgrade policy, sfmigrate upgrades the instances update domain by update domain
  in batches of ``rollout.manualBatchPercent``; Rolling, batches of ``maxBatchInstancePercent`` (default 20 %,
  https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-configure-rolling-upgrades);
  Automatic, every instance at once
  (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-policy);
  how long one batch takes is undocumented: assumed ``BATCH_SECONDS``;
- a vault grant: an Azure RBAC role assignment can take up to 10 minutes to take effect
  (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting); an access policy's delay is
  undocumented: assumed ``ACCESS_POLICY_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping

if TYPE_CHECKING:
    from ..journal.model import JournalState
    from ..plan import Plan, Step
    from ..snapshot import Snapshot
    from ..spec import RolloutSpec

# Documented (see the module docstring for the pages).
HEALTH_CHECK_STABLE = 120.0  # HealthCheckStableDuration's default, per update domain
RBAC_PROPAGATION = 600.0  # "up to 10 minutes"
ROLLING_BATCH_PERCENT = 20  # maxBatchInstancePercent's default
DEFAULT_UPDATE_DOMAINS = 5  # a scale set's default platform update domains
# Assumptions (undocumented; each is stated in the report's footnotes).
DOMAIN_WORK = 300.0  # one update domain of a cluster upgrade: Fabric restarts on its nodes
CERTIFICATE_PASSES = 3  # a certificate change walks the domains three times (docs/twin.md)
BATCH_SECONDS = 300.0  # one batch of a scale set roll-out (model applied, secrets and extensions re-run)
ACCESS_POLICY_SECONDS = 60.0
QUICK_SECONDS = 30.0  # one ARM write that changes no instance (an identity, a vault setting)

Phase = Literal["identity", "grant", "staging", "cluster-upgrade", "extension-swap", "conversion", "cleanup", "other"]
PHASE_OF_KIND: dict[str, Phase] = {
    "ensure_identity": "identity",
    "grant_vault_access": "grant",
    "enable_vault_deployment": "grant",
    "stage_goal": "staging",
    "set_cluster_certificate": "cluster-upgrade",
    "install_kv_extension": "extension-swap",
    "deliver_by_secret": "extension-swap",
    "convert_cluster": "conversion",
    "cleanup_secrets": "cleanup",
}
PHASE_LABEL: dict[Phase, str] = {
    "identity": "identity", "grant": "grant", "staging": "staging", "cluster-upgrade": "cluster upgrade",
    "extension-swap": "extension swap", "conversion": "conversion", "cleanup": "cleanup", "other": "other",
}
Kind = Literal["expected", "actual", "measured"]

DOCUMENTED = (
    "Documented: a cluster upgrade walks the update domains one at a time, each staying healthy for HealthCheckStableDuration "
    f"(default {HEALTH_CHECK_STABLE:g} s) before the next (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-upgrade, "
    "https://learn.microsoft.com/azure/service-fabric/service-fabric-application-upgrade-parameters); a Rolling scale set "
    f"upgrades {ROLLING_BATCH_PERCENT} % of its instances per batch "
    "(https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-configure-rolling-upgrades), "
    "an Automatic one all at once "
    "(https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-policy); a role "
    "assignment can take up to 10 minutes to take effect (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting). "
    "After each cluster upgrade sfmigrate waits out the settle window (rollout.settleMinutes; docs/twin.md). "
    "How the expected durations are reckoned: docs/reports.md.",
)
ASSUMPTIONS = (
    f"Undocumented, assumed: one update domain of a cluster upgrade takes {DOMAIN_WORK / 60:g} min of work plus the "
    f"documented {HEALTH_CHECK_STABLE:g} s HealthCheckStableDuration; a certificate change walks the domains "
    f"{CERTIFICATE_PASSES} times; one batch of a scale set roll-out takes {BATCH_SECONDS / 60:g} min; an access policy takes "
    f"{ACCESS_POLICY_SECONDS:g} s to reach Key Vault's data plane.",
)


@dataclass(frozen=True)
class ScaleSetShape:
    """What a roll-out's length depends on: instances, update domains and the upgrade policy."""

    name: str
    instances: int
    update_domains: int
    upgrade_mode: str  # manual | automatic | rolling


@dataclass(frozen=True)
class Bar:
    step: str
    title: str
    phase: Phase
    start: float  # seconds from the timeline's origin
    seconds: float
    settle: float = 0.0  # the settle window waited after it (cluster upgrades)
    status: str = ""  # run: done, failed, running, pending
    basis: str = ""  # how the expected duration was reckoned

    @property
    def end(self) -> float:
        return self.start + self.seconds + self.settle


@dataclass(frozen=True)
class Timeline:
    kind: Kind
    bars: list[Bar]
    started_at: str | None = None  # actual runs: the first step's start (ISO)
    footnotes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return max((bar.end for bar in self.bars), default=0.0)


def phase_of(kind: str) -> Phase:
    return PHASE_OF_KIND.get(kind, "other")


def shapes_from_snapshot(snapshot: Snapshot) -> dict[str, ScaleSetShape]:
    """Each node type's scale set (by lower-cased id): instances, distinct update domains, upgrade mode."""
    shapes = {}
    for node_type in snapshot.node_types:
        domains = {i.update_domain for i in node_type.instances if i.update_domain is not None}
        count = len(node_type.instances) or node_type.capacity
        shapes[node_type.vmss_id.lower()] = ScaleSetShape(
            node_type.name, count, len(domains) or min(max(count, 1), DEFAULT_UPDATE_DOMAINS), node_type.upgrade_mode.lower())
    return shapes


def rollout_batches(shape: ScaleSetShape, manual_percent: int = 100) -> int:
    """How many batches a roll-out of the whole scale set takes under its upgrade policy."""
    if shape.instances <= 0:
        return 0
    if shape.upgrade_mode == "automatic":
        return 1
    if shape.upgrade_mode == "rolling":
        return math.ceil(100 / ROLLING_BATCH_PERCENT)
    # Manual: sfmigrate goes update domain by update domain, each split into batches of manual_percent
    per_domain = math.ceil(shape.instances / max(shape.update_domains, 1))
    size = max(1, math.ceil(shape.instances * manual_percent / 100))
    return max(shape.update_domains, 1) * math.ceil(per_domain / size)


def _cluster_domains(shapes: Mapping[str, ScaleSetShape]) -> int:
    return max((s.update_domains for s in shapes.values()), default=DEFAULT_UPDATE_DOMAINS) or DEFAULT_UPDATE_DOMAINS


def expected_seconds(step: Step, shapes: Mapping[str, ScaleSetShape], manual_percent: int = 100) -> tuple[float, str]:
    """How long ``step`` is expected to take in Azure, and how that was reckoned."""
    phase = phase_of(step.kind)
    params = step.params_dict()
    if phase in ("cluster-upgrade", "conversion"):
        domains = _cluster_domains(shapes)
        passes = CERTIFICATE_PASSES
        per_domain = DOMAIN_WORK + HEALTH_CHECK_STABLE
        return passes * domains * per_domain, f"{passes} passes x {domains} update domains x {per_domain / 60:g} min"
    if phase == "grant":
        if step.kind == "grant_vault_access" and params.get("rbac"):
            return RBAC_PROPAGATION, "role assignment: up to 10 min to take effect"
        if step.kind == "grant_vault_access":
            return ACCESS_POLICY_SECONDS, "access policy"
        return QUICK_SECONDS, "one ARM write"
    vmss_id = str(params.get("vmss_id") or "").lower()
    shape = shapes.get(vmss_id)
    if shape is not None and phase in ("staging", "extension-swap", "cleanup"):
        batches = rollout_batches(shape, manual_percent)
        return batches * BATCH_SECONDS, (f"{shape.instances} instances, {shape.update_domains} update domains, "
                                         f"{shape.upgrade_mode}: {batches} batches")
    if phase in ("staging", "extension-swap", "cleanup"):
        batches = DEFAULT_UPDATE_DOMAINS
        return batches * BATCH_SECONDS, f"scale set not read: {batches} batches assumed"
    return QUICK_SECONDS, "one ARM write"


def expected_timeline(plan: Plan, shapes: Mapping[str, ScaleSetShape], rollout: RolloutSpec | None = None,
                      node_type_concurrency: int | None = None) -> Timeline:
    """The plan's steps with their expected durations, in the order apply runs them: the steps of one scale-set
    phase on different node types start together (``apply --node-type-concurrency``, default all), every other step
    after the previous one ends; each cluster upgrade is followed by the settle window sfmigrate waits out before the
    next certificate change or roll-out."""
    from ..runner import step_groups

    settle = (rollout.settleMinutes if rollout is not None else 15.0) * 60
    manual_percent = rollout.manualBatchPercent if rollout is not None else 100
    bars: list[Bar] = []
    clock = 0.0
    groups = step_groups(list(plan.steps), node_type_concurrency)
    for index, group in enumerate(groups):
        ends = []
        for step in group:
            seconds, basis = expected_seconds(step, shapes, manual_percent)
            wait = settle if step.cluster_upgrade and index + 1 < len(groups) else 0.0
            bars.append(Bar(step.name, step.title or step.name, phase_of(step.kind), clock, seconds, wait, "", basis))
            ends.append(seconds + wait)
        clock += max(ends)
    notes = list(DOCUMENTED + ASSUMPTIONS)
    if not shapes:
        notes.append("The scale sets were not read for this report: each roll-out assumes "
                     f"{DEFAULT_UPDATE_DOMAINS} batches and the cluster {DEFAULT_UPDATE_DOMAINS} update domains.")
    return Timeline("expected", bars, None, notes)


def _parse(stamp: Any) -> dt.datetime | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def run_timeline(state: JournalState) -> Timeline:
    """Actual start and end of each step the journal records (times to the second, as journalled); a running
    step ends at the journal's last update, a pending one has no bar."""
    starts = [m for m in (_parse(r.started_at) for r in state.steps) if m is not None]
    origin = min(starts) if starts else None
    last = _parse(state.updated_at)
    bars = []
    for record in state.steps:
        kind = record.step.kind if record.step else ""
        title = (record.step.title if record.step else "") or record.name
        began, ended = _parse(record.started_at), _parse(record.finished_at)
        if origin is None or began is None:
            bars.append(Bar(record.name, title, phase_of(kind), 0.0, 0.0, 0.0, record.status))
            continue
        ended = ended or (last if record.status == "running" else None) or began
        bars.append(Bar(record.name, title, phase_of(kind), (began - origin).total_seconds(),
                        max(0.0, (ended - began).total_seconds()), 0.0, record.status))
    notes = ["Times are the journal's, to the second; a step shorter than a second shows as a thin mark."]
    return Timeline("actual", bars, origin.isoformat().replace("+00:00", "Z") if origin else None, notes)


def measured_timeline(events: Iterable[Mapping[str, Any]], time_scale: float, kinds: Mapping[str, str] | None = None) -> Timeline:
    """A rehearsal's steps from its progress events, each stamped on receipt with ``at`` (monotonic wall
    seconds): wall seconds times the twin's time scale are the twin's simulated seconds, i.e. the durations
    the twin's documented timings give in Azure."""
    kinds = kinds or {}
    origin: float | None = None
    open_steps: dict[str, tuple[float, str]] = {}
    bars: list[Bar] = []
    for event in events:
        at, step, kind = event.get("at"), event.get("step"), event.get("type")
        if not isinstance(at, (int, float)) or not isinstance(step, str):
            continue
        origin = at if origin is None else origin
        if kind == "step-start":
            open_steps[step] = (float(at), str((event.get("detail") or {}).get("title") or step))
        elif kind in ("step-done", "step-failed") and step in open_steps:
            began, title = open_steps.pop(step)
            bars.append(Bar(step, title, phase_of(kinds.get(step, "")), (began - origin) * time_scale,
                            (float(at) - began) * time_scale, 0.0, "done" if kind == "step-done" else "failed"))
    notes = [f"The twin's simulated times (wall time x {time_scale:g}), following its documented timings (docs/twin.md)."]
    return Timeline("measured", bars, None, notes)


# -- geometry -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BarBox:
    bar: Bar
    y: float
    x: float
    width: float
    settle_x: float
    settle_width: float
    label: str
    duration: str


@dataclass(frozen=True)
class Geometry:
    width: float
    height: float
    label_width: float
    rows: list[BarBox]
    ticks: list[tuple[float, str]]  # x, label


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def tick_step(total: float) -> float:
    for candidate in (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600):
        if total / candidate <= 8:
            return float(candidate)
    return 43200.0


def layout(timeline: Timeline, width: float = 1000.0, label_width: float = 260.0, row: float = 22.0) -> Geometry:
    """Where each bar goes in an SVG ``width`` wide (the chart scales with its box: viewBox)."""
    total = max(timeline.total, 1.0)
    chart = width - label_width - 70
    scale = chart / total
    rows = []
    for index, bar in enumerate(timeline.bars):
        x = label_width + bar.start * scale
        w = max(bar.seconds * scale, 2.0)
        rows.append(BarBox(bar, 24 + index * row, x, w, x + w, bar.settle * scale, bar.step, duration_text(bar.seconds)))
    step = tick_step(total)
    ticks = [(label_width + t * step * scale, duration_text(t * step)) for t in range(int(total // step) + 1)]
    return Geometry(width, 24 + len(rows) * row + 8, label_width, rows, ticks)
