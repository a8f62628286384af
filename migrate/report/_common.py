"""What every renderer says the same way: the summary line, starting states, value formatting."""

from __future__ import annotations

import json
from typing import Any, Literal

from ..arm_ids import name_of
from ..findings import ERROR, INFO, SEVERITY_ORDER, WARNING, Finding, Severity, sort_findings
from ..plan import Plan

# Starting states (the Service Fabric doc's table: https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn) in plain words.
STARTING_STATES: dict[str, str] = {
    "VALID_GOAL_ONLY": "a valid starting state: the goal is the only certificate declared by thumbprint",
    "VALID_GOAL_NEWEST": "a valid starting state: the goal and an older certificate are declared by thumbprint",
    "GOAL_ABSENT_GOAL_NEWER": "the goal is not declared yet and is newer than the current certificate; one upgrade adds it as secondary",
    "GOAL_ABSENT_OLD_NEWER": "the goal is not declared yet and the current certificate is newer; two upgrades make the goal the only one",
    "GOAL_PRESENT_OLD_NEWER": "the goal is declared but the other certificate is newer; one upgrade removes that one",
    "TWO_OLD": "two other certificates are declared; one must go before the goal can come in",
    "ALREADY_COMMON_NAME": "the cluster is already declared by common name",
    "UNKNOWN": "the starting state could not be determined",
}
RUNBOOK_ROOT = "runbooks"
Verdict = Literal["BLOCKED", "CHANGES", "NOTHING"]  # a plan's verdict: sfmigrate plan's exit 3, 2, 0
ChangeKind = Literal["+", "-", "~"]  # create, delete, modify (the symbols of az deployment what-if)


def cluster_name(plan: Plan) -> str:
    return name_of(plan.cluster_id) or plan.cluster_id


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def counts(findings: list[Finding]) -> dict[Severity, int]:
    return {severity: sum(1 for f in findings if f.severity == severity) for severity in SEVERITY_ORDER}


def counts_text(findings: list[Finding]) -> str:
    c = counts(findings)
    return f"{plural(c[ERROR], 'error')}, {plural(c[WARNING], 'warning')}, {c[INFO]} info"


def verdict(plan: Plan) -> Verdict:
    """BLOCKED, CHANGES or NOTHING (the exit codes 3, 2 and 0 of ``sfmigrate plan``)."""
    if plan.blocked:
        return "BLOCKED"
    return "CHANGES" if plan.has_changes else "NOTHING"


def summary_line(plan: Plan) -> str:
    """One sentence a reviewer can stop at (terraform users' top request: a summary before the details)."""
    name = cluster_name(plan)
    work = (f"{plural(len(plan.steps), 'step')}, {plural(plan.cluster_upgrades, 'cluster upgrade')}, "
            f"{plural(len(plan.resources_touched), 'resource')} touched")
    errors = counts(plan.findings)[ERROR]
    if plan.blocked:
        return f"Plan for {name}: BLOCKED by {plural(errors, 'error finding')}; {work} once resolved."
    if plan.has_changes:
        return f"Plan for {name}: {work}; starting state {plan.starting_state}; no blocking findings."
    return f"Plan for {name}: nothing to do (starting state {plan.starting_state})."


def state_text(state: str) -> str:
    return STARTING_STATES.get(state, "")


def ordered_findings(plan: Plan) -> list[Finding]:
    return sort_findings(plan.findings)


def blocking(plan: Plan) -> list[Finding]:
    return [f for f in ordered_findings(plan) if f.severity == ERROR]


def runbook_path(finding: Finding) -> str | None:
    return f"{RUNBOOK_ROOT}/{finding.runbook}" if finding.runbook else None


def value(data: Any) -> str:
    """A property value as compact JSON (strings quoted, like what-if); absent as ``(absent)``."""
    if data is None:
        return "(absent)"
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str, separators=(", ", ": "))


def change_kind(before: Any, after: Any) -> ChangeKind:
    """``+`` create, ``-`` delete, ``~`` modify (the symbols of ``az deployment what-if``)."""
    if before is None and after is not None:
        return "+"
    if after is None and before is not None:
        return "-"
    return "~"
