"""Bench: a fleet on the twin's ``fleet`` scenario (13 clusters, 3 subscriptions, sf-fraud blocked), one run.

1. ``fleet plan`` wall time (target < 5 s), in this process, against one cluster's ``plan`` (the ratio says what
   the fleet's concurrent discovery buys: 13 plans one after another would be ~13x); and a cold ``sfmigrate fleet
   plan`` process, start-up included.
2. ``fleet apply --concurrency 12`` as an operator runs it (its own process; the twin serves from this one): its
   wall time x the twin's time scale against the largest cluster's ``busy_seconds`` (simulated seconds with an
   Azure operation in flight on its resources; target <= 1.3): clusters run side by side, so the fleet should take
   about as long as its longest cluster. Process start-up (~1-2 s of wall) is part of the figure.

Run: .venv/bin/python bench/fleet_apply.py [time_scale]   (default 120, as bench/apply_efficiency.py: the largest
cluster is ~40 s of wall; at x300 the ~1.5 s process start-up alone is ~9% of the largest cluster's busy time)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import mutating, twin

from migrate import commands
from migrate.fleet.plan import fleet_plan
from migrate.fleet.session import load
from migrate.twin_plan import write_plans_for

REPO = Path(__file__).resolve().parents[1]


def sfmigrate(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "migrate", *args], cwd=REPO, capture_output=True, text=True, env=dict(os.environ))
    return time.perf_counter() - started, done


def main() -> int:
    time_scale = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0
    running = twin("fleet", time_scale)
    try:
        plans = write_plans_for(running)  # as `sfmigrate emulator serve`: a plan per goal and the fleet file
        assert plans.fleet_file is not None
        fleet_file = Path(plans.fleet_file)
        one = next(path for cluster, path in plans.plan_files.items() if cluster.endswith("/sf-orders"))
        commands.plan(one)  # imports and first-use costs, paid once as in any process
        started = time.perf_counter()
        commands.plan(one)
        single = time.perf_counter() - started
        started = time.perf_counter()
        planned = fleet_plan(load(fleet_file))
        fleet_wall = time.perf_counter() - started
        cold, done = sfmigrate("fleet", "plan", str(fleet_file))
        statuses = [c.status for c in planned.clusters]
        print(f"fleet plan: {len(statuses)} clusters ({statuses.count('changes')} to change, {statuses.count('blocked')} blocked, "
              f"{statuses.count('error')} not observed), exit {int(planned.exit_code)}")
        print(f"fleet plan wall {fleet_wall:.2f} s in process (target < 5 s); one cluster's plan {single:.2f} s; "
              f"ratio {fleet_wall / single:.1f} for {len(statuses)} clusters")
        print(f"fleet plan as a new process (start-up included): {cold:.2f} s, exit {done.returncode}")

        writes_before = mutating(running)
        wall, done = sfmigrate("fleet", "apply", str(fleet_file), "--state", tempfile.mkdtemp(), "--yes", "--concurrency", "12",
                               "--output", "json")
        result = json.loads(done.stdout.splitlines()[-1])
        world = running.world.snapshot()
        busy = {c["id"].split("/")[-1]: float(c["busy_seconds"]) for c in world["clusters"]}
        largest = max(busy, key=lambda k: busy[k])
        longest = max(result["clusters"], key=lambda c: c["seconds"] or 0.0)
        converted = sum(c["declaration"] == "common_name" and c["health_worst"] == "Healthy" for c in world["clusters"])
        ratio = wall * time_scale / busy[largest]
        print(f"fleet apply --concurrency 12 at x{time_scale:g}: exit {done.returncode}, {converted}/{len(busy)} clusters common name "
              f"and Healthy, {mutating(running) - writes_before} writes")
        print(f"fleet apply wall {wall:.2f} s x {time_scale:g} = {wall * time_scale:.0f} simulated s / largest busy "
              f"{busy[largest]:.0f} s ({largest}) = {ratio:.2f} (target <= 1.3)")
        print(f"longest cluster run {longest['seconds']:.2f} s ({longest['label']}) x {time_scale:g} = "
              f"{longest['seconds'] * time_scale:.0f} simulated s; sum of busy {sum(busy.values()):.0f} s")
        return 0 if fleet_wall < 5 and ratio <= 1.3 else 1
    finally:
        running.stop()


if __name__ == "__main__":
    sys.exit(main())
