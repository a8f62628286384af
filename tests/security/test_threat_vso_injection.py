"""Threat: Azure DevOps logging-command injection (issue 13, defect 3).

Whoever can name a certificate (its subject) or shape a message Azure returns can put ``##vso[...]`` in
text sfmigrate prints. The Azure Pipelines agent executes ``##vso[`` anywhere in a line of a step's output,
so each such line must come out neutralized; only sfmigrate's own commands may start a line with ``##vso[``
or ``##[``, and their data parts are neutralized too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from twinkit import requests_json

INJECTED = "##vso[task.setvariable variable=pwned]yes"
EVIL_SUBJECT = f"CN=evil {INJECTED} ##[error]fake"
OWN_COMMANDS = re.compile(r"^(?:##vso\[task\.(?:logissue|setvariable variable=(?:hasChanges|blocked|startingState|migrationStatus);"
                          r"|uploadsummary|complete|setprogress value=\d{1,3};\])|##\[(?:group|endgroup|error)\])")  # setprogress: issue 14


def _run(args: list[str], twin: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(twin.env)
    env["AGENT_TEMPDIRECTORY"] = str(cwd)
    return subprocess.run([sys.executable, "-m", "migrate", *args, "--ci", "azure-devops"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _assert_no_injected_command(output: str) -> None:
    """Every command the agent would see is one of sfmigrate's own, at the start of its line, once."""
    for line in output.splitlines():
        starts = [m.start() for m in re.finditer(r"##(?:vso)?\[", line, re.IGNORECASE)]
        assert starts in ([], [0]), f"a command the agent would execute from data: {line!r}"
        if starts:
            assert OWN_COMMANDS.match(line), f"not one of sfmigrate's commands: {line!r}"
    assert "pwned" not in output or "**vso[task.setvariable variable=pwned]" in output


def _renew_with_evil_subject(twin: Any) -> None:
    vault = twin.world.goal["vault"].rsplit("/", 1)[-1]
    renewed = twin.control().call("POST", "/_emulator/certificates/renew",
                                  {"vault": vault, "certificate": twin.world.goal["certificate"], "subject": EVIL_SUBJECT})
    assert INJECTED in renewed["subject"]


def test_certificate_subject_carrying_vso_setvariable_in_plan_and_blocked_apply(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    _renew_with_evil_subject(twin)
    planned = _run(["plan", str(twin.plan_file)], twin, tmp_path)
    assert planned.returncode == 3, planned.stderr  # the subject's CN is not the declared common name
    assert "**vso[task.setvariable variable=pwned]yes" in planned.stdout  # shown, but harmless
    _assert_no_injected_command(planned.stdout)
    _assert_no_injected_command(planned.stderr)

    applied = _run(["apply", str(twin.plan_file), "--yes", "--state", str(tmp_path / "state")], twin, tmp_path)
    assert applied.returncode == 3, applied.stderr
    assert requests_json(twin)["mutating"] == 0
    assert any(line.startswith("##vso[task.complete result=Failed]") for line in applied.stdout.splitlines())
    _assert_no_injected_command(applied.stdout)
    _assert_no_injected_command(applied.stderr)


def test_certificate_subject_carrying_vso_setvariable_through_a_whole_apply(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    _renew_with_evil_subject(twin)
    plan = yaml.safe_load(Path(twin.plan_file).read_text())
    plan["goal"].pop("commonName", None)  # sfmigrate takes the CN from the certificate: the attacker's text
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(plan))
    applied = _run(["apply", str(plan_file), "--yes", "--state", str(tmp_path / "state")], twin, tmp_path)
    assert applied.stdout.count("##[group]") >= 2, applied.stdout + applied.stderr  # the run went through its steps
    _assert_no_injected_command(applied.stdout)
    _assert_no_injected_command(applied.stderr)
    assert any(line.startswith("##vso[task.complete result=") for line in applied.stdout.splitlines())


def test_arm_error_message_carrying_vso_setvariable_in_plan_and_apply(twin_factory, tmp_path: Path) -> None:
    import json

    from armfront import arm_front

    twin = twin_factory("old-primary")
    with arm_front(twin) as (handler, front):
        handler.status = 409
        handler.body = json.dumps({"error": {"code": "Conflict", "message": f"busy\r\n{INJECTED}\n##[error]fake {INJECTED}"}}).encode()
        plan = yaml.safe_load(Path(twin.plan_file).read_text())
        plan["cloud"]["armEndpoint"] = front
        plan_file = tmp_path / "plan.yaml"
        plan_file.write_text(yaml.safe_dump(plan))
        planned = _run(["plan", str(plan_file)], twin, tmp_path)
        applied = _run(["apply", str(plan_file), "--yes", "--state", str(tmp_path / "state")], twin, tmp_path)
    assert planned.returncode == 1 and "**vso[task.setvariable variable=pwned]" in planned.stderr, planned.stderr
    assert applied.returncode == 1 and any(line.startswith("##vso[task.complete result=Failed]") for line in applied.stdout.splitlines())
    for done in (planned, applied):
        _assert_no_injected_command(done.stdout)
        _assert_no_injected_command(done.stderr)
    assert requests_json(twin)["mutating"] == 0


def test_progress_sinks_given_a_plain_stream_neutralize_an_injected_command() -> None:
    """The library's sinks (apply --output plain/json) neutralize by themselves, not only behind the CLI's guard."""
    import io

    from migrate.progress import JsonProgress, PlainProgress

    event = {"type": "step-failed", "step": "convert-cluster", "time": "2026-01-01T00:00:00Z",
             "detail": {"error": f"Conflict: {INJECTED}", "subject": EVIL_SUBJECT}}
    for sink in (PlainProgress, JsonProgress):
        stream = io.StringIO()
        sink(stream)(event)
        assert "##vso[" not in stream.getvalue() and "##[" not in stream.getvalue(), stream.getvalue()
        assert "**vso[task.setvariable variable=pwned]yes" in stream.getvalue()
