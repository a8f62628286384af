"""Bench: node types in parallel (issue 15). On `multi-nodetype` (three node types: Automatic, Manual, Linux),
apply twice in one run, each on a fresh twin: with the default node-type concurrency (all node types of a
phase together) and with `--node-type-concurrency 1` (one after another, the order before issue 15). For each,
the scale-set phases' time: the union of the intervals [step-start, step-done] of the stage, swap and cleanup
steps, from the events' timestamps (the same events `apply --output json` prints). Target: default <= 0.7 x
one-by-one. Cluster upgrades are not shortened by this (they are not in the measure), and the twin's timings
are its own (no tuning). The cleanup phase is switched on (cleanup.removeOldSecrets) so all three phases count.

Events carry second-precision timestamps, so the twin runs slowly enough (x60 by default) that the phases last
tens of seconds.

Run: .venv/bin/python bench/node_type_concurrency.py [time_scale]
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import mutating, plan_file, twin

from migrate import commands
from migrate.runner import SCALE_SET_PHASES, RunOptions

SCENARIO = "multi-nodetype"
TARGET = 0.7


def _moment(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()


def phase_intervals(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """[step-start, step-done] of every scale-set step (stage, swap, cleanup), from the events' timestamps."""
    kinds = {e["step"]: (e.get("detail") or {}).get("kind") for e in events if e["type"] == "step-start"}
    starts: dict[str, float] = {}
    intervals = []
    for event in events:
        step = event.get("step")
        if kinds.get(step) not in SCALE_SET_PHASES:
            continue
        if event["type"] == "step-start":
            starts[step] = _moment(event)
        elif event["type"] in ("step-done", "step-failed") and step in starts:
            intervals.append((starts.pop(step), _moment(event)))
    return intervals


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def with_cleanup(path: Path) -> Path:
    """The twin's plan file with the optional cleanup switched on (the third scale-set phase)."""
    text = path.read_text(encoding="utf-8")
    if "removeOldSecrets" not in text:
        path.write_text(text.rstrip("\n") + "\ncleanup:\n  removeOldSecrets: true\n", encoding="utf-8")
    return path


def run(time_scale: float, concurrency: int | None) -> dict[str, Any]:
    running = twin(SCENARIO, time_scale)
    try:
        planfile = with_cleanup(plan_file(running))
        planned = commands.plan(planfile)
        events: list[dict[str, Any]] = []
        writes_before = mutating(running)
        started = time.perf_counter()
        commands.apply(planfile, state_location=tempfile.mkdtemp(), session=planned.session, emit=events.append,
                       options=RunOptions(node_type_concurrency=concurrency))
        cluster = running.world.snapshot()["cluster"]
        intervals = phase_intervals(events)
        return {"wall": time.perf_counter() - started, "phases": union_seconds(intervals), "steps": len(intervals),
                "writes": mutating(running) - writes_before, "declaration": cluster["declaration"],
                "health_worst": cluster["health_worst"]}
    finally:
        running.stop()


def main() -> int:
    time_scale = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    together = run(time_scale, None)
    one_by_one = run(time_scale, 1)
    for label, result in (("default (all node types)", together), ("--node-type-concurrency 1", one_by_one)):
        print(f"{label:>26}: scale-set phases {result['phases']:.0f} s over {result['steps']} steps; apply wall "
              f"{result['wall']:.1f} s; {result['writes']} writes; ended {result['declaration']} / {result['health_worst']}")
    ratio = together["phases"] / one_by_one["phases"]
    print(f"scenario {SCENARIO} at x{time_scale:g}: scale-set phases default / one-by-one = {ratio:.2f} (target <= {TARGET})")
    healthy = all(r["declaration"] == "common_name" and r["health_worst"] == "Healthy" for r in (together, one_by_one))
    return 0 if ratio <= TARGET and healthy and together["writes"] == one_by_one["writes"] else 1


if __name__ == "__main__":
    sys.exit(main())
