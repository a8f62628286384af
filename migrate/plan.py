"""A plan: the starting state, the findings and the ordered steps, each with property-level changes.

The planner builds it (pure); ``plan`` renders it; ``apply`` executes exactly its steps. Its JSON form
(:meth:`Plan.to_report`) is a contract, versioned by ``format_version``: minor versions only add fields.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, TypeVar

from pydantic import ValidationError

from .errors import UsageError
from .findings import ERROR, Finding, sort_findings
from .step_types import StepParams, step_registry

# 1.1: each step also carries its kind's typed ``params`` (the one JSON form of a step, see Step.to_dict).
FORMAT_VERSION = "1.1"
P = TypeVar("P", bound=StepParams)

# Starting states, per the Service Fabric doc's table (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).
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
    """One step, typed: ``params`` is an instance of its kind's ``Params`` class (migrate.step_types).

    Its JSON form (:meth:`to_dict`) is the one the report, the saved plan and the journal all carry."""

    name: str  # unique within the plan, stable across runs (the journal keys on it)
    kind: str  # the module in migrate.steps that performs it
    title: str
    resources: list[str]
    changes: list[Change]
    params: StepParams
    cluster_upgrade: bool = False  # does this step start a Service Fabric cluster upgrade?
    why: str = ""  # the rule that makes the step necessary

    def __post_init__(self) -> None:
        expected = step_registry().get(self.kind).params
        if not isinstance(self.params, expected):
            raise TypeError(f"step {self.name}: params of kind {self.kind} must be {expected.__name__}")

    def typed(self, params: type[P]) -> P:
        """The parameters as the step module's own class (checked)."""
        if not isinstance(self.params, params):
            raise TypeError(f"step {self.name} has {type(self.params).__name__}, not {params.__name__}")
        return self.params

    def params_dict(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "title": self.title, "why": self.why,
            "cluster_upgrade": self.cluster_upgrade, "resources": list(self.resources),
            "changes": [asdict(c) for c in self.changes], "params": self.params_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "step") -> Step:
        """Read a step back (saved plan or journal: untrusted input): an unknown kind or malformed
        parameters is a UsageError naming the field."""
        if not isinstance(data, Mapping):
            raise UsageError(f"{where}: not a JSON object")
        registry = step_registry()
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in registry:
            raise UsageError(f"{where}.kind: unknown step kind {kind!r} (known: {', '.join(sorted(registry))})")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where}.name: a step needs a name")
        try:
            params = registry.get(kind).params.model_validate(data.get("params") or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            field_path = ".".join(str(part) for part in error["loc"])
            raise UsageError(f"{where}.params.{field_path}: {error['msg']} (step {name}, kind {kind})") from None
        changes = data.get("changes") or []
        if not isinstance(changes, list) or not all(isinstance(c, Mapping) and isinstance(c.get("path"), str) for c in changes):
            raise UsageError(f"{where}.changes: a list of {{path, before, after}} objects")
        resources = data.get("resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise UsageError(f"{where}.resources: a list of resource ids")
        return cls(name, kind, str(data.get("title") or name), list(resources),
                   [Change(c["path"], c.get("before"), c.get("after")) for c in changes], params,
                   bool(data.get("cluster_upgrade")), str(data.get("why") or ""))


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

    def add_step(self, step: Step) -> None:
        """Step names are unique within a plan: the journal keys on them."""
        if any(s.name == step.name for s in self.steps):
            raise ValueError(f"step name '{step.name}' is used twice in the plan")
        self.steps.append(step)

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def plan_hash(self) -> str:
        """Identifies the steps to perform (recorded in the journal; a changed *plan file* is what
        ``apply`` refuses without --replan, by the spec fingerprint)."""
        steps = [{"name": s.name, "kind": s.kind, "params": s.params_dict()} for s in self.steps]
        return hashlib.sha256(json.dumps(steps, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The plan as a saved plan keeps it (steps in their one JSON form)."""
        return {
            "cluster_id": self.cluster_id, "starting_state": self.starting_state, "created_at": self.created_at,
            "spec_fingerprint": self.spec_fingerprint, "fingerprints": self.fingerprints, "notes": self.notes,
            "findings": [f.to_dict() for f in self.findings], "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        """Read a saved plan's plan back (formats 1.0 and 1.1; untrusted input: UsageError naming the field)."""
        if not isinstance(data, Mapping):
            raise UsageError("plan: not a JSON object")
        missing = [k for k in ("cluster_id", "starting_state", "created_at", "spec_fingerprint") if not isinstance(data.get(k), str)]
        if missing:
            raise UsageError(f"plan.{missing[0]}: missing or not a string")
        raw_steps = data.get("steps") or []
        if not isinstance(raw_steps, list):
            raise UsageError("plan.steps: not a list")
        try:
            findings = [Finding(**f) for f in data.get("findings") or []]
        except TypeError as exc:
            raise UsageError(f"plan.findings: {exc}") from None
        plan = cls(data["cluster_id"], data["starting_state"], findings, [], data["created_at"], data["spec_fingerprint"],
                   {str(k): str(v) for k, v in dict(data.get("fingerprints") or {}).items()},
                   [str(n) for n in data.get("notes") or []])
        for index, raw in enumerate(raw_steps):
            step = Step.from_dict(raw, f"plan.steps[{index}]")
            try:
                plan.add_step(step)
            except ValueError as exc:
                raise UsageError(f"plan.steps[{index}].name: {exc}") from None
        return plan

    def differences(self, other: Plan) -> list[str]:
        """Where this plan's steps differ from ``other``'s (names, kinds, parameters, resources, changes,
        titles): empty when both would do exactly the same thing. ``apply`` of a saved plan re-plans and
        refuses unless this is empty (issue 13, defect 2: what ``show`` displayed is what runs)."""
        mine, theirs = [s.to_dict() for s in self.steps], [s.to_dict() for s in other.steps]
        if [s["name"] for s in mine] != [s["name"] for s in theirs]:
            return [f"steps {[s['name'] for s in mine]} instead of {[s['name'] for s in theirs]}"]
        found = []
        for a, b in zip(mine, theirs):
            for key in sorted(set(a) | set(b)):
                if _canonical(a.get(key)) != _canonical(b.get(key)):
                    found.append(f"step {a['name']}: {key}")
        return found

    def to_report(self) -> dict[str, Any]:
        """The versioned JSON report (contract: format_version, cluster, starting_state, has_changes,
        blocked, findings[], steps[] with name, resources and changes[] of path/before/after; 1.1 adds each
        step's params: a step's entry is :meth:`Step.to_dict`)."""
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
            "steps": [s.to_dict() for s in self.steps],
            "notes": self.notes,
            "created_at": self.created_at,
            "plan_hash": self.plan_hash(),
        }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
