"""``sfmigrate fleet``: many clusters from one fleet file (issue 15); the library is migrate/fleet/, the exit codes are
in runbooks/exit-codes.md. migrate/cli.py adds them to its ``fleet`` group (which gives
them -v/--debug and the one-line errors)."""

from __future__ import annotations

import json
import os
import signal
import sys
from types import FrameType
from typing import Any

import click

from .console import CI_OPTION, approved
from .errors import Declined, ExitCode, UsageError

WRITES_OPTION = click.option(
    "--writes-per-minute", type=click.IntRange(min=1), default=None,
    help="Mutating ARM requests per subscription per minute, shared by the fleet's clusters (default 600: ARM's "
         "write refill rate, learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).")


def _load_fleet(fleetfile: str, writes_per_minute: int | None = None) -> Any:
    from .cloud.policies import ARM_WRITES_PER_MINUTE
    from .fleet.session import load

    return load(fleetfile, writes_per_minute=writes_per_minute or ARM_WRITES_PER_MINUTE)


@click.command("plan")
@click.argument("fleetfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json", "html"]), default="text", show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Write a saved plan per cluster (DIR/<subscription>/<rg>/<cluster>.json), DIR/fleet.json and DIR/fleet.html.")
@click.option("--matrix", "matrix_file", type=click.Path(dir_okay=False), default=None,
              help="Write the Azure DevOps apply matrix (JSON: {jobName: {planFile, clusterId}} for each unblocked "
                   "cluster with changes; planFile relative to --out, which it needs); in a pipeline also set the "
                   "output variables matrix and clusters (runbooks/azure-devops/README.md).")
@CI_OPTION
def fleet_plan_command(fleetfile: str, fmt: str, out: str | None, matrix_file: str | None, ci: str) -> None:
    """Plan every cluster of the fleet (concurrently); change nothing.

    Exit 0 nothing to do, 2 changes and none blocked, 3 any cluster blocked, 1 a cluster could not be observed.
    """
    from pathlib import Path

    from . import azure_devops
    from .fleet.matrix import apply_matrix, matrix_json
    from .fleet.plan import fleet_plan, save_fleet_plans
    from .fleet.report import render_fleet_plan, write_fleet_html
    from .input_files import output_error

    if matrix_file and not out:
        raise UsageError("--matrix: needs --out DIR (the matrix names the saved plans under it)")
    result = fleet_plan(_load_fleet(fleetfile))
    if out:
        try:
            save_fleet_plans(result, out)
            write_fleet_html(result, out)  # the fleet's HTML report beside fleet.json
        except OSError as exc:
            raise output_error("--out", out, exc) from None
    if matrix_file and out:
        matrix = apply_matrix(result, out)
        try:
            Path(matrix_file).write_text(matrix_json(matrix) + "\n", encoding="utf-8")
        except OSError as exc:
            raise output_error("--matrix", matrix_file, exc) from None
        if azure_devops.enabled(ci):  # stdout carries the report when --format asks for one: commands go to stderr
            azure_devops.set_output_variables({"matrix": matrix_json(matrix), "clusters": str(len(matrix))},
                                              sys.stderr if fmt != "text" else None)
    click.echo(render_fleet_plan(result, fmt), nl=False)
    sys.exit(result.exit_code)


@click.command("apply")
@click.argument("fleetfile", type=click.Path(dir_okay=False))
@click.option("--state", "state", required=True, help="Journal location for every cluster (one journal and lock each): a directory or a blob URL.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required when not at a terminal).")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="Clusters migrated at once.")
@click.option("--canary", type=click.IntRange(min=0), default=0, show_default=True,
              help="The first K clusters go first and must finish (Ready) before the others start.")
@click.option("--max-failures", type=click.IntRange(min=1), default=None, help="After F failed clusters, start no other.")
@click.option("--postpone-cutover", is_flag=True, help="Every cluster stops before its conversion (exit 4, resumable).")
@click.option("--output", type=click.Choice(["auto", "plain", "json"]), default="auto", show_default=True,
              help="Progress: auto (a live line per cluster at a terminal, else plain), lines prefixed with the cluster, or JSON events with 'cluster'.")
@WRITES_OPTION
def fleet_apply_command(fleetfile: str, state: str, yes: bool, concurrency: int, canary: int, max_failures: int | None,
                        postpone_cutover: bool, output: str, writes_per_minute: int | None) -> None:
    """Migrate every cluster of the fleet, each with its own journal and lock, at most N at once.

    Exit 0 all done, 1 any failed or not started (resumable: run it again), 3 some skipped as blocked, 4 postponed, 130 interrupted.
    """
    from .errors import Interrupted
    from .fleet.apply import FleetApplyOptions, FleetRun
    from .fleet.report import render_fleet_apply
    import io

    from .progress import JsonProgress, PlainProgress
    from .runner import RunOptions
    from .safe_output import safe

    if not yes and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("--yes: required when not running at a terminal (nothing was changed)")
    loaded = _load_fleet(fleetfile, writes_per_minute)
    if not yes and not approved(f"Do you want to migrate the {len(loaded.members)} clusters of {fleetfile}?"):
        raise Declined("fleet apply cancelled: nothing was changed")  # exit 1, as apply's prompt

    from . import azure_devops
    from .progress.fleet_view import FleetLiveProgress

    if output == "auto":  # the live view only on a terminal outside a pipeline (issue 15: one line per cluster)
        output = "live" if sys.stdout.isatty() and not azure_devops.enabled(None) else "plain"
    live: FleetLiveProgress | None = None  # started just before the run (below)

    def emit(event: dict[str, Any]) -> None:  # called under the fleet's emit lock: lines never interleave
        if live is not None:
            live(event)
        elif output == "json":
            JsonProgress()(event)  # the event carries "cluster"
        elif event.get("type") == "cluster-finished":
            detail = event.get("detail") or {}
            click.echo(safe(f"[{event['cluster']}] finished: {detail.get('outcome')}" + (f" ({detail['error']})" if detail.get("error") else "")))
        else:
            line = io.StringIO()
            PlainProgress(line)(event)
            click.echo(f"[{event['cluster']}] {line.getvalue().rstrip()}")

    options = FleetApplyOptions(state, concurrency, canary, max_failures, RunOptions(postpone_cutover=postpone_cutover))
    run = FleetRun(loaded, options, emit)

    def stop(signum: int, frame: FrameType | None) -> None:  # the main thread only; workers stop at their next event
        if run.stopping:  # a second Ctrl-C/SIGTERM while clusters wait on Azure: leave now, as kill -9 would; every
            # journal already holds its operation's URL (saved before the wait), so `fleet apply` re-attaches
            sys.stderr.write("sfmigrate: interrupted again: leaving now; the Azure operations continue and "
                             "`sfmigrate fleet apply` re-attaches to them\n")
            sys.stderr.flush()
            os._exit(int(ExitCode.INTERRUPTED))
        run.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    if output == "live":
        live = FleetLiveProgress([loaded.label(m) for m in loaded.members])
    try:
        result = run.run()
    except BaseException:
        if live is not None:
            live.close()  # give the terminal back before the error is shown
        raise
    if live is not None:
        live.close(result.to_report()["clusters"])  # the per-cluster table stays on screen
        if result.stopped_reason:
            click.echo(f"stopped: {result.stopped_reason}", err=True)
    elif output == "json":  # one more JSON line: the fleet's result
        click.echo(safe(json.dumps({"type": "fleet-result", **result.to_report()}, default=str)))
    else:
        click.echo(render_fleet_apply(result, "text"), nl=False, err=True)
    sys.exit(result.exit_code)


@click.command("status")
@click.argument("fleetfile", type=click.Path(dir_okay=False))
@click.option("--state", "state", required=True, help="Journal location (as for fleet apply).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def fleet_status_command(fleetfile: str, state: str, fmt: str) -> None:
    """Every cluster's migration at a glance: journal status, steps done, the cluster's state, last error."""
    from .fleet.report import render_fleet_status
    from .fleet.status import fleet_status

    click.echo(render_fleet_status(fleet_status(_load_fleet(fleetfile), state), fmt), nl=False)


@click.command("schema")
def fleet_schema_command() -> None:
    """Print the fleet file's JSON Schema (plans/fleet.schema.json)."""
    from .fleet.spec import fleet_schema_text

    click.echo(fleet_schema_text(), nl=False)


COMMANDS = [fleet_plan_command, fleet_apply_command, fleet_status_command, fleet_schema_command]
