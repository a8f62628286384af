"""``fleet plan``: discover and plan every cluster of a fleet concurrently, with the single-cluster planner.

Exit 0 nothing to do anywhere, 2 changes and none blocked, 3 any cluster blocked, 1 any cluster could not be
observed (read errors, or RESOURCE_NOT_FOUND / PERMISSION_DENIED findings: as ``plan``).
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..commands import UNREADABLE, save_plan
from ..discovery import discover
from ..errors import ExitCode, OperationalError
from ..plan import Plan
from ..report.timeline import ScaleSetShape, shapes_from_snapshot
from ..planner import make_plan
from ..runner import one_line
from .resolve import FleetMember
from .sdk_warmup import warm_up_sdk_models
from .session import LoadedFleet

FLEET_PLAN_KIND = "sfmigrate-fleet-plan"
FORMAT_VERSION = "1.0"
MAX_DISCOVERY_THREADS = 8  # concurrent discoveries (each is a handful of ARM reads; ARM reads: 25/s per subscription)
# A rough duration estimate, from stated assumptions (not a promise): a Service Fabric cluster upgrade that changes
# certificates takes ~20 minutes on a small cluster, then the settle window; a scale-set roll-out ~10 minutes.
CLUSTER_UPGRADE_MINUTES = 20.0
ROLLOUT_MINUTES = 10.0
ROLLOUT_KINDS = {"stage_goal", "install_kv_extension", "deliver_by_secret", "cleanup_secrets"}


def expected_minutes(plan: Plan, settle_minutes: float) -> float:
    total = 0.0
    for step in plan.steps:
        if step.cluster_upgrade:
            total += CLUSTER_UPGRADE_MINUTES + settle_minutes
        elif step.kind in ROLLOUT_KINDS:
            total += ROLLOUT_MINUTES
        else:
            total += 1.0
    return total


@dataclass
class ClusterPlan:
    member: FleetMember
    label: str
    plan: Plan | None = None
    error: str | None = None  # the cluster could not be observed
    scale_sets: dict[str, ScaleSetShape] = field(default_factory=dict)  # by lower-case id: the timeline's durations

    @property
    def status(self) -> str:
        """error | blocked | changes | ok"""
        if self.error or self.plan is None or any(f.code in UNREADABLE for f in self.plan.findings):
            return "error"
        if self.plan.blocked:
            return "blocked"
        return "changes" if self.plan.has_changes else "ok"

    @property
    def blocking(self) -> list[str]:
        return sorted({f.code for f in self.plan.findings if f.severity == "error"}) if self.plan else []

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "cluster": self.member.cluster_id,
            "label": self.label,
            "origin": self.member.origin,
            "status": self.status,
            "error": self.error,
            "starting_state": plan.starting_state if plan else None,
            "blocking_findings": self.blocking,
            "steps": len(plan.steps) if plan else None,
            "cluster_upgrades": plan.cluster_upgrades if plan else None,
            "expected_minutes": round(expected_minutes(plan, self.member.spec.rollout.settleMinutes), 1) if plan else None,
            "plan_hash": plan.plan_hash() if plan else None,
        }


@dataclass
class FleetPlanResult:
    fleet: LoadedFleet
    clusters: list[ClusterPlan] = field(default_factory=list)
    saved: dict[str, Path] = field(default_factory=dict)  # cluster id -> saved plan (--out)

    @property
    def exit_code(self) -> ExitCode:
        statuses = {c.status for c in self.clusters}
        if "error" in statuses:
            return ExitCode.FAILED
        if "blocked" in statuses:
            return ExitCode.BLOCKED
        return ExitCode.CHANGES_PENDING if "changes" in statuses else ExitCode.OK

    def to_report(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for cluster in self.clusters:
            counts[cluster.status] = counts.get(cluster.status, 0) + 1
        return {
            "kind": FLEET_PLAN_KIND,
            "format_version": FORMAT_VERSION,
            "fleet_file": str(self.fleet.path),
            "exit_code": int(self.exit_code),
            "summary": {"clusters": len(self.clusters), **counts},
            "clusters": [{**c.to_dict(), **({"saved_plan": str(self.saved[c.member.cluster_id])} if c.member.cluster_id in self.saved else {})}
                         for c in self.clusters],
        }


def plan_member(fleet: LoadedFleet, member: FleetMember, now: dt.datetime | None = None) -> ClusterPlan:
    row = ClusterPlan(member, fleet.label(member))
    try:
        session = fleet.session.session_for(member.spec)
        snapshot = discover(session.gateway, member.spec, now)
        row.plan = make_plan(snapshot, member.spec, now)
        row.scale_sets = shapes_from_snapshot(snapshot)
    except OperationalError as exc:
        row.error = one_line(exc)
    return row


def fleet_plan(fleet: LoadedFleet, *, now: dt.datetime | None = None, threads: int = MAX_DISCOVERY_THREADS) -> FleetPlanResult:
    """Plan every cluster (a bounded thread pool; results in the fleet's order)."""
    result = FleetPlanResult(fleet)
    if not fleet.members:
        return result
    warm_up_sdk_models()  # before the threads deserialise (Azure/azure-sdk-for-python#47426: raw dicts under a race)
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(fleet.members))), thread_name_prefix="sfmigrate-plan") as pool:
        result.clusters = list(pool.map(lambda member: plan_member(fleet, member, now), fleet.members))
    return result


def saved_plan_path(directory: Path, cluster_id: str) -> Path:
    """DIR/<subscription>/<resource group>/<cluster>.json (the parts are checked ARM names: migrate.fleet.resolve)."""
    segments = cluster_id.split("/")
    return directory / segments[2].lower() / segments[4].lower() / f"{segments[-1].lower()}.json"


def save_fleet_plans(result: FleetPlanResult, directory: str | Path) -> Path:
    """A saved plan per planned cluster (as ``plan --out``) and ``fleet.json`` (the fleet report) in ``directory``."""
    root = Path(directory)
    for cluster in result.clusters:
        if cluster.plan is not None:
            result.saved[cluster.member.cluster_id] = save_plan(cluster.plan, cluster.member.spec, saved_plan_path(root, cluster.member.cluster_id))
    target = root / "fleet.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result.to_report(), indent=2, default=str) + "\n", encoding="utf-8")
    return target
