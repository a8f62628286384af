"""-v/--verbose and --debug are accepted after the subcommand as well as before it (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from migrate.cli import cli


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


def test_every_command_takes_verbose_and_debug() -> None:
    commands = _commands(cli)
    assert {"plan", "apply", "status", "validate", "emulator serve", "emulator env"} <= {name for name, _ in commands}
    for name, command in commands:
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"-v", "--verbose", "--debug"} <= options, name


def _sfmigrate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, capture_output=True, text=True, timeout=300)


def test_verbose_after_the_subcommand_says_which_credential(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    quiet = _sfmigrate(["plan", str(twin.plan_file)], env)
    assert quiet.returncode == 2 and "credential:" not in quiet.stderr, quiet.stderr
    for args in (["plan", "-v", str(twin.plan_file)], ["-v", "plan", str(twin.plan_file)], ["plan", str(twin.plan_file), "--verbose"]):
        said = _sfmigrate(args, env)
        assert said.returncode == 2, (args, said.stderr)
        assert "sfmigrate: credential: DefaultAzureCredential" in said.stderr, args
    # the issue's own example: apply -v PLANFILE (here stopped before its second step)
    applied = _sfmigrate(["apply", "-v", str(twin.plan_file), "--yes", "--state", str(tmp_path / "s"),
                          "--until", "grant-vault-access", "--output", "plain"], env)
    assert applied.returncode == 4, applied.stderr
    assert "sfmigrate: credential: DefaultAzureCredential" in applied.stderr


def test_debug_after_the_subcommand_logs_each_request_with_status_request_id_and_duration(twin_factory) -> None:
    twin = twin_factory("old-primary")
    planned = _sfmigrate(["plan", str(twin.plan_file), "--debug"], {**os.environ, **twin.env})
    assert planned.returncode == 2, planned.stderr
    lines = [line for line in planned.stderr.splitlines() if line.startswith("sfmigrate: HTTP GET ")]
    cluster = next(line for line in lines if "/clusters/sfcluster?" in line)
    assert " -> 200 in " in cluster and " ms (x-ms-request-id " in cluster and "(x-ms-request-id -)" not in cluster
    assert any(" -> 404 in " in line and "/userAssignedIdentities/" in line for line in lines)  # the identity to create
    assert "Request URL: " in planned.stderr and "Response status: 200" in planned.stderr  # azure-core's logging policy
    assert "DefaultAzureCredential acquired a token from ManagedIdentityCredential" in planned.stderr
    assert planned.stdout.startswith("Plan for sfcluster:")  # stdout is still the report alone
