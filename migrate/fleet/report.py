"""Rendering of the fleet commands: one row per cluster (text, Markdown, JSON)."""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..report._common import blocking, runbook_path
from ..report.html import VerdictView, Why, environment
from ..report.timeline import PHASE_LABEL, Timeline, tick_step, duration_text, expected_timeline
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
        return render_fleet_html(result)
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


# -- the fleet plan as an HTML page (jinja2, autoescaped; issue 15: "the HTML fleet report shows each cluster's
#    timeline") -------------------------------------------------------------------------------------------------
STATUS_CLASS = {"blocked": "BLOCKED", "changes": "CHANGES", "ok": "NOTHING", "error": "failed"}
STATUS_TEXT = {"blocked": "blocked", "changes": "to change", "ok": "nothing to do", "error": "not observed"}
_CHART = (1000.0, 180.0, 24.0)  # SVG width, label column, row height


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    css: str  # the step's phase (report.css colours), or "settle"
    title: str


@dataclass(frozen=True)
class TimelineRow:
    label: str
    status: str
    y: float
    segments: list[Segment]
    end_x: float
    end_text: str


def _cluster_timelines(result: FleetPlanResult) -> dict[str, Timeline]:
    """Each planned cluster's expected timeline (migrate.report.timeline, from its scale sets' shapes as discovered)."""
    return {c.member.cluster_id: expected_timeline(c.plan, c.scale_sets, c.member.spec.rollout)
            for c in result.clusters if c.plan is not None and c.status == "changes"}


def _timeline_rows(result: FleetPlanResult, timelines: dict[str, Timeline]) -> tuple[list[TimelineRow], list[tuple[float, str]], float]:
    """One SVG row per cluster on one time axis (the clusters run side by side in ``fleet apply``)."""
    width, label_width, row_height = _CHART
    longest = max([t.total for t in timelines.values()] + [1.0])
    scale = (width - label_width - 110) / longest
    rows = []
    for index, cluster in enumerate(result.clusters):
        y = 24 + index * row_height
        timeline = timelines.get(cluster.member.cluster_id)
        segments: list[Segment] = []
        if timeline is None:
            rows.append(TimelineRow(cluster.label, cluster.status, y, [], label_width + 4, STATUS_TEXT[cluster.status]))
            continue
        for bar in timeline.bars:
            x = label_width + bar.start * scale
            w = max(bar.seconds * scale, 1.5)
            segments.append(Segment(x, w, bar.phase, f"{bar.step}: {duration_text(bar.seconds)}"))
            if bar.settle > 0:
                segments.append(Segment(x + w, bar.settle * scale, "settle", f"settle after {bar.step}: {duration_text(bar.settle)}"))
        end = max((s.x + s.width for s in segments), default=label_width)
        rows.append(TimelineRow(cluster.label, cluster.status, y, segments, end + 4, duration_text(timeline.total)))
    step = tick_step(longest)
    ticks = [(label_width + n * step * scale, duration_text(n * step)) for n in range(int(longest // step) + 1)]
    return rows, ticks, 24 + len(rows) * row_height + 8


def _fleet_verdict(result: FleetPlanResult, timelines: dict[str, Timeline]) -> VerdictView:
    report = result.to_report()
    summary = report["summary"]
    counts = ", ".join(f"{summary[k]} {STATUS_TEXT[k]}" for k in ("changes", "blocked", "ok", "error") if summary.get(k))
    statuses = {c.status for c in result.clusters}
    state = "BLOCKED" if statuses & {"blocked", "error"} else "CHANGES" if "changes" in statuses else "NOTHING"
    view = VerdictView(state, f"{summary['clusters']} clusters: {counts or 'none'}.")
    for cluster in result.clusters:
        if cluster.status == "blocked" and cluster.plan is not None:
            view.why += [Why(f.code, f"{cluster.label}: {f.message}", runbook_path(f)) for f in blocking(cluster.plan)]
        elif cluster.status == "error":
            view.why.append(Why("not observed", f"{cluster.label}: {cluster.error or 'discovery found it unreadable'}"))
    longest = max([t.total for t in timelines.values()], default=0.0)
    if "changes" in statuses:
        view.next.append(f"Review each cluster's plan (sfmigrate fleet plan with --out saves them), then run sfmigrate fleet apply "
                         f"with this fleet file and --state: the longest cluster takes about {duration_text(longest)} in Azure "
                         "by the timeline's reckoning; the clusters run side by side.")
    if "blocked" in statuses:
        view.next.append("fleet apply skips the blocked clusters: fix each blocking finding as its runbook says, then plan again.")
    if "error" in statuses:
        view.next.append("Give the credential read access to the clusters that could not be observed, then plan again.")
    if not view.next:
        view.next = ["Nothing: every cluster is already declared by common name."]
    view.facts = [("Fleet file", str(result.fleet.path), True), ("Clusters", str(summary["clusters"]), False)]
    return view


def render_fleet_html(result: FleetPlanResult) -> str:
    """The fleet plan's page: a verdict card, the fleet table (blocking findings link their runbook pages) and a
    timeline card with one row per cluster."""
    timelines = _cluster_timelines(result)
    rows, ticks, height = _timeline_rows(result, timelines)
    phases = [(p, PHASE_LABEL[p]) for p in PHASE_LABEL if any(b.phase == p for t in timelines.values() for b in t.bars)]
    clusters = []
    for cluster, row in zip(result.clusters, result.to_report()["clusters"]):
        timeline = timelines.get(cluster.member.cluster_id)
        findings = blocking(cluster.plan) if cluster.plan is not None and cluster.status == "blocked" else []
        segments = cluster.member.cluster_id.split("/")  # /subscriptions/S/resourceGroups/RG/...: checked ARM ids
        clusters.append({**row, "css": STATUS_CLASS[cluster.status], "status_text": STATUS_TEXT[cluster.status],
                         "subscription": segments[2], "resource_group": segments[4],
                         "blocking": [{"code": f.code, "runbook": runbook_path(f)} for f in findings],
                         "expected": duration_text(timeline.total) if timeline else "-"})
    footnotes = next((list(t.footnotes) for t in timelines.values()), [])
    count = len(result.clusters)
    page = environment().get_template("fleet.html.j2").render(
        title=f"sfmigrate fleet plan: {count} clusters",
        subtitle=f"What sfmigrate fleet apply would do to the clusters of {result.fleet.path.name}; nothing has been changed.",
        verdict=_fleet_verdict(result, timelines), clusters=clusters, rows=rows, ticks=ticks, chart_height=height,
        chart_width=_CHART[0], label_width=_CHART[1], phases=phases, footnotes=footnotes,
        generated=f"Generated by sfmigrate at {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds').replace('+00:00', 'Z')}.")
    return page + "\n"


def write_fleet_html(result: FleetPlanResult, directory: str | Path) -> Path:
    """``DIR/fleet.html`` beside the saved plans (``fleet plan --out DIR``)."""
    target = Path(directory) / "fleet.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_fleet_html(result), encoding="utf-8")
    return target
