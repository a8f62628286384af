"""A self-contained HTML report: one file, inline CSS, no scripts, no external assets; every value escaped."""

from __future__ import annotations

from html import escape

from ..findings import ERROR, INFO, WARNING
from ..plan import Plan
from ._common import (
    ChangeKind, change_kind, cluster_name, counts_text, ordered_findings, plural, runbook_path, state_text, summary_line, value,
    verdict,
)

_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1rem;margin:1.5rem 0 .25rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font:12px/1.4 ui-monospace,Consolas,monospace;word-break:break-all;white-space:pre-wrap}
.summary{font-weight:600;padding:.6rem .8rem;border-radius:6px}
.BLOCKED{background:#ffebe9;border:1px solid #cf222e}.CHANGES{background:#fff8c5;border:1px solid #bf8700}
.NOTHING{background:#dafbe1;border:1px solid #1a7f37}
.sev{font-weight:600;text-transform:uppercase;font-size:.8rem}.error{color:#cf222e}.warning{color:#9a6700}.info{color:#0969da}
.add{color:#1a7f37}.del{color:#cf222e}.mod{color:#9a6700}.muted{color:#57606a}
.upgrade{background:#fbefff;color:#8250df;border-radius:4px;padding:0 .3rem;font-size:.8rem}
""".strip()
_KIND_CLASS: dict[ChangeKind, str] = {"+": "add", "-": "del", "~": "mod"}


def _e(raw: object) -> str:
    return escape(str(raw), quote=True)


def _code(raw: object) -> str:
    return f"<code>{_e(raw)}</code>"


def render_plan(plan: Plan, *, color: bool = False) -> str:
    del color
    state = plan.starting_state
    findings = ordered_findings(plan)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>sfmigrate plan: {_e(cluster_name(plan))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>sfmigrate plan: {_e(cluster_name(plan))}</h1>",
        f'<p class="summary {verdict(plan)}">{_e(summary_line(plan))}</p>',
        "<table>",
        f"<tr><th>Cluster</th><td>{_code(plan.cluster_id)}</td></tr>",
        f"<tr><th>Starting state</th><td>{_code(state)} {_e(state_text(state))}</td></tr>",
        f"<tr><th>Findings</th><td>{_e(counts_text(plan.findings))}</td></tr>",
        f"<tr><th>Steps</th><td>{len(plan.steps)} ({_e(plural(plan.cluster_upgrades, 'cluster upgrade'))})</td></tr>",
        f"<tr><th>Resources touched</th><td>{'<br>'.join(_code(r) for r in plan.resources_touched) or 'none'}</td></tr>",
        f"<tr><th>Plan</th><td>{_code(plan.plan_hash())} <span class=\"muted\">created {_e(plan.created_at)}</span></td></tr>",
        "</table>",
    ]
    parts += [f'<p class="muted">Note: {_e(note)}</p>' for note in plan.notes]
    parts.append(f"<h2>Findings ({len(findings)})</h2>")
    if findings:
        parts.append("<table><tr><th>Severity</th><th>Code</th><th>Resource</th><th>Finding</th><th>Remedy</th></tr>")
        for item in findings:
            severity = item.severity if item.severity in (ERROR, WARNING, INFO) else ""
            runbook = runbook_path(item)
            runbook_html = f'<br><span class="muted">runbook: {_code(runbook)}</span>' if runbook else ""
            parts.append(
                f'<tr><td class="sev {severity}">{_e(item.severity)}</td><td>{_code(item.code)}</td>'
                f"<td>{_code(item.resource_id) if item.resource_id else ''}</td><td>{_e(item.message)}</td>"
                f"<td>{_e(item.remedy)}{runbook_html}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No findings.</p>")
    parts.append(f"<h2>Steps ({len(plan.steps)})</h2>")
    if not plan.steps:
        parts.append("<p>Nothing would change.</p>")
    for number, step in enumerate(plan.steps, 1):
        upgrade = ' <span class="upgrade">cluster upgrade</span>' if step.cluster_upgrade else ""
        parts.append(f'<h3 id="step-{number}">{number}. {_e(step.title or step.name)}{upgrade}</h3>')
        parts.append(f'<p class="muted">{_code(step.name)} ({_e(step.kind)})</p>')
        if step.why:
            parts.append(f"<p><em>Why:</em> {_e(step.why)}</p>")
        if step.resources:
            parts.append("<p>Resources: " + ", ".join(_code(r) for r in step.resources) + "</p>")
        if step.changes:
            parts.append("<table><tr><th></th><th>Property</th><th>Before</th><th>After</th></tr>")
            for change in step.changes:
                kind = change_kind(change.before, change.after)
                parts.append(f'<tr><td class="{_KIND_CLASS[kind]}">{_e(kind)}</td><td>{_code(change.path)}</td>'
                             f"<td>{_code(value(change.before))}</td><td>{_code(value(change.after))}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
