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
