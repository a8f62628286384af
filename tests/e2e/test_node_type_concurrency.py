"""Node types in parallel (issue 15): `apply --node-type-concurrency N`.

By default the scale-set steps of one phase (stage, swap, cleanup) run together: node type B's roll-out starts
before node type A's has finished; with 1 they run one after another, as before. Under the Manual policy the
group walks one update domain at a time across its node types (SF's upgrade domains span node types). The
world ends Healthy either way, and a kill -9 in the middle of a group converges on rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from aztwin.scenario_load import builtin_path
from migrate import commands
from migrate.runner import RunOptions
from twinkit import fast_session, requests_json, world_json

SCENARIO = "multi-nodetype"  # nt0 Automatic (5 nodes), nt1 Manual (3), nt2 Linux Automatic (3)
PHASE_PREFIXES = ("stage-goal:", "install-kv-extension:", "deliver-by-secret:", "cleanup-secrets:")
PHASES = (("stage-goal:",), ("install-kv-extension:", "deliver-by-secret:"), ("cleanup-secrets:",))  # run together


def _apply(twin: Any, tmp_path: Path, concurrency: int | None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    commands.apply(twin.plan_file, state_location=str(tmp_path / f"state-{concurrency}"), session=fast_session(twin),
                   emit=events.append, options=RunOptions(node_type_concurrency=concurrency))
    return events


def _overlaps(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(B, A): scale-set step B started while A (another node type's) was still running, in event order."""
    running: list[str] = []
    found = []
    for event in events:
        step = event.get("step") or ""
        if not step.startswith(PHASE_PREFIXES):
            continue
        if event["type"] == "step-start":
            found += [(step, other) for other in running]
            running.append(step)
        elif event["type"] in ("step-done", "step-failed") and step in running:
            running.remove(step)
    return found


def _assert_healthy_common_name(twin: Any) -> None:
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]


def test_default_rolls_node_types_out_together_and_one_rolls_them_one_by_one(twin_factory, tmp_path: Path) -> None:
    together = twin_factory(SCENARIO)
    events = _apply(together, tmp_path, None)
    overlaps = _overlaps(events)
    assert ("stage-goal:nt1", "stage-goal:nt0") in overlaps, overlaps  # B's roll-out starts before A's finished
    assert any(b.startswith("install-kv-extension:") or b.startswith("deliver-by-secret:") for b, _ in overlaps), overlaps
    assert all(b.split(":")[0] == a.split(":")[0] or {b.split(":")[0], a.split(":")[0]} <= {"install-kv-extension", "deliver-by-secret"}
               for b, a in overlaps), f"only steps of one phase overlap: {overlaps}"
    stage_events = [e for e in events if (e.get("step") or "").startswith(PHASE_PREFIXES)]
    assert stage_events and all((e.get("detail") or {}).get("scale_set") == e["step"].split(":")[1] for e in stage_events)
    _assert_healthy_common_name(together)

    one_by_one = twin_factory(SCENARIO)
    events = _apply(one_by_one, tmp_path, 1)
    assert _overlaps(events) == []
    _assert_healthy_common_name(one_by_one)
    assert requests_json(one_by_one)["mutating"] == requests_json(together)["mutating"]  # same writes, only sooner


def _two_manual_node_types(tmp_path: Path) -> Path:
    scenario = yaml.safe_load(builtin_path(SCENARIO).read_text(encoding="utf-8"))
    scenario["name"] = "multi-nodetype-manual"
    for node_type in scenario["clusters"][0]["nodeTypes"]:
        node_type["upgradePolicy"] = "Manual"
    path = tmp_path / "two-manual.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    return path


def test_manual_policy_walks_one_update_domain_at_a_time_across_node_types(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory(None, scenario_file=_two_manual_node_types(tmp_path))
    events = _apply(twin, tmp_path, None)
    upgrades = [e for e in events if e["type"] == "manual-upgrade"]
    for phase in PHASES:
        domains = [(e["detail"]["update_domain"], e["detail"]["scale_set"]) for e in upgrades if e["step"].startswith(phase)]
        if not domains:
            continue
        # UD d on every node type, all done, then d + 1: the domains never go back within a phase
        assert [d for d, _ in domains] == sorted(d for d, _ in domains), domains
        assert len({s for _, s in domains}) > 1, domains
    assert any(len({e["detail"]["scale_set"] for e in upgrades if e["step"].startswith(p)}) == 3 for p in PHASES)
    _assert_healthy_common_name(twin)


def test_node_type_concurrency_below_one_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "migrate", "apply", str(tmp_path / "plan.yaml"), "--yes",
                           "--node-type-concurrency", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 64, done.stderr
    assert "--node-type-concurrency" in done.stderr and "Traceback" not in done.stderr


def _journal(state: Path) -> dict[str, Any]:
    files = list(state.glob("*.journal.json"))
    return json.loads(files[0].read_text()) if files else {}


def test_kill_9_in_the_middle_of_a_group_converges_on_rerun(twin_factory, tmp_path: Path) -> None:
    reference = twin_factory(SCENARIO)
    _apply(reference, tmp_path, None)
    baseline = requests_json(reference)["mutating"]

    twin = twin_factory(SCENARIO, time_scale=300)
    env = {**os.environ, **twin.env}
    state = tmp_path / "state"
    command = [sys.executable, "-m", "migrate", "apply", str(twin.plan_file), "--yes", "--state", str(state), "--output", "json"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    changed: set[str] = set()
    for line in process.stdout:  # kill once two node types of the staging group have sent their change
        event = json.loads(line)
        if event["type"] == "change" and (event.get("step") or "").startswith("stage-goal:"):
            changed.add(event["step"])
        if len(changed) >= 2:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(changed) >= 2, "the run ended before the group was under way"
    running = [s["name"] for s in _journal(state)["steps"] if s["status"] == "running"]
    assert len(running) >= 2, running  # killed mid-group: several node types' steps in flight

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert _journal(state)["status"] == "complete"
    _assert_healthy_common_name(twin)
    extra = requests_json(twin)["mutating"] - baseline
    assert 0 <= extra <= 1, f"{extra} extra mutating requests after one kill"
