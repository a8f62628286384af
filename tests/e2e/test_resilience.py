"""Crash safety and transient faults (issue 5 acceptance): kill -9 at random moments, 20% faults."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate import commands
from twinkit import fast_session, requests_json, world_json

SCENARIO = "multi-nodetype"  # three node types, one under Manual policy: the longest migration


def _apply_process(plan: str, state: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "migrate", "apply", plan, "--yes", "--state", str(state), "--output", "json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _journal(state: Path) -> dict:
    files = list(state.glob("*.journal.json"))
    return json.loads(files[0].read_text()) if files else {}


@pytest.mark.slow
def test_kill_9_at_25_moments_always_converges_with_only_in_flight_requests_repeated(twin_factory, tmp_path: Path) -> None:
    # The uninterrupted run on an identical world gives the baseline of mutating requests.
    reference = twin_factory(SCENARIO, time_scale=3000)
    commands.apply(reference.plan_file, state_location=str(tmp_path / "reference"), session=fast_session(reference))
    baseline = requests_json(reference)["mutating"]

    twin = twin_factory(SCENARIO, time_scale=250)
    env = {**os.environ, **twin.env}
    state = tmp_path / "state"
    rng = random.Random(20261129)
    kills = in_flight_kills = 0
    for _ in range(25):
        process = _apply_process(str(twin.plan_file), state, env)
        assert process.stdout is not None
        process.stdout.readline()  # the first event: the run has planned and holds the lock
        time.sleep(rng.uniform(0.05, 0.9))
        if process.poll() is not None:
            break  # finished before the kill
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        journal = _journal(state)
        if any(step.get("operation_url") for step in journal.get("steps", [])):
            in_flight_kills += 1
    final = _apply_process(str(twin.plan_file), state, env)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err

    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    assert _journal(state)["status"] == "complete"
    assert kills >= 20, f"only {kills} kills landed before the migration finished"
    assert in_flight_kills >= 3, "too few kills landed inside a long-running operation to prove re-attachment"
    extra = requests_json(twin)["mutating"] - baseline
    assert 0 <= extra <= kills, f"{extra} extra mutating requests for {kills} kills"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_migration_completes_with_20_percent_transient_faults(twin_factory, tmp_path: Path, seed: int) -> None:
    twin = twin_factory("old-primary", faults=f"rate=0.2,seed={seed}")
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=fast_session(twin))
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health_worst"] == "Healthy"
    faulted = [r for r in requests_json(twin)["requests"] if r.get("fault")]
    assert faulted, "the fault injection did not fire"
