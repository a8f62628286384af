"""``make demo``: start the Azure twin, plan, apply with live progress, show status and the twin's verdict,
write the reports, stop the twin. Everything runs through the same library calls an operator's run uses.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from . import commands
from .errors import ExitCode, UsageError
from .progress import PlainProgress

DEFAULT_SCENARIO = "multi-nodetype"  # three node types: Automatic, Manual and Linux


def run_demo(out: str | Path = "demo-output", scenario: str = DEFAULT_SCENARIO, time_scale: float = 600.0,
             echo: Callable[[str], None] = print, live: bool = False) -> ExitCode:
    """Run the whole story on a twin; return the exit code (0 when the cluster ended Healthy by common name)."""
    from aztwin import TwinSetupError, start_twin

    from .report import render_plan, write_report
    from .twin_plan import write_plan_for

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    echo(f"== Starting the Azure twin (scenario '{scenario}', time x{time_scale:g})")
    try:
        twin = start_twin(scenario, time_scale=time_scale, state_dir=out_dir / "twin")
    except TwinSetupError as exc:
        raise UsageError(str(exc)) from None
    try:
        os.environ.update(twin.env)
        control = twin.control()
        plan_file = write_plan_for(twin)
        if plan_file is None:
            raise UsageError(f"--scenario: scenario '{scenario}' declares no goal to migrate to")
        echo(f"   ARM endpoint {twin.base_url}; plan file {plan_file}")
        echo("\n== Plan (read-only)")
        planned = commands.plan(plan_file)
        echo(render_plan(planned.plan, "text"))
        for name in ("plan.md", "plan.html", "plan.json"):
            write_report(planned.plan, str(out_dir / name), snapshot=planned.snapshot, rollout=planned.session.spec.rollout)
        echo(f"== Apply ({len(planned.plan.steps)} steps, {planned.plan.cluster_upgrades} cluster upgrades)")
        from .progress import LiveProgress

        sink: LiveProgress | PlainProgress = LiveProgress() if live else PlainProgress()
        try:
            result = commands.apply(plan_file, state_location=str(out_dir / "state"), emit=sink)
        finally:
            if isinstance(sink, LiveProgress):
                sink.close()
        echo(f"   {result.mutating} changes sent, {result.requests} requests in all")
        echo("\n== Status")
        from .report.status import render_status

        status = commands.status(planned.plan.cluster_id, str(out_dir / "state"), planned.session)
        echo(render_status(status, "text"))
        (out_dir / "status.json").write_text(render_status(status, "json"), encoding="utf-8")
        write_run_reports(str(plan_file), out_dir)
        world = control.world()
        cluster = world["cluster"]
        verdict = {
            "declaration": cluster["declaration"],
            "health": cluster["health"],
            "health_worst": cluster["health_worst"],
            "cluster_state": cluster["cluster_state"],
            "certificateCommonNames": cluster["certificateCommonNames"],
            "nodes": sum(len(t["nodes"]) for t in cluster["node_types"]),
            "health_history": cluster["health_history"],
        }
        (out_dir / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")
        echo("== The twin's verdict")
        echo(f"   declared by {verdict['declaration']}; health now {verdict['health']}, worst during the run "
             f"{verdict['health_worst']}; cluster {verdict['cluster_state']}; {verdict['nodes']} nodes")
        ok = verdict["declaration"] == "common_name" and verdict["health_worst"] == "Healthy"
        echo(f"\n== Reports in {out_dir}/: plan.md plan.html plan.json run.html run.md run.json status.json verdict.json "
             f"({time.monotonic() - started:.1f} s)")
        return ExitCode.OK if ok else ExitCode.FAILED
    finally:
        twin.stop()


def write_run_reports(plan_file: str, out_dir: Path) -> None:
    """The after-run report (``sfmigrate report``) from the demo's journal, beside the plan's: run.html/.md/.json."""
    from .report.run import render_run, report_for
    from .safe_output import redact

    report = report_for(plan_file, str(out_dir / "state"))
    for fmt in ("html", "md", "json"):
        (out_dir / f"run.{fmt}").write_text(redact(render_run(report, fmt)), encoding="utf-8")


def check_builtin_scenario(name: str | None) -> None:
    """``--scenario`` takes a built-in name only; a file goes through ``--scenario-file`` (issue 13)."""
    from aztwin import builtin_names

    if name is not None and name not in builtin_names():
        raise UsageError(f"--scenario: unknown scenario '{name}' (a file goes through --scenario-file); "
                         f"built-in scenarios: {', '.join(builtin_names())}")
