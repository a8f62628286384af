"""The CLI's contract: exit codes, confirmation, locking, stopping points, interruption, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from twinkit import requests_json, world_json


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, capture_output=True, text=True, timeout=timeout)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migrate", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(state: Path) -> dict:
    return json.loads(next(state.glob("*.journal.json")).read_text())


def test_plan_exit_codes_and_formats(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    text = run(["plan", str(twin.plan_file)], env)
    assert text.returncode == 2, text.stderr
    assert "GOAL_ABSENT_GOAL_NEWER" in text.stdout and "convert-cluster" in text.stdout
    as_json = run(["plan", str(twin.plan_file), "--format", "json", "--out", str(tmp_path / "saved.json")], env)
    report = json.loads(as_json.stdout)
    assert report["has_changes"] is True and report["blocked"] is False and report["format_version"].startswith("1.")
    assert (tmp_path / "saved.json").exists()
    for fmt in ("md", "html"):
        assert run(["plan", str(twin.plan_file), "--format", fmt], env).returncode == 2
    assert requests_json(twin)["mutating"] == 0


def test_blocked_plan_and_apply_exit_3(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("self-signed-goal")
    env = {**os.environ, **twin.env}
    assert run(["plan", str(twin.plan_file)], env).returncode == 3
    applied = run(["apply", str(twin.plan_file), "--yes", "--state", str(tmp_path / "s")], env)
    assert applied.returncode == 3 and "GOAL_SELF_SIGNED" in applied.stderr
    assert "Traceback" not in applied.stderr
    assert requests_json(twin)["mutating"] == 0


def test_usage_errors_exit_64_in_one_line(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic")
    env = {**os.environ, **twin.env}
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: sfmigrate/v1\ncluster: {id: nope}\n")
    for args in (["plan", str(bad)], ["plan", str(tmp_path / "missing.yaml")], ["apply", str(twin.plan_file)],
                 ["apply", str(twin.plan_file), "--yes", "--until", "no-such-step", "--state", str(tmp_path / "s")]):
        result = run(args, env)
        assert result.returncode == 64, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert requests_json(twin)["mutating"] == 0


def test_until_and_postpone_cutover_stop_with_exit_4_then_resume(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    state = tmp_path / "state"
    until = run(["apply", str(twin.plan_file), "--yes", "--state", str(state), "--until", "declare-goal-secondary"], env)
    assert until.returncode == 4, until.stderr
    assert journal(state)["status"] == "stopped"
    assert not world_json(twin)["cluster"]["certificate"].get("thumbprintSecondary")  # stopped before that upgrade
    postponed = run(["apply", str(twin.plan_file), "--yes", "--state", str(state), "--postpone-cutover"], env)
    assert postponed.returncode == 4, postponed.stderr
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "thumbprint" and cluster["health_worst"] == "Healthy"
    done = run(["apply", str(twin.plan_file), "--yes", "--state", str(state)], env)
    assert done.returncode == 0, done.stderr
    assert world_json(twin)["cluster"]["declaration"] == "common_name"
    status = run(["status", str(twin.plan_file), "--state", str(state), "--format", "json"], env)
    document = json.loads(status.stdout)
    assert document["status"] == "complete" and document["counts"]["pending"] == 0
    assert document["cluster"]["declaration"] == "common_name" and document["lock_holder"] is None


def test_second_apply_is_locked_out_with_exit_5_naming_the_holder(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("multi-nodetype", time_scale=150)
    env = {**os.environ, **twin.env}
    state = tmp_path / "state"
    first = start(["apply", str(twin.plan_file), "--yes", "--state", str(state), "--output", "json"], env)
    assert first.stdout is not None
    first.stdout.readline()  # it holds the lock once it emits
    second = run(["apply", str(twin.plan_file), "--yes", "--state", str(state)], env)
    assert second.returncode == 5, second.stderr
    assert f"pid {first.pid}" in second.stderr
    first.send_signal(signal.SIGINT)  # Ctrl-C: stops after saving the journal
    first.communicate(timeout=120)
    assert first.returncode == 130
    assert journal(state)["status"] == "interrupted"
    resumed = run(["apply", str(twin.plan_file), "--yes", "--state", str(state)], env)
    assert resumed.returncode == 0, resumed.stderr
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy"


def test_saved_plan_show_apply_then_apply_again_is_nothing_to_do(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("goal-primary")
    env = {**os.environ, **twin.env}
    saved = tmp_path / "out" / "saved.json"  # --out creates its folder
    assert run(["plan", str(twin.plan_file), "--out", str(saved)], env).returncode == 2
    shown = run(["show", str(saved), "--format", "json"], env)
    assert shown.returncode == 0 and json.loads(shown.stdout)["steps"]
    state = tmp_path / "state"
    assert run(["apply", str(saved), "--yes", "--state", str(state)], env).returncode == 0
    again = run(["apply", str(saved), "--yes", "--state", str(state)], env)  # a re-run of a job that succeeded
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert run(["show", str(saved)], env).returncode == 0  # an old saved plan can still be shown


def test_a_changed_world_makes_a_saved_plan_stale(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    saved = tmp_path / "saved.json"
    assert run(["plan", str(twin.plan_file), "--out", str(saved)], env).returncode == 2
    from twinkit import Clients

    clients = Clients(twin)  # someone tags a scale set's model in the meantime
    # (a PATCH of just the secrets: a full PUT built from a GET would drop protectedSettings, issue 10)
    patch = {"properties": {"virtualMachineProfile": {"osProfile": {"secrets": []}}}}
    clients.compute.virtual_machine_scale_sets.begin_update("rg-sf", "nt0", patch).result()
    stale = run(["apply", str(saved), "--yes", "--state", str(tmp_path / "state")], env)
    assert stale.returncode == 1 and "stale" in stale.stderr
