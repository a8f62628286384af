"""Azure DevOps mode (TF_BUILD=True) keeps a machine-readable stdout machine-readable (issue 14): `plan --format
json` and `apply --output json` print JSON only on stdout; every logging command goes to stderr, which the agent
reads for commands too; an explicit --output beats TF_BUILD for the progress format; apply uploads a summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from twinkit import world_json


def _sfmigrate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, capture_output=True, text=True, timeout=600)


def _pipeline(twin, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **twin.env, "TF_BUILD": "True", "AGENT_TEMPDIRECTORY": str(tmp_path)}


def _commands(stream: str) -> list[str]:
    return [line for line in stream.splitlines() if line.startswith("##")]


def test_plan_format_json_keeps_stdout_json_and_sends_logging_commands_to_stderr(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("self-signed-goal")
    planned = _sfmigrate(["plan", str(twin.plan_file), "--format", "json"], _pipeline(twin, tmp_path))
    assert planned.returncode == 3, planned.stderr  # blocked still fails the step
    report = json.loads(planned.stdout)  # the whole stdout is one JSON document
    assert report["blocked"] is True
    commands = _commands(planned.stderr)
    assert any(c.startswith("##vso[task.logissue type=error;code=GOAL_SELF_SIGNED]") for c in commands), planned.stderr
    assert "##vso[task.setvariable variable=blocked;isOutput=true]true" in commands
    assert f"##vso[task.uploadsummary]{tmp_path / 'sfmigrate-plan.md'}" in commands
    assert any(c.startswith("##vso[task.complete result=Failed") for c in commands)


def test_plan_text_in_a_pipeline_still_writes_its_commands_on_stdout(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    planned = _sfmigrate(["plan", str(twin.plan_file)], _pipeline(twin, tmp_path))
    assert planned.returncode == 0, planned.stderr
    assert "##vso[task.setvariable variable=hasChanges;isOutput=true]true" in _commands(planned.stdout)


def test_apply_output_json_keeps_stdout_json_lines_and_uploads_a_summary(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    applied = _sfmigrate(["apply", str(twin.plan_file), "--yes", "--state", str(tmp_path / "state"), "--output", "json"],
                         _pipeline(twin, tmp_path))
    assert applied.returncode == 0, applied.stderr
    events = [json.loads(line) for line in applied.stdout.splitlines()]  # every stdout line is a JSON event
    assert events and {"step-start", "step-done", "run-complete"} <= {e["type"] for e in events}
    assert not any(line.startswith("##[group]") for line in applied.stderr.splitlines())  # --output won: no ADO groups
    commands = _commands(applied.stderr)
    assert "##vso[task.setvariable variable=migrationStatus;isOutput=true]complete" in commands
    summary = tmp_path / "sfmigrate-apply.md"
    assert f"##vso[task.uploadsummary]{summary}" in commands
    assert any(c.startswith("##vso[task.complete result=Succeeded") for c in commands)
    text = summary.read_text()
    assert text.startswith("## sfmigrate apply") and "**complete**: 6 steps" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| done |" in line]
    assert [row.split("|")[1].strip() for row in rows][:2] == ["ensure-identity", "grant-vault-access"]
    assert any(row.split("|")[1].strip() == "convert-cluster" for row in rows)
    assert world_json(twin)["cluster"]["declaration"] == "common_name"


def test_a_failed_apply_in_a_pipeline_uploads_a_summary_naming_the_failed_step(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary", faults="match=PUT .*/userAssignedIdentities/,kinds=429,rate=1")
    applied = _sfmigrate(["apply", str(twin.plan_file), "--yes", "--state", str(tmp_path / "state"), "--output", "json"],
                         _pipeline(twin, tmp_path))
    assert applied.returncode == 1, applied.stderr
    [json.loads(line) for line in applied.stdout.splitlines()]
    text = (tmp_path / "sfmigrate-apply.md").read_text()
    assert "**StepFailed** (exit 1)" in text and "| ensure-identity |" in text and "| failed: " in text
    assert "resumable: run `sfmigrate apply` again" in text
    assert any(c.startswith("##vso[task.complete result=Failed") for c in _commands(applied.stderr))
