"""The ``sfmigrate`` command line: parse, call the library, render, map errors to exit codes.

Exit codes (a contract): 0 ok / nothing to do; 1 operational failure (resumable); 2 plan has changes;
3 blocked by an error finding; 4 stopped at a requested point; 5 locked by another run; 64 usage;
130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from .errors import ExitCode, SfmigrateError, UsageError


class _Group(click.Group):
    """Turn every library error into its exit code and a one-line message, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SfmigrateError as exc:
            click.echo(f"sfmigrate: {exc}", err=True)
            ctx.exit(int(exc.exit_code))
        except click.exceptions.Exit:
            raise
        except click.UsageError as exc:
            exc.exit_code = ExitCode.USAGE
            raise
        except KeyboardInterrupt:
            click.echo("sfmigrate: interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sfmigrate")
def cli() -> None:
    """Move Service Fabric clusters from thumbprint to common-name certificates, safely and resumably."""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("sfmigrate: aborted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))
    except SfmigrateError as exc:
        click.echo(f"sfmigrate: {exc}", err=True)
        sys.exit(int(exc.exit_code))
    sys.exit(0)


# -- the twin -------------------------------------------------------------------------------------------
@cli.group()
def emulator() -> None:
    """The Azure twin: serve it, list its scenarios."""


@emulator.command("serve")
@click.option("--scenario", "scenario", default=None, help="Built-in scenario name (default: basic).")
@click.option("--scenario-file", type=click.Path(dir_okay=False), default=None, help="A scenario file (sfmigrate/twin-v1).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback).")
@click.option("--port", default=0, type=int, show_default=True, help="Port (0: any free port).")
@click.option("--time-scale", default=None, type=float, help="Simulated seconds per wall second (default 120).")
@click.option("--faults", default=None, help="Fault injection spec, e.g. 'rate=0.2,seed=7'.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None, help="Where the CA bundle and plan file go.")
def emulator_serve(scenario: str | None, scenario_file: str | None, host: str, port: int, time_scale: float | None,
                   faults: str | None, state_dir: str | None) -> None:
    """Serve the twin over HTTPS; print one JSON line when ready; run until SIGTERM or SIGINT."""
    from .emulator.twin import start_twin

    if scenario and scenario_file:
        raise UsageError("--scenario and --scenario-file: give one, not both")
    if not 0 <= port <= 65535:
        raise UsageError("--port: must be between 0 and 65535")
    twin = start_twin(scenario, scenario_file, host=host, port=port, time_scale=time_scale, faults=faults, state_dir=state_dir)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(json.dumps(twin.ready_info()), nl=True)
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        twin.stop()


@emulator.command("scenarios")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def emulator_scenarios(output: str) -> None:
    """List the built-in scenarios (each is also a file you can copy)."""
    from .emulator.scenario import builtin_names, builtin_path, load_scenario

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
