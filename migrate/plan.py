"""A plan: the starting state, the findings and the ordered steps, each with property-level changes.

The planner builds it (pure); ``plan`` renders it; ``apply`` executes exactly its steps. Its JSON form
(:meth:`Plan.to_report`) is a contract, versioned by ``format_version``: minor versions only add fields.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .findings import ERROR, Finding, sort_findings

FORMAT_VERSION = "1.0"

# Starting states, per the Service Fabric doc's table (research/sf_migration.md §1.1).
VALID_GOAL_ONLY = "VALID_GOAL_ONLY"
VALID_GOAL_NEWEST = "VALID_GOAL_NEWEST"
GOAL_ABSENT_GOAL_NEWER = "GOAL_ABSENT_GOAL_NEWER"
GOAL_ABSENT_OLD_NEWER = "GOAL_ABSENT_OLD_NEWER"
GOAL_PRESENT_OLD_NEWER = "GOAL_PRESENT_OLD_NEWER"
TWO_OLD = "TWO_OLD"
ALREADY_COMMON_NAME = "ALREADY_COMMON_NAME"
UNKNOWN = "UNKNOWN"
STARTING_STATES = (
    VALID_GOAL_ONLY, VALID_GOAL_NEWEST, GOAL_ABSENT_GOAL_NEWER, GOAL_ABSENT_OLD_NEWER,
    GOAL_PRESENT_OLD_NEWER, TWO_OLD, ALREADY_COMMON_NAME, UNKNOWN,
)


@dataclass
class Change:
    path: str
    before: Any
    after: Any


@dataclass
class Step:
    name: str  # unique within the plan, stable across runs (the journal keys on it)
    kind: str  # the module in migrate.steps that performs it
    title: str
    resources: list[str]
    changes: list[Change]
    params: dict[str, Any] = field(default_factory=dict)
    cluster_upgrade: bool = False  # does this step start a Service Fabric cluster upgrade?
    why: str = ""  # the rule that makes the step necessary

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    cluster_id: str
    starting_state: str
    findings: list[Finding]
    steps: list[Step]
    created_at: str
    spec_fingerprint: str
    fingerprints: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    @property
    def cluster_upgrades(self) -> int:
        return sum(1 for s in self.steps if s.cluster_upgrade)

    @property
    def resources_touched(self) -> list[str]:
        seen: list[str] = []
        for step in self.steps:
            for resource in step.resources:
                if resource not in seen:
                    seen.append(resource)
        return seen

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def plan_hash(self) -> str:
        """Identifies the steps to perform (recorded in the journal; a changed *plan file* is what
        ``apply`` refuses without --replan, by the spec fingerprint)."""
        steps = [{"name": s.name, "kind": s.kind, "params": s.params} for s in self.steps]
        return hashlib.sha256(json.dumps(steps, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_report(self) -> dict[str, Any]:
        """The versioned JSON report (contract: format_version, cluster, starting_state, has_changes,
        blocked, findings[], steps[] with name, resources and changes[] of path/before/after)."""
        findings = sort_findings(self.findings)
        return {
            "format_version": FORMAT_VERSION,
            "cluster": self.cluster_id,
            "starting_state": self.starting_state,
            "has_changes": self.has_changes,
            "blocked": self.blocked,
            "summary": {
                "steps": len(self.steps),
                "cluster_upgrades": self.cluster_upgrades,
                "errors": sum(1 for f in findings if f.severity == "error"),
                "warnings": sum(1 for f in findings if f.severity == "warning"),
                "resources_touched": self.resources_touched,
            },
            "findings": [f.to_dict() for f in findings],
            "steps": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "title": s.title,
                    "why": s.why,
                    "cluster_upgrade": s.cluster_upgrade,
                    "resources": s.resources,
                    "changes": [asdict(c) for c in s.changes],
                }
                for s in self.steps
            ],
            "notes": self.notes,
            "created_at": self.created_at,
            "plan_hash": self.plan_hash(),
        }
