"""Markdown fit for an Azure DevOps build summary (``##vso[task.uploadsummary]``): summary table, findings
table with severity and remedy, then each step with a table of its property changes."""

from __future__ import annotations

from ..findings import ERROR, INFO, WARNING, Severity
from ..plan import Plan
from ._common import (
    Verdict, change_kind, cluster_name, counts_text, ordered_findings, plural, runbook_path, state_text, summary_line, value,
    verdict,
)

SEVERITY_ICON: dict[Severity, str] = {ERROR: "⛔ error", WARNING: "⚠️ warning", INFO: "ℹ️ info"}
VERDICT_TEXT: dict[Verdict, str] = {"BLOCKED": "⛔ **Blocked**: apply refuses this plan", "CHANGES": "🟡 **Changes pending**", "NOTHING": "✅ **Nothing to do**"}
_PUNCTUATION = "\\`*_[]|#"


def text(raw: object) -> str:
    """Plain text in a table cell or paragraph: no markup, no HTML, no line breaks."""
    out = []
    for ch in str(raw):
        if ch in _PUNCTUATION:
            out.append("\\" + ch)
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == "&":
            out.append("&amp;")
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def code(raw: object) -> str:
    """A code span that holds any text (backticks inside get a longer fence; pipes are escaped for tables)."""
    body = " ".join(str(raw).splitlines()).replace("|", "\\|")
    fence = "`"
    while fence in body:
        fence += "`"
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def render_plan(plan: Plan, *, color: bool = False) -> str:
    del color  # Markdown has no colour of its own
    state = plan.starting_state
    lines = [
        f"## sfmigrate plan: {text(cluster_name(plan))}",
        "",
        f"**{text(summary_line(plan))}**",
        "",
        "| | |",
        "|---|---|",
        f"| Verdict | {VERDICT_TEXT[verdict(plan)]} |",
        f"| Cluster | {code(plan.cluster_id)} |",
        f"| Starting state | {code(state)} {text(state_text(state))} |",
        f"| Findings | {text(counts_text(plan.findings))} |",
        f"| Steps | {len(plan.steps)} ({text(plural(plan.cluster_upgrades, 'cluster upgrade'))}) |",
        f"| Resources touched | {'<br>'.join(code(r) for r in plan.resources_touched) or 'none'} |",
        f"| Plan hash | {code(plan.plan_hash())} (created {text(plan.created_at)}) |",
        "",
    ]
    for note in plan.notes:
        lines += [f"> {text(note)}", ""]
    findings = ordered_findings(plan)
    lines += [f"### Findings ({len(findings)})", ""]
    if findings:
        lines += ["| Severity | Code | Resource | Finding | Remedy |", "|---|---|---|---|---|"]
        for item in findings:
            runbook = runbook_path(item)
            remedy = text(item.remedy) + (f" (runbook: {code(runbook)})" if runbook else "")
            lines.append(f"| {SEVERITY_ICON.get(item.severity, text(item.severity))} | {code(item.code)} | "
                         f"{code(item.resource_id) if item.resource_id else ''} | {text(item.message)} | {remedy} |")
    else:
        lines.append("No findings.")
    lines += ["", f"### Steps ({len(plan.steps)})", ""]
    if not plan.steps:
        lines.append("Nothing would change.")
    for number, step in enumerate(plan.steps, 1):
        upgrade = " (cluster upgrade)" if step.cluster_upgrade else ""
        lines += [f"#### {number}. {text(step.title or step.name)}{upgrade}", "", f"Step {code(step.name)} ({code(step.kind)})"]
        if step.why:
            lines += ["", f"_Why:_ {text(step.why)}"]
        if step.resources:
            lines += ["", "Resources: " + ", ".join(code(r) for r in step.resources)]
        if step.changes:
            lines += ["", "| | Property | Before | After |", "|---|---|---|---|"]
            for change in step.changes:
                lines.append(f"| {change_kind(change.before, change.after)} | {code(change.path)} | "
                             f"{code(value(change.before))} | {code(value(change.after))} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
