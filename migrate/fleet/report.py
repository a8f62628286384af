"""Rendering of the fleet commands: one row per cluster (text, Markdown, JSON)."""

from __future__ import annotations

import html
import json
from typing import Any

from .apply import FleetApplyResult
from .plan import FleetPlanResult

PLAN_COLUMNS = (("cluster", "label"), ("status", "status"), ("starting state", "starting_state"),
                ("blocking findings", "blocking_findings"), ("steps", "steps"), ("cluster upgrades", "cluster_upgrades"),
                ("expected minutes", "expected_minutes"))
APPLY_COLUMNS = (("cluster", "label"), ("outcome", "outcome"), ("steps", "steps"), ("writes", "mutating_requests"),
                 ("seconds", "seconds"), ("detail", "detail"))
STATUS_COLUMNS = (("cluster", "label"), ("status", "status"), ("steps done", "progress"), ("cluster state", "cluster_state"),
                  ("declaration", "declaration"), ("last error", "last_error"))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return " ".join(str(value).split())


def table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], fmt: str = "text") -> str:
    cells = [[_cell(row.get(key)) for _, key in columns] for row in rows]
    headers = [title for title, _ in columns]
    if fmt == "md":
        escape = [[c.replace("|", "\\|") for c in line] for line in cells]
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in escape]) + "\n"
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines) + "\n"


def html_page(title: str, rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> str:
    """A self-contained page with one table (every cell escaped; no script, no external resource)."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(key)))}</td>" for _, key in columns) + "</tr>" for row in rows)
    style = "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>{style}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>\n")


def render_fleet_plan(result: FleetPlanResult, fmt: str = "text") -> str:
    report = result.to_report()
    if fmt == "json":
        return json.dumps(report, indent=2, default=str) + "\n"
    if fmt == "html":
        return html_page(f"Fleet plan: {report['summary']['clusters']} clusters", report["clusters"], PLAN_COLUMNS)
    summary = report["summary"]
    counts = ", ".join(f"{summary.get(k, 0)} {w}" for k, w in (("changes", "to change"), ("ok", "nothing to do"),
                                                               ("blocked", "blocked"), ("error", "not observed")))
    title = f"Fleet plan: {summary['clusters']} clusters ({counts})"
    body = table(report["clusters"], PLAN_COLUMNS, fmt)
    errors = [f"- {c['label']}: {c['error']}" for c in report["clusters"] if c["error"]]
    head = f"# {title}\n\n" if fmt == "md" else f"{title}\n\n"
    return head + body + ("\n" + "\n".join(errors) + "\n" if errors else "")


def render_fleet_apply(result: FleetApplyResult, fmt: str = "text") -> str:
    report = result.to_report()
    if fmt == "json":
        return json.dumps(report, indent=2, default=str) + "\n"
    tail = f"\nstopped: {result.stopped_reason}\n" if result.stopped_reason else ""
    return table(report["clusters"], APPLY_COLUMNS, fmt) + tail


def render_fleet_status(rows: list[dict[str, Any]], fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps({"clusters": rows}, indent=2, default=str) + "\n"
    shown = [{**row, "progress": f"{row['steps_done']}/{row['steps']}"} for row in rows]
    return table(shown, STATUS_COLUMNS, fmt)
