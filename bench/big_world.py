"""Bench: big worlds (issue 12, docs/twin.md "Big worlds"). A 500-instance cluster (bench/scenarios/big-world.yaml:
5 node types x 100) against a small one (multi-nodetype: 11 nodes), measured side by side in one run:
  - the twin loads the world (scenario build + TLS + ready),
  - `plan` (target < 5 s for 500 instances),
  - `GET /_emulator/world` (target < 1 s),
  - `apply` at time scale 600 (target < 5 min), with the twin's own busy time for the same work,
and a world of 50 clusters (10 nodes each) loads and serves `GET /_emulator/world`. Each line prints the big
figure, the small one and their ratio (the instance ratio is 500 / 11 = 45).

Run: .venv/bin/python bench/big_world.py [time_scale]   (exit 1 when a target is missed)
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from _common import plan_file

from aztwin import RunningTwin, start_twin
from migrate import commands

HERE = Path(__file__).resolve().parent
BIG = HERE / "scenarios" / "big-world.yaml"


@dataclass
class Figures:
    nodes: int
    load: float
    plan: float
    world: float
    apply: float
    busy: float
    ended: str


def _timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _start(time_scale: float, scenario: str | None = None, scenario_file: Path | None = None) -> tuple[float, RunningTwin]:
    state = tempfile.mkdtemp(prefix="sfmigrate-bench-")
    return _timed(lambda: start_twin(scenario, scenario_file, time_scale=time_scale, state_dir=state))


def measure(time_scale: float, scenario: str | None = None, scenario_file: Path | None = None) -> Figures:
    load, running = _start(time_scale, scenario, scenario_file)
    os.environ.update(running.env)
    try:
        planfile = plan_file(running)
        plan_seconds, planned = _timed(lambda: commands.plan(planfile))
        world_seconds, world = _timed(lambda: running.control().world())
        nodes = sum(len(t["nodes"]) for t in world["cluster"]["node_types"])
        busy_before = running.world.busy.total()
        apply_seconds, _ = _timed(lambda: commands.apply(planfile, state_location=tempfile.mkdtemp(), session=planned.session))
        busy = running.world.busy.total() - busy_before
        cluster = running.control().world()["cluster"]
        return Figures(nodes, load, plan_seconds, world_seconds, apply_seconds, busy, f"{cluster['declaration']} / {cluster['health_worst']}")
    finally:
        running.stop()


def warm_up(time_scale: float) -> None:
    """Imports, the key pool and the first TLS set-up happen once per process: not part of either world."""
    _, running = _start(time_scale, "multi-nodetype")
    os.environ.update(running.env)
    try:
        commands.plan(plan_file(running))
    finally:
        running.stop()


def fifty_clusters(directory: Path) -> Path:
    """The big world's vault and PKI with 50 clusters of one 10-node type each (500 nodes)."""
    data: dict[str, Any] = yaml.safe_load(BIG.read_text(encoding="utf-8"))
    template = data["clusters"][0]
    template["nodeTypes"] = [dict(template["nodeTypes"][0], instances=10)]
    data["name"] = "fifty-clusters"
    data["clusters"] = []
    for index in range(50):
        cluster = copy.deepcopy(template)
        cluster["name"] = "sfcluster" if index == 0 else f"sfcluster-{index:02d}"
        cluster["nodeTypes"][0]["name"] = f"c{index:02d}"
        data["clusters"].append(cluster)
    path = directory / "fifty-clusters.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def main() -> int:
    time_scale = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    warm_up(time_scale)
    small = measure(time_scale, scenario="multi-nodetype")
    big = measure(time_scale, scenario_file=BIG)
    print(f"nodes: big {big.nodes}, small {small.nodes} (x{big.nodes / small.nodes:.0f}); apply at time scale {time_scale:g}")
    rows = [
        ("twin loads the world", big.load, small.load, None),
        ("plan", big.plan, small.plan, 5.0),
        ("GET /_emulator/world", big.world, small.world, 1.0),
        ("apply", big.apply, small.apply, 300.0),
        ("twin busy time (apply)", big.busy, small.busy, None),
    ]
    ok = True
    for label, big_s, small_s, target in rows:
        verdict = "" if target is None else (f"  target < {target:g} s: " + ("met" if big_s < target else "MISSED"))
        ok = ok and (target is None or big_s < target)
        print(f"{label:<24} big {big_s:8.2f} s  small {small_s:7.2f} s  ratio {big_s / small_s:6.1f}{verdict}")
    print(f"apply wall / twin busy: big {big.apply / big.busy:.3f}, small {small.apply / small.busy:.3f}")
    print(f"ended: big {big.ended}, small {small.ended}")
    ok = ok and big.ended == small.ended == "common_name / Healthy"
    with tempfile.TemporaryDirectory() as directory:
        load, running = _start(time_scale, scenario_file=fifty_clusters(Path(directory)))
        try:
            world_seconds, world = _timed(lambda: running.control().world())
            healthy = sum(1 for c in world["clusters"] if c["health"] == "Healthy")
        finally:
            running.stop()
    print(f"50 clusters (500 nodes): load {load:.2f} s, GET /_emulator/world {world_seconds:.2f} s "
          f"(ratio to the small world's {world_seconds / small.world:.1f}), {healthy}/50 Healthy")
    ok = ok and healthy == 50 and world_seconds < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
