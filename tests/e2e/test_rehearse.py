"""Rehearsal (issue 6): a twin of the live world reproduces the real apply's outcome; the live world is only read."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate import commands
from migrate.rehearsal import rehearse
from twinkit import fast_session, requests_json, world_json

CONVERTIBLE = ["goal-primary", "goal-secondary", "old-primary", "old-newer-than-goal", "two-old-certs",
               "linux-nodetype", "multi-nodetype", "rbac-vault"]


def _phase_by_phase(steps: list[str]) -> list[object]:
    """Steps in order, except that the node types of one phase roll out together and finish in any order
    (issue 15: stage, swap, cleanup): each such run of steps compares as a set."""
    phase = {"stage-goal": "stage", "install-kv-extension": "swap", "deliver-by-secret": "swap", "cleanup-secrets": "cleanup"}
    blocks: list[object] = []
    for name in steps:
        kind = phase.get(name.split(":")[0])
        if kind and blocks and isinstance(blocks[-1], tuple) and blocks[-1][0] == kind:
            blocks[-1][1].add(name)
        else:
            blocks.append((kind, {name}) if kind else name)
    return blocks


@pytest.mark.parametrize("scenario", CONVERTIBLE)
def test_rehearsal_reproduces_the_real_apply(twin_factory, tmp_path: Path, scenario: str) -> None:
    live = twin_factory(scenario)
    session = fast_session(live)
    result = rehearse(live.plan_file, out=tmp_path / "rehearsal", session=session)
    assert result.outcome == "Healthy", (result.error, result.verdict, result.notes)
    assert result.twin_steps == result.live_steps
    assert result.verdict["declaration"] == "common_name" and result.verdict["health_worst"] == "Healthy"
    assert _phase_by_phase([e["step"] for e in result.timeline if e["type"] == "step-done"]) == _phase_by_phase(result.twin_steps)
    # The live world was only read: no write, no secret.
    log = requests_json(live)
    assert log["mutating"] == 0
    assert not any("/secrets" in r["path"] for r in log["requests"])
    assert world_json(live)["cluster"]["declaration"] == "thumbprint"
    # The real apply then does what the rehearsal did, with the same outcome.
    applied = commands.apply(live.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert [s.name for s in applied.plan.steps] == result.twin_steps
    cluster = world_json(live)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy"


@pytest.mark.parametrize("scenario, code", [("issuer-not-pinned", "ISSUER_NOT_PINNED"), ("self-signed-goal", "GOAL_SELF_SIGNED")])
def test_rehearsal_of_a_blocked_world_is_blocked_for_the_same_reason(twin_factory, tmp_path: Path, scenario: str, code: str) -> None:
    live = twin_factory(scenario)
    result = rehearse(live.plan_file, out=tmp_path / "rehearsal", session=fast_session(live))
    assert result.outcome == "Blocked"
    assert code in {f["code"] for f in result.findings if f["severity"] == "error"}
    assert requests_json(live)["mutating"] == 0


def test_rehearse_command_exits_with_the_outcome(twin_factory, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    live = twin_factory("goal-primary")
    env = {**os.environ, **live.env}
    done = subprocess.run([sys.executable, "-m", "migrate", "rehearse", str(live.plan_file), "--format", "json",
                           "--out", str(tmp_path / "r")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "Healthy"
    text = subprocess.run([sys.executable, "-m", "migrate", "rehearse", str(live.plan_file), "--out", str(tmp_path / "t")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert text.returncode == 0 and text.stdout.startswith("rehearsal outcome: Healthy")
    assert requests_json(live)["mutating"] == 0
