"""The after-run report: what a run did, from its journal alone (no Azure call), as HTML, Markdown or JSON.

:func:`build_run_report` reads a :class:`~migrate.journal.model.JournalState` (and the saved plan's findings,
when the plan file is a saved plan); :func:`render_run` renders it. Its JSON form is versioned like the plan
report's: ``format_version``, minor versions only add fields.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any

from ..arm_ids import name_of
from ..errors import UsageError
from ..findings import Finding, sort_findings
from ..journal.model import JournalState
from ._common import RUNBOOK_ROOT
from .declaration import BeforeAfter, run_declaration
from .timeline import Timeline, duration_text, run_timeline

FORMAT_VERSION = "1.0"
RUN_FORMATS = ("html", "md", "json")


@dataclass(frozen=True)
class StepRow:
    name: str
    title: str
    kind: str
    status: str
    attempts: int
    started_at: str | None
    finished_at: str | None
    seconds: float | None
    last_error: str | None
    cluster_upgrade: bool

    @property
    def took(self) -> str:
        return duration_text(self.seconds) if self.seconds is not None else ""

    @property
    def runbook(self) -> str | None:
        """The step's runbook page (runbooks/steps/<kind with dashes>.md)."""
        return f"{RUNBOOK_ROOT}/steps/{self.kind.replace('_', '-')}.md" if self.kind else None


@dataclass
class RunReport:
    cluster_id: str
    status: str
    run_id: str | None
    plan_hash: str
    created_at: str
    updated_at: str
    location: str
    steps: list[StepRow]
    declaration: BeforeAfter
    timeline: Timeline
    last_error: str | None = None
    findings: list[Finding] | None = None  # the saved plan's; None: the plan file was not a saved plan

    @property
    def cluster_name(self) -> str:
        return name_of(self.cluster_id) or self.cluster_id

    @property
    def current(self) -> StepRow | None:
        """The step the run ended on: the failed or running one, else the first pending one."""
        for status in ("failed", "running", "pending"):
            row = next((s for s in self.steps if s.status == status), None)
            if row is not None:
                return row
        return None

    @property
    def cluster_upgrades(self) -> int:
        return sum(1 for s in self.steps if s.cluster_upgrade and s.status == "done")

    def summary(self) -> str:
        done = sum(1 for s in self.steps if s.status == "done")
        current = self.current
        where = f" at step {current.name}" if current is not None and self.status != "complete" else ""
        kind = self.declaration.after.kind
        return (f"Run for {self.cluster_name}: {self.status}{where}; {done} of {len(self.steps)} steps done, "
                f"{self.cluster_upgrades} cluster upgrades" + (f"; declared by {kind}." if kind != "unknown" else "."))

    def to_dict(self) -> dict[str, Any]:
        ba = self.declaration
        return {
            "format_version": FORMAT_VERSION, "kind": "run", "cluster": self.cluster_id, "status": self.status,
            "run_id": self.run_id, "plan_hash": self.plan_hash, "created_at": self.created_at,
            "updated_at": self.updated_at, "state": self.location, "summary": self.summary(), "last_error": self.last_error,
            "declaration": {
                "before": {"kind": ba.before.kind, "lines": [vars(line) | {"issuers": list(line.issuers)} for line in ba.before.lines]},
                "after": {"kind": ba.after.kind, "lines": [vars(line) | {"issuers": list(line.issuers)} for line in ba.after.lines]},
                "observed": ba.observed, "observed_by": ba.observed_by or None,
            },
            "steps": [{"name": s.name, "title": s.title, "kind": s.kind, "status": s.status, "attempts": s.attempts,
                       "started_at": s.started_at, "finished_at": s.finished_at, "seconds": s.seconds,
                       "last_error": s.last_error, "cluster_upgrade": s.cluster_upgrade} for s in self.steps],
            "findings": [f.to_dict() for f in self.findings] if self.findings is not None else None,
        }


def build_run_report(state: JournalState, location: str, findings: list[Finding] | None = None) -> RunReport:
    """The report of the run a journal records (pure)."""
    timeline = run_timeline(state)
    seconds = {bar.step: bar.seconds for bar in timeline.bars}
    rows = []
    for record in state.steps:
        step = record.step
        rows.append(StepRow(
            record.name, (step.title if step else "") or record.name, step.kind if step else "", record.status,
            record.attempts, record.started_at, record.finished_at,
            seconds.get(record.name) if record.started_at and (record.finished_at or record.status == "running") else None,
            record.last_error, bool(step and step.cluster_upgrade)))
    return RunReport(state.cluster_id, state.status, state.run_id, state.plan_hash, state.created_at, state.updated_at,
                     location, rows, run_declaration(state), timeline, state.last_error,
                     sort_findings(findings) if findings is not None else None)


def _md(raw: object) -> str:
    from .markdown import text

    return text(raw)


def render_run_markdown(report: RunReport) -> str:
    from .markdown import code

    lines = [f"## sfmigrate run: {_md(report.cluster_name)}", "", f"**{_md(report.summary())}**", "",
             "| | |", "|---|---|", f"| Cluster | {code(report.cluster_id)} |", f"| Status | {_md(report.status)} |",
             f"| Journal | {code(report.location)} |", f"| Plan hash | {code(report.plan_hash)} |",
             f"| Declaration | {_md(report.declaration.before.kind)} → {_md(report.declaration.after.kind)} |", ""]
    if report.last_error:
        lines += [f"> last error: {_md(report.last_error)}", ""]
    lines += [f"### Steps ({len(report.steps)})", "", "| # | Step | Status | Started | Finished | Took |", "|---|---|---|---|---|---|"]
    for number, row in enumerate(report.steps, 1):
        lines.append(f"| {number} | {_md(row.title)} ({code(row.name)}) | {_md(row.status)} | {_md(row.started_at or '')} | "
                     f"{_md(row.finished_at or '')} | {_md(row.took)} |")
    return "\n".join(lines) + "\n"


def render_run(report: RunReport, fmt: str = "html") -> str:
    """The after-run report as html, md or json."""
    if fmt == "json":
        return _json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "md":
        return render_run_markdown(report)
    if fmt == "html":
        from .html import render_run_html

        return render_run_html(report)
    raise UsageError(f"--format: '{fmt}' is not one of {', '.join(RUN_FORMATS)}")


def report_for(planfile: str, state_location: str | None = None) -> RunReport:
    """The after-run report of ``planfile``'s cluster from the journal at ``state_location`` (as ``apply``'s
    ``--state``). Reads the journal only: no Azure call, except the storage account for blob state. A missing
    journal is a usage error naming --state (exit 64)."""
    from ..commands import load_source, open_session
    from ..journal import open_store

    spec, saved = load_source(planfile)
    credential = None
    if state_location and state_location.startswith("https://"):  # a blob URL is reached with the plan's credential
        credential = open_session(spec).credential
    store = open_store(state_location, spec.cluster.id, credential=credential)
    state = store.load()
    if state is None:
        raise UsageError(f"--state {state_location or '.sfmigrate'}: no journal of cluster {name_of(spec.cluster.id) or spec.cluster.id} "
                         f"there ({store.location}); give the --state that sfmigrate apply used")
    return build_run_report(state, store.location, saved.plan.findings if saved is not None else None)
