"""Bench: apply's wall time divided by the twin's own busy time for the same migration (target <= 1.10:
no idle waiting beyond what Retry-After asks), and mutating requests made against the planner's minimum
(target: equal). Both measured side by side in one run.

The planner's minimum: one write per identity/vault step, one write per cluster upgrade, and per scale-set
step one write per changed subtree (issue 10: a scale-set PATCH for identity/secrets, a PUT or PATCH per
extension child resource, never a full PUT, which would drop protectedSettings; migrate.scale_set_writes)
plus one manual upgrade per update-domain batch under the Manual policy.

Run: .venv/bin/python bench/apply_efficiency.py [scenario] [time_scale]
"""

from __future__ import annotations

import sys
import tempfile
import time

from _common import mutating, plan_file, twin

from migrate import commands
from migrate.scale_set_writes import write_targets


def planned_minimum(plan, snapshot) -> int:
    total = 0
    for step in plan.steps:
        if step.kind in ("stage_goal", "install_kv_extension", "cleanup_secrets"):
            node_type = snapshot.node_type(step.params_dict()["vmss_id"])
            total += len(write_targets(step.changes))
            if node_type is not None and node_type.upgrade_mode.lower() == "manual":
                total += len({i.update_domain if i.update_domain is not None else int(i.instance_id) % 5 for i in node_type.instances})
        else:
            total += 1
    return total


def main() -> int:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "old-primary"
    time_scale = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    running = twin(scenario, time_scale)
    try:
        planfile = plan_file(running)
        planned = commands.plan(planfile)
        minimum = planned_minimum(planned.plan, planned.snapshot)
        busy_before = running.world.busy.total()
        writes_before = mutating(running)
        started = time.perf_counter()
        commands.apply(planfile, state_location=tempfile.mkdtemp(), session=planned.session)
        wall = time.perf_counter() - started
        busy = running.world.busy.total() - busy_before
        writes = mutating(running) - writes_before
        cluster = running.world.snapshot()["cluster"]
        print(f"scenario {scenario} at x{time_scale:g}: {len(planned.plan.steps)} steps, ended {cluster['declaration']} / {cluster['health_worst']}")
        print(f"apply wall {wall:.2f} s / twin busy {busy:.2f} s = {wall / busy:.3f} (target <= 1.10)")
        print(f"mutating requests {writes} / planner minimum {minimum} = {writes / minimum:.2f} (target 1.00)")
        return 0 if wall / busy <= 1.10 and writes == minimum else 1
    finally:
        running.stop()


if __name__ == "__main__":
    sys.exit(main())
