"""The terminal report: summary first, then findings, then each step with its property changes.

Plain text by default; ``color=True`` (the caller decides, e.g. :func:`migrate.report.should_color` for a TTY)
adds ANSI styles through ``rich``.
"""

from __future__ import annotations

import io
import shutil

from rich.console import Console
from rich.text import Text

from ..findings import ERROR, INFO, WARNING, Severity
from ..arm_ids import id_parts
from ..plan import Plan
from .diff import diff, relative_ids, render_line
from ._common import (
    ChangeKind, Verdict, blocking, cluster_name, counts_text, ordered_findings, plural, runbook_path, state_text, summary_line, verdict,
)

SEVERITY_STYLE: dict[Severity, str] = {ERROR: "bold red", WARNING: "yellow", INFO: "cyan"}
CHANGE_STYLE: dict[ChangeKind, str] = {"+": "green", "-": "red", "~": "yellow"}
VERDICT_STYLE: dict[Verdict, str] = {"BLOCKED": "bold red", "CHANGES": "bold yellow", "NOTHING": "bold green"}
INDENT = "    "


class _Lines:
    def __init__(self) -> None:
        self.lines: list[Text] = []

    def add(self, *parts: str | tuple[str, str]) -> None:
        """A line from plain strings and (text, style) pairs."""
        line = Text()
        for part in parts:
            if isinstance(part, tuple):
                line.append(part[0], style=part[1])
            else:
                line.append(part)
        self.lines.append(line)

    def render(self, color: bool) -> str:
        if not color:
            return "\n".join(line.plain for line in self.lines) + "\n"
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, color_system="standard", width=10_000,
                          highlight=False, soft_wrap=True, emoji=False, markup=False)
        for line in self.lines:
            console.print(line)
        return buffer.getvalue()


def _group(cluster_id: str) -> str | None:
    try:
        return id_parts(cluster_id)[1]
    except ValueError:
        return None


def render_plan(plan: Plan, *, color: bool = False, width: int | None = None) -> str:
    """``width``: wrap property changes to it (default: the terminal's, ``COLUMNS``, else 100)."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    group = _group(plan.cluster_id)
    out = _Lines()
    state = plan.starting_state
    out.add((summary_line(plan), VERDICT_STYLE[verdict(plan)]))
    out.add("")
    out.add("  cluster          ", plan.cluster_id)
    out.add("  starting state   ", (state, "bold"), f" - {state_text(state)}" if state_text(state) else "")
    out.add("  findings         ", counts_text(plan.findings))
    out.add("  steps            ", f"{len(plan.steps)} ({plural(plan.cluster_upgrades, 'cluster upgrade')})")
    out.add("  resources        ", f"{len(plan.resources_touched)} touched")
    for resource in plan.resources_touched:
        out.add("                     ", resource)
    blockers = blocking(plan)
    if blockers:
        out.add("")
        out.add(("Blocking findings (apply refuses this plan):", "bold red"))
        for item in blockers:
            out.add("  - ", (item.code, "bold red"), f": {item.message}")
    for note in plan.notes:
        out.add(f"  note: {note}")

    findings = ordered_findings(plan)
    out.add("")
    out.add((f"Findings ({len(findings)})", "bold"))
    if not findings:
        out.add("  none")
    for item in findings:
        out.add("  ", (f"{item.severity.upper():<8}", SEVERITY_STYLE.get(item.severity, "")), (item.code, "bold"),
                f"  {item.resource_id}" if item.resource_id else "")
        out.add(INDENT, item.message)
        out.add(INDENT, ("remedy: ", "dim"), item.remedy)
        if runbook_path(item):
            out.add(INDENT, ("runbook: ", "dim"), runbook_path(item) or "")

    out.add("")
    out.add((f"Steps ({len(plan.steps)})", "bold"))
    if group and plan.steps:
        out.add(("  ids ./… are in resource group ", "dim"), (group, "dim"))
    if not plan.steps:
        out.add("  none: nothing would change")
    for number, step in enumerate(plan.steps, 1):
        out.add(f"  {number}. ", (step.title or step.name, "bold"), f"  [{step.name}]",
                ("  (cluster upgrade)", "magenta") if step.cluster_upgrade else "")
        if step.why:
            out.add(INDENT, ("why: ", "dim"), step.why)
        for resource in step.resources:
            out.add(INDENT, ("on: ", "dim"), relative_ids(resource, group))
        for change in step.changes:  # nested, list entries by key, ids relative to the cluster's group
            for line in diff(change.path, change.before, change.after):
                first, *rest = render_line(line, group, width, INDENT)
                out.add(INDENT, (first[len(INDENT):len(INDENT) + 1], CHANGE_STYLE[line.kind]), first[len(INDENT) + 1:])
                for more in rest:
                    out.add(more)
    out.add("")
    out.add((f"plan {plan.plan_hash()} for {cluster_name(plan)}, created {plan.created_at}", "dim"))
    return out.render(color)


# -- the confirmation summary (apply's last lines before its prompt; issue 14) ---------------------------
DECLARATION_PATHS = ("properties.certificate", "properties.certificateCommonNames")


def _short(thumbprint: object) -> str:
    text = str(thumbprint or "")
    return f"{text[:4]}…" if len(text) > 4 else text


def describe_declaration(certificate: object, common_names: object) -> str:
    """A cluster certificate declaration in a few words: thumbprints shortened, roles in brackets."""
    parts: list[str] = []
    if isinstance(certificate, dict) and certificate.get("thumbprint"):
        roles = f"{_short(certificate['thumbprint'])}(primary)"
        if certificate.get("thumbprintSecondary"):
            roles += f", {_short(certificate['thumbprintSecondary'])}(secondary)"
        parts.append(f"thumbprint {roles}")
    if isinstance(common_names, dict):
        for entry in common_names.get("commonNames") or []:
            if not isinstance(entry, dict):
                continue
            issuers = [_short(i.strip()) for i in str(entry.get("certificateIssuerThumbprint") or "").split(",") if i.strip()]
            parts.append(f"common name {entry.get('certificateCommonName')}"
                         + (f" (issuers {', '.join(issuers)})" if issuers else " (no issuer pinned)"))
    return " + ".join(parts) or "(none)"


def declaration_change(plan: Plan) -> tuple[str, str] | None:
    """The cluster's declaration before the first step and after the last, from the steps' own changes to
    ``properties.certificate`` / ``certificateCommonNames``; None when no step changes it."""
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    for step in plan.steps:
        for change in step.changes:
            if change.path in DECLARATION_PATHS:
                before.setdefault(change.path, change.before)
                after[change.path] = change.after
    if not after:
        return None
    return (describe_declaration(before.get(DECLARATION_PATHS[0]), before.get(DECLARATION_PATHS[1])),
            describe_declaration(after.get(DECLARATION_PATHS[0]), after.get(DECLARATION_PATHS[1])))


def confirmation_summary(plan: Plan) -> list[str]:
    """What apply prints last, right above its prompt: the declaration before -> after on one line, and the work."""
    change = declaration_change(plan)
    declaration = f"{change[0]} -> {change[1]}" if change else "declaration unchanged by this plan"
    return [f"cluster {cluster_name(plan)}: {declaration}",
            f"{plural(len(plan.steps), 'step')}, {plural(plan.cluster_upgrades, 'cluster upgrade')}"]
