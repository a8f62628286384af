"""Azure DevOps pipeline integration: logging commands on stdout, one per line, flushed.

``##[group]`` per step, ``##vso[task.logissue]`` for findings, ``##vso[task.setvariable]`` outputs
(``hasChanges``, ``blocked``, ``startingState``), ``##vso[task.uploadsummary]`` with the Markdown report and
``##vso[task.complete]`` with the result
(https://learn.microsoft.com/azure/devops/pipelines/scripts/logging-commands). Inside a pipeline
(``TF_BUILD=True``) or with ``--ci azure-devops`` this replaces the terminal output, unless ``--output`` /
``--format`` asks for a machine-readable stdout: then stdout carries only that document and every logging
command goes to stderr, which the agent reads for commands too (runbooks/azure-devops/README.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, TextIO

from .errors import ExitCode, SfmigrateError
from .progress import describe
from .safe_output import safe, write_command

if TYPE_CHECKING:
    from .commands import ApplyResult
    from .plan import Plan

TaskResult = Literal["Succeeded", "SucceededWithIssues", "Failed"]


def enabled(option: str | None, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if option == "azure-devops":
        return True
    if option == "none":
        return False
    return str(env.get("TF_BUILD", "")).lower() == "true"


def _escape(value: str, *, property_value: bool = False) -> str:
    """The logging-command escapes: %, CR and LF always; ; and ] inside properties; and no command inside
    a value (``safe``: secrets removed, ``##vso[``/``##[`` neutralized; issue 13)."""
    text = safe(str(value)).replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(";", "%3B").replace("]", "%5D")
    return text


def plain(text: str) -> str:
    """One line that the agent cannot take for a command (Azure and guest texts carry CR/LF, certificate
    subjects and error messages may carry ``##vso[``)."""
    return safe(" ".join(str(text).split()))


def command(area_action: str, message: str = "", **properties: Any) -> str:
    props = ";".join(f"{k}={_escape(str(v), property_value=True)}" for k, v in properties.items() if v is not None)
    return f"##vso[{area_action}{' ' + props if props else ''}]{_escape(message)}"


class AzureDevOps:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._open_group = False
        self.steps: dict[str, dict[str, Any]] = {}  # per step: title, start, seconds, error (apply's summary)

    def record(self, event: dict[str, Any]) -> None:
        """Remember a step's start, duration and failure for the run's summary (whichever sink shows progress)."""
        step, detail = event.get("step"), event.get("detail") or {}
        if not step:
            return
        entry = self.steps.setdefault(str(step), {"title": "", "started": "", "seconds": None, "result": "running"})
        kind = event.get("type")
        if kind == "step-start":
            entry.update(title=detail.get("title", ""), started=str(event.get("time", "")), result="running")
        elif kind == "step-done":
            entry.update(seconds=detail.get("seconds"), result="done")
        elif kind == "step-failed":
            entry.update(result="failed", error=str(detail.get("error", "")))

    def write(self, line: str) -> None:
        """A line of data: never a command (issue 13)."""
        self.stream.write(safe(line) + "\n")
        self.stream.flush()  # agents read stdout line by line

    def write_command(self, line: str) -> None:
        """One of sfmigrate's own logging commands; its data parts went through ``plain``/``command``."""
        write_command(self.stream, line)

    # -- progress (apply) -----------------------------------------------------------------------------
    def __call__(self, event: dict[str, Any]) -> None:
        self.record(event)
        kind = event.get("type")
        if kind == "step-start":
            self._close()
            self.write_command(f"##[group]{plain(event.get('step') or '')}: {plain((event.get('detail') or {}).get('title', ''))}")
            self._open_group = True
            return
        if kind == "step-failed":
            self.write_command(f"##[error]{plain(describe(event))}")
            self._close()
            return
        self.write(f"{str(event.get('time', ''))[11:19]} {kind} {plain(describe(event))}")
        if kind == "step-done":
            self._close()

    def _close(self) -> None:
        if self._open_group:
            self.write_command("##[endgroup]")
            self._open_group = False

    # -- plan outputs ---------------------------------------------------------------------------------
    def publish_plan(self, plan: Plan, summary: Path) -> None:
        for finding in plan.findings:
            if finding.severity in ("error", "warning"):
                self.write_command(command("task.logissue", f"{finding.message} Remedy: {finding.remedy}", type=finding.severity, code=finding.code))
        self.set_output("hasChanges", "true" if plan.has_changes else "false")
        self.set_output("blocked", "true" if plan.blocked else "false")
        self.set_output("startingState", plan.starting_state)
        self.write_command(command("task.uploadsummary", str(summary.resolve())))

    def set_output(self, name: str, value: str) -> None:
        self.write_command(command("task.setvariable", value, variable=name, isOutput="true"))

    def complete(self, result: TaskResult, message: str) -> None:
        """``result``: Succeeded | SucceededWithIssues | Failed (the process still exits non-zero on failure)."""
        self._close()
        self.write_command(command("task.complete", message, result=result))


def set_output_variables(values: Mapping[str, str], stream: TextIO | None = None) -> None:
    """``##vso[task.setvariable variable=NAME;isOutput=true]VALUE`` for each value, written on purpose (escaped:
    a value holds one line). Later jobs read them as ``dependencies.<job>.outputs['<step>.NAME']``, later stages as
    ``stageDependencies.<stage>.<job>.outputs['<step>.NAME']`` in a job or ``dependencies.<stage>.outputs[...]``
    in a stage condition (https://learn.microsoft.com/azure/devops/pipelines/process/set-variables-scripts#set-an-output-variable-for-use-in-future-stages,
    https://learn.microsoft.com/azure/devops/pipelines/process/expressions#dependencies)."""
    ado = AzureDevOps(stream)
    for name, value in values.items():
        ado.set_output(name, value)


def finish_plan(plan: Plan, exit_code: int, reports: list[str], stream: TextIO | None = None) -> ExitCode:
    """Publish a plan in a pipeline and give the step's exit code: pending changes exit 0 (``hasChanges``
    carries them; a non-zero exit would fail the step); blocked or unreadable still fail it."""
    from .report import write_report

    summary = next((Path(p) for p in reports if p.lower().endswith(".md")), None)
    if summary is None:
        summary = summary_path("sfmigrate-plan.md")
        write_report(plan, str(summary))
    ado = AzureDevOps(stream)  # stderr when stdout carries a JSON/Markdown/HTML report (issue 14)
    ado.publish_plan(plan, summary)
    if exit_code in (ExitCode.OK, ExitCode.CHANGES_PENDING):
        warnings = any(f.severity == "warning" for f in plan.findings)
        ado.complete("SucceededWithIssues" if warnings else "Succeeded", f"{len(plan.steps)} steps planned")
        return ExitCode.OK
    ado.complete("Failed", "blocked by error findings" if exit_code == ExitCode.BLOCKED else "discovery failed")
    return ExitCode(exit_code)


def finish_apply(ado: AzureDevOps, result: ApplyResult | None = None, error: SfmigrateError | None = None,
                 summary: Path | None = None) -> None:
    """Publish how an apply ended in a pipeline: the ``migrationStatus`` output, the run's Markdown summary
    (``summary``: where to write it; uploaded as ``plan`` uploads its report) and the task result. A stop at a
    requested point (exit 4) succeeds with issues; any other error fails the step."""
    from .runner import one_line

    if summary is not None:
        try:
            summary.parent.mkdir(parents=True, exist_ok=True)
            summary.write_text(apply_summary(ado.steps, result, error), encoding="utf-8")
        except OSError as exc:  # the summary is a courtesy: never hide how the run ended behind it
            ado.write(f"sfmigrate: the run summary could not be written to {summary}: {exc.strerror or exc}")
        else:
            ado.write_command(command("task.uploadsummary", str(summary.resolve())))
    if error is not None:
        ado.set_output("migrationStatus", type(error).__name__)
        ado.complete("SucceededWithIssues" if error.exit_code == ExitCode.STOPPED else "Failed", one_line(error))
        return
    assert result is not None
    ado.set_output("migrationStatus", "complete")
    ado.complete("Succeeded", "nothing to do" if result.nothing_to_do else f"{len(result.plan.steps)} steps applied")


def apply_summary_path(env: Mapping[str, str] | None = None) -> Path | None:
    """Where apply's run summary goes: the agent's temp directory; none outside an agent (no file in the
    working directory of a run that has no pipeline to upload it to)."""
    env = os.environ if env is None else env
    base = env.get("AGENT_TEMPDIRECTORY")
    return Path(base) / "sfmigrate-apply.md" if base else None


def summary_path(name: str, env: Mapping[str, str] | None = None) -> Path:
    """Where to put a Markdown summary when no --report was given (the agent's temp directory)."""
    env = os.environ if env is None else env
    base = env.get("AGENT_TEMPDIRECTORY") or env.get("BUILD_ARTIFACTSTAGINGDIRECTORY") or os.getcwd()
    return Path(base) / name


def set_progress(ado: AzureDevOps, done: int, total: int, step: str) -> None:
    """``##vso[task.setprogress value=N;]STEP`` with N = done steps / all steps * 100, at each step's start and end
    (https://learn.microsoft.com/azure/devops/pipelines/scripts/logging-commands#setprogress-show-percentage-completed)."""
    value = min(100, max(0, int(done * 100 / total))) if total else 0
    ado.write_command(f"##vso[task.setprogress value={value};]{_escape(plain(step))}")


def apply_summary(steps: dict[str, dict[str, Any]], result: ApplyResult | None, error: SfmigrateError | None) -> str:
    """The run as Markdown for the pipeline's summary tab: the result, then each step with its duration."""
    from .runner import one_line

    if error is not None:
        outcome = f"**{type(error).__name__}** (exit {int(error.exit_code)}): {_cell(one_line(error))}"
    elif result is not None and result.nothing_to_do:
        outcome = "**nothing to do**: the cluster is already declared by common name"
    else:
        outcome = f"**complete**: {len(result.plan.steps) if result else 0} steps, {result.mutating if result else 0} changes sent"
    lines = ["## sfmigrate apply", "", outcome, ""]
    if steps:
        lines += ["| step | title | result | seconds |", "|---|---|---|---|"]
        for name, entry in steps.items():
            seconds = entry.get("seconds")
            lines.append(f"| {_cell(name)} | {_cell(str(entry.get('title', '')))} | {entry.get('result')}"
                         f"{': ' + _cell(str(entry['error'])) if entry.get('error') else ''} | "
                         f"{'' if seconds is None else seconds} |")
    if error is not None and error.exit_code == ExitCode.FAILED:
        lines += ["", "resumable: run `sfmigrate apply` again (runbooks/README.md)"]
    return safe("\n".join(lines)) + "\n"


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: one line, no column break."""
    return " ".join(text.split()).replace("|", "\\|")
