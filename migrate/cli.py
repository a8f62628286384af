"""The ``sfmigrate`` command line: parse, call the library, render, map errors to exit codes.

Exit codes (a contract): 0 ok / nothing to do; 1 operational failure (resumable), or apply's confirmation not
answered `yes`; 2 plan has changes; 3 blocked by an error finding; 4 stopped at a requested point; 5 locked by
another run; 64 usage; 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from .console import CI_OPTION, configure_logging, confirm_at_terminal, print_error, set_verbosity, verbosity_options
from .errors import ExitCode, Interrupted, SfmigrateError, UsageError

if TYPE_CHECKING:
    from .plan import Plan


def _one_line(error: BaseException) -> str:
    from .runner import one_line

    return one_line(error)


class _Group(click.Group):
    """Turn every library error into its exit code and a one-line message, never a traceback.

    click's own usage errors (unknown option, missing argument) are left to :func:`main`, which runs click
    outside its standalone mode and maps every ``click.ClickException`` to ``ExitCode.USAGE`` (64).
    """

    group_class = type  # subgroups (emulator) are _Group too: their commands take -v/--debug as well

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group) and not any(p.name == "debug" for p in cmd.params):
            cmd.params.extend(verbosity_options())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SfmigrateError as exc:
            print_error(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("sfmigrate: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sfmigrate")
@click.option("-v", "--verbose", is_flag=True, help="Say more on stderr (which credential is used, for one).")
@click.option("--debug", is_flag=True, help="Log HTTP traffic and every credential's failure reason on stderr (redacted).")
def cli(verbose: bool, debug: bool) -> None:
    """Move Service Fabric clusters from thumbprint to common-name certificates, safely and resumably."""
    from .safe_output import install

    install()  # also when called without main() (click's test runner): idempotent
    set_verbosity(verbose, debug)


def main() -> None:
    from .safe_output import install

    install()  # every line printed: secrets redacted, pipeline commands neutralized (issue 13)
    configure_logging()
    try:
        code = cli.main(standalone_mode=False)  # returns the exit code of ctx.exit() in this mode
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("sfmigrate: aborted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:  # click's own usage errors: one line too, naming the argument
        where = f"{exc.ctx.command_path}: " if isinstance(exc, click.UsageError) and exc.ctx else ""
        click.echo(f"sfmigrate: {where}{exc.format_message()}", err=True)
        sys.exit(ExitCode.USAGE)
    except SfmigrateError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: one line, exit 1; SFMIGRATE_DEBUG=1 shows the traceback
        import os

        if os.environ.get("SFMIGRATE_DEBUG"):
            raise
        click.echo(f"sfmigrate: internal error: {type(exc).__name__}: {exc} (set SFMIGRATE_DEBUG=1 for details)", err=True)
        sys.exit(ExitCode.FAILED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


# -- the twin -------------------------------------------------------------------------------------------
@cli.group()
def emulator() -> None:
    """The Azure twin: serve it, list its scenarios."""


@emulator.command("serve")
@click.option("--scenario", "scenario", default=None, help="Built-in scenario name (default: basic).")
@click.option("--scenario-file", type=click.Path(dir_okay=False), default=None, help="A scenario file (sfmigrate/twin-v1).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; a non-loopback address needs --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Listen on a non-loopback --host although the control API has no authentication.")
@click.option("--port", default=0, type=int, show_default=True, help="Port (0: any free port).")
@click.option("--time-scale", default=None, type=float, help="Simulated seconds per wall second (default 120).")
@click.option("--faults", default=None, help="Fault injection spec, e.g. 'rate=0.2,seed=7'.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None, help="Where the CA bundle and plan file go.")
def emulator_serve(scenario: str | None, scenario_file: str | None, host: str, allow_remote: bool, port: int,
                   time_scale: float | None, faults: str | None, state_dir: str | None) -> None:
    """Serve the twin over HTTPS; print one JSON line when ready; run until SIGTERM or SIGINT."""
    from aztwin import TwinSetupError, start_twin

    from .demo import check_builtin_scenario
    from .twin_plan import is_loopback, ready_line, write_plans_for

    if scenario and scenario_file:
        raise UsageError("--scenario and --scenario-file: give one, not both")
    check_builtin_scenario(scenario)
    if not allow_remote and not is_loopback(host):  # the control API has no authentication (issue 13)
        raise UsageError(f"--host {host}: not a loopback address; the twin's control API has no authentication "
                         "(docs/security.md): add --allow-remote to listen there anyway")
    if not 0 <= port <= 65535:
        raise UsageError("--port: must be between 0 and 65535")
    try:
        twin = start_twin(scenario, scenario_file, host=host, port=port, time_scale=time_scale, faults=faults, state_dir=state_dir)
    except TwinSetupError as exc:
        raise UsageError(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        plans = write_plans_for(twin)
        click.echo(json.dumps(ready_line(twin.ready_info(), plans.plan_file, plans.plan_files, plans.fleet_file)), nl=True)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        twin.stop()


@emulator.command("env")
@click.option("--state-dir", type=click.Path(file_okay=False), required=True, help="The --state-dir of a running 'emulator serve'.")
@click.option("--shell", type=click.Choice(["sh", "powershell"]), default="sh", show_default=True)
def emulator_env(state_dir: str, shell: str) -> None:
    """Print the running twin's environment as shell lines: eval "$(sfmigrate emulator env --state-dir DIR)"."""
    from .twin_plan import env_lines

    for line in env_lines(state_dir, shell):
        click.echo(line)


@emulator.command("scenarios")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def emulator_scenarios(output: str) -> None:
    """List the built-in scenarios (each is also a file you can copy)."""
    from aztwin import builtin_names, builtin_path, load_scenario

    rows = []
    for name in builtin_names():
        spec, _ = load_scenario(name)
        rows.append({"name": name, "description": " ".join(spec.description.split()), "file": str(builtin_path(name))})
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        click.echo(f"{row['name']:<{width}}  {row['description']}")


# -- plan, apply, status, unlock ------------------------------------------------------------------------
FORMATS = ["text", "md", "json", "html"]


@cli.command("plan")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Report format on stdout.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Save the plan (with fingerprints) for 'apply'.")
@click.option("--report", "reports", multiple=True, type=click.Path(dir_okay=False),
              help="Also write the report to FILE (format from its extension: .md .json .html .txt); repeatable.")
@CI_OPTION
def plan_command(planfile: str, fmt: str, out: str | None, reports: tuple[str, ...], ci: str) -> None:
    """Dry run: discover, check and plan; change nothing.

    Exit 0 nothing to do, 2 changes pending, 3 blocked by an error finding, 1 operational failure, 64 usage.
    In Azure DevOps mode, changes pending exit 0 and set the output variable hasChanges instead.
    """
    from . import azure_devops, commands
    from .input_files import output_error
    from .report import render_plan, should_color, write_report

    pipeline = azure_devops.enabled(ci)
    result = commands.plan(planfile)
    snapshot, rollout = result.snapshot, result.session.spec.rollout  # the HTML timeline's and declaration's inputs
    click.echo(render_plan(result.plan, fmt, color=fmt == "text" and not pipeline and should_color(sys.stdout),
                           snapshot=snapshot, rollout=rollout), nl=False)
    for path in reports:
        try:
            write_report(result.plan, path, snapshot=snapshot, rollout=rollout)
        except OSError as exc:  # one line naming --report, exit 64 or 1 (issue 13)
            raise output_error("--report", path, exc) from None
    if out:
        try:
            commands.save_plan(result.plan, result.session.spec, out)
        except OSError as exc:
            raise output_error("--out", out, exc) from None
        click.echo(f"saved plan: {out} (apply it with: sfmigrate apply {out})", err=True)
    # A JSON/Markdown/HTML report owns stdout: the logging commands go to stderr then (issue 14)
    commands_to = sys.stderr if fmt != "text" else None
    sys.exit(azure_devops.finish_plan(result.plan, result.exit_code, list(reports), commands_to) if pipeline else result.exit_code)


@cli.command("validate")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate_command(planfile: str, fmt: str) -> None:
    """Check a plan file offline (schema and cross-field rules; no Azure, no credential): exit 0 valid, 64 not.

    For pull-request checks: the same rules 'plan' and 'apply' apply before they read anything from Azure.
    """
    from .spec import load_plan

    try:
        spec = load_plan(planfile)
    except UsageError as exc:
        if fmt == "json":
            click.echo(json.dumps({"valid": False, "file": planfile, "error": _one_line(exc)}))
            sys.exit(ExitCode.USAGE)
        raise
    summary = {"valid": True, "file": planfile, "cluster": spec.cluster.id, "vault": spec.goal.vaultId,
               "certificate": spec.goal.certificateName, "pinnedIssuers": list(spec.goal.pinnedIssuers)}
    if fmt == "json":
        click.echo(json.dumps(summary))
    else:
        click.echo(f"{planfile}: valid (cluster {spec.cluster.id}; goal {spec.goal.certificateName} in {spec.goal.vaultId})")


@cli.command("apply")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--state", "state", default=None, help="Journal location: a directory (default ./.sfmigrate) or an Azure Blob URL / blob:CONTAINER/PREFIX.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (required when not at a terminal).")
@click.option("--until", default=None, help="Stop before the named step (exit 4, resumable).")
@click.option("--postpone-cutover", is_flag=True, help="Stop before the cluster conversion (exit 4, resumable).")
@click.option("--replan", is_flag=True, help="Continue a journal written for a different plan file.")
@click.option("--output", type=click.Choice(["auto", "plain", "json"]), default="auto", show_default=True, help="Progress format.")
@click.option("--heartbeat", "heartbeat", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="Plain, JSON and pipeline output: a 'still running' line at least this often during any wait (>= 1).")
@click.option("--node-type-concurrency", "node_type_concurrency", type=int, default=None,
              help="Node types rolled out at once (default: all; 1: one after another). Manual policy: one update domain at a time across them.")
@CI_OPTION
def apply_command(planfile: str, state: str | None, yes: bool, until: str | None, postpone_cutover: bool, replan: bool,
                  output: str, heartbeat: float, ci: str, node_type_concurrency: int | None = None) -> None:
    """Apply a plan file or a saved plan: checkpointed, resumable, locked per cluster.

    Exit 0 complete or nothing to do, 1 failed (resumable) or not confirmed, 3 blocked before any write, 4 stopped at a
    requested point, 5 locked by another run, 64 usage, 130 interrupted.
    """
    from . import azure_devops, commands
    from .progress import ApplyProgress, HeartbeatSink, JsonProgress, PipelineProgress, PipelineRecorder, PlainProgress
    from .report.status import interruption_message
    from .runner import RunOptions

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not yes and not interactive:
        raise UsageError("--yes: required when not running at a terminal (nothing was changed)")
    if not heartbeat >= 1:  # also NaN
        raise UsageError(f"--heartbeat: {heartbeat:g} is not a number of seconds >= 1")
    # An explicit --output beats TF_BUILD for the progress format; its stdout is then its own (JSON lines), and
    # the logging commands go to stderr (issue 14).
    explicit = output != "auto"
    pipeline = azure_devops.AzureDevOps(sys.stderr if explicit else None) if azure_devops.enabled(ci) else None
    sink: HeartbeatSink | None  # None: a live view, started at the first event
    if pipeline is not None and not explicit:
        sink = PipelineProgress(pipeline)
    elif output == "json":
        sink = JsonProgress()
    elif output == "plain" or not interactive:
        sink = PlainProgress()
    else:
        sink = None
    if pipeline is not None and sink is not None and explicit:
        sink = PipelineRecorder(sink, pipeline)  # the pipeline still keeps the steps for its summary, and its progress

    def confirm(plan: Plan) -> bool:
        if yes:
            return True
        return confirm_at_terminal(plan)

    options = RunOptions(until=until, postpone_cutover=postpone_cutover, node_type_concurrency=node_type_concurrency)  # checked before any file is read
    spec, _ = commands.load_source(planfile)
    session = commands.open_session(spec)
    progress = ApplyProgress(sink, heartbeat, session)  # the heartbeat timer, the cluster polled during upgrades

    def confirmed(plan: Plan) -> bool:
        progress.idle()
        return confirm(plan)

    def terminate(signum: int, frame: FrameType | None) -> None:  # a cancelled pipeline job: stop like Ctrl-C, journal saved
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    failure: SfmigrateError | None = None
    try:
        result = commands.apply(planfile, state_location=state, options=options, replan=replan, emit=progress,
                                confirm=confirmed, session=session)
    except SfmigrateError as exc:
        failure = exc
    finally:
        progress.close()  # the live view's per-step table stays on screen
    if failure is not None:
        if isinstance(failure, Interrupted) and progress.interrupted_in_a_step:  # Ctrl-C, SIGTERM: name the step, once
            said = interruption_message(commands.journal_state(spec.cluster.id, state, session))
            failure = Interrupted(said) if said else failure
        if pipeline is not None:
            azure_devops.finish_apply(pipeline, error=failure, summary=azure_devops.apply_summary_path())
        raise failure
    if pipeline is not None:
        azure_devops.finish_apply(pipeline, result, summary=azure_devops.apply_summary_path())
    if result.nothing_to_do:
        click.echo("nothing to do: the cluster is already declared by common name with the Key Vault extension in place", err=True)
    else:
        click.echo(f"complete: {len(result.plan.steps)} steps, {result.mutating} changes sent (credential: {result.credential})", err=True)


@cli.command("status")
@click.argument("planfile", type=click.Path(dir_okay=False), required=False)
@click.option("--cluster", "cluster_id", default=None, help="Cluster resource id (instead of PLANFILE).")
@click.option("--state", "state", default=None, help="Journal location (as for apply).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status_command(planfile: str | None, cluster_id: str | None, state: str | None, fmt: str) -> None:
    """Show a migration's progress: steps done/running/pending, the cluster's state, elapsed time, last error, lock holder."""
    from . import commands
    from .report.status import render_status

    session = None
    if planfile:
        spec, _ = commands.load_source(planfile)
        cluster_id = spec.cluster.id
        session = commands.open_session(spec)
    if not cluster_id:
        raise UsageError("PLANFILE or --cluster: name the cluster whose migration to show")
    result = commands.status(cluster_id, state, session)
    click.echo(render_status(result, fmt), nl=False)


@cli.command("report")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--state", "state", default=None, help="Journal location (as for apply; default ./.sfmigrate).")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default=None,
              help="Report format (default: from --out's extension, else html).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write the report to FILE instead of stdout.")
def report_command(planfile: str, state: str | None, fmt: str | None, out: str | None) -> None:
    """The after-run report from the journal: each step's actual times and result, the declaration before and
    after. Reads the journal only (no Azure call for a local --state). Exit 0, 64 on bad arguments or no journal."""
    from pathlib import Path

    from .input_files import output_error
    from .report import format_for_path
    from .report.run import render_run, report_for
    from .safe_output import redact

    chosen = fmt or (format_for_path(out, "html") if out else "html")
    if chosen not in ("html", "md", "json"):
        raise UsageError(f"--out {out}: the report is html, md or json; name the file .html, .md or .json, or give --format")
    text = render_run(report_for(planfile, state), chosen)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(redact(text), encoding="utf-8")  # no secret in a report (issue 13)
    except OSError as exc:
        raise output_error("--out", out, exc) from None
    click.echo(f"report: {out}", err=True)


@cli.command("unlock")
@click.argument("planfile", type=click.Path(dir_okay=False), required=False)
@click.option("--cluster", "cluster_id", default=None, help="Cluster resource id (instead of PLANFILE).")
@click.option("--state", "state", default=None, help="Journal location (as for apply).")
@click.option("--force", is_flag=True, help="Required: break the lock; sfmigrate does not check whether its holder is alive.")
def unlock_command(planfile: str | None, cluster_id: str | None, state: str | None, force: bool) -> None:
    """Break a migration's lock and say who held it. It does not check whether that run is alive: make sure
    it is gone first (runbooks/failures/lock-held.md)."""
    from . import commands

    credential = None
    if planfile:
        spec, _ = commands.load_source(planfile)
        cluster_id = spec.cluster.id
        if state and state.startswith("https://"):  # a blob URL is reached with the plan's credential
            credential = commands.open_session(spec).credential
    if not cluster_id:
        raise UsageError("PLANFILE or --cluster: name the cluster whose lock to break")
    if not force:
        raise UsageError("--force: unlock breaks another run's lock; add --force once you are sure that run is gone")
    holder = commands.unlock(cluster_id, state, credential)
    if holder is None:
        click.echo("no lock was held")
    else:
        click.echo(f"broke the lock held by {holder.describe()} (whether that run was still alive was not checked)")


@cli.command("schema")
def schema_command() -> None:
    """Print the plan file's JSON Schema (plans/schema.json)."""
    from .spec import schema_text

    click.echo(schema_text(), nl=False)


@cli.command("demo")
@click.option("--out", default="demo-output", show_default=True, type=click.Path(file_okay=False), help="Where the reports go.")
@click.option("--scenario", default="multi-nodetype", show_default=True, help="The twin's world to migrate.")
@click.option("--time-scale", default=600.0, show_default=True, type=float, help="Simulated seconds per wall second.")
def demo_command(out: str, scenario: str, time_scale: float) -> None:
    """Migrate a cluster on the Azure twin from end to end and write the reports."""
    from .demo import check_builtin_scenario, run_demo

    check_builtin_scenario(scenario)
    sys.exit(run_demo(out, scenario, time_scale, echo=click.echo, live=sys.stdout.isatty()))


@cli.command("rehearse")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Keep the generated scenario, plan and twin state here.")
@click.option("--time-scale", default=2000.0, show_default=True, type=float, help="The rehearsal twin's simulated seconds per wall second.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rehearse_command(planfile: str, out: str | None, time_scale: float, fmt: str) -> None:
    """Dress rehearsal: read the live world (read-only), build its twin, run the same apply there, report.

    Exit 0 when the rehearsal ends Healthy by common name, 3 when it is blocked, 1 when it breaks or fails.
    """
    from .rehearsal import rehearse

    result = rehearse(planfile, out=out, time_scale=time_scale)
    click.echo(json.dumps(result.to_dict(), indent=2, default=str) if fmt == "json" else result.render_text(), nl=fmt == "json")
    sys.exit(result.exit_code)


@cli.command("show")
@click.argument("saved_plan", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def show_command(saved_plan: str, fmt: str) -> None:
    """Show a saved plan (from 'plan --out') without contacting Azure; an old or stale one too."""
    from pathlib import Path

    from . import commands
    from .report import render_plan

    path = Path(saved_plan)
    if not path.is_file():
        raise UsageError(f"SAVED_PLAN: '{path}' does not exist")
    saved = commands.load_saved_plan(path)
    click.echo(render_plan(saved.plan, fmt), nl=False)


# -- fleet: many clusters (issue 15; commands in migrate/cli_fleet.py, library in migrate/fleet/) -------------
@cli.group()
def fleet() -> None:
    """Many clusters from one fleet file (plans/README.md): plan, apply, status."""


def _add_fleet_commands() -> None:
    from .cli_fleet import COMMANDS

    for command in COMMANDS:
        fleet.add_command(command)


_add_fleet_commands()
