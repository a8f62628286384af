"""Issue 15's fleet resilience on the twin's ``fleet`` scenario: kill -9 ten times at random moments, then a rerun;
and a run with 20% of the requests faulted. Outcomes: the twin's world and its count of applied writes."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from migrate.fleet.apply import FleetApplyOptions, fleet_apply
from migrate.fleet.session import load, open_fleet_session
from migrate.fleet.spec import load_fleet
from migrate.runner import RunOptions
from migrate.twin_plan import write_twin_plans
from twinkit import requests_json, world_json

REPO = Path(__file__).resolve().parents[2]
# Four clusters in two subscriptions (Production, Platform): one, two and three steps' worth of work each, enough for
# ten kills to land mid-run; the whole fleet would make each of the eleven runs three times longer.
SUBSET = {"sf-catalog", "sf-shipping", "sf-returns", "sf-gateway"}
KILLS = 10


def name(cluster_id: str) -> str:
    return cluster_id.rstrip("/").split("/")[-1]


def subset_fleet(source: Path, names: set[str], target: Path) -> Path:
    document = yaml.safe_load(source.read_text())
    document["clusters"] = [c for c in document["clusters"] if name(c["id"]) in names]
    assert len(document["clusters"]) == len(names)
    assert len({c["id"].split("/")[2] for c in document["clusters"]}) >= 2
    target.write_text(yaml.safe_dump(document))
    return target


def apply_args(path: Path, state: Path) -> list[str]:
    return [sys.executable, "-m", "migrate", "fleet", "apply", str(path), "--state", str(state), "--yes", "--concurrency", "4",
            "--output", "json"]


def test_ten_kill_9s_at_random_moments_then_a_rerun_converge_every_cluster_with_at_most_one_extra_write_per_kill(
        twin_factory: Any, tmp_path: Path) -> None:
    """Four clusters (see SUBSET), a twin at time scale 200 so that the work outlasts the ten kills (~15 s of wall for
    the largest cluster, against at most 10 s of progress the killed runs can make: a CI run at 250 with delays up to
    1.4 s saw its tenth run finish before the kill); each kill comes a seeded random delay after the process's first event (its discovery done,
    its clusters under way: a kill may land before, between or during writes). The rerun finishes every cluster; the
    writes applied over all the runs exceed one uninterrupted run's by at most one per kill (a write sent but not yet
    journalled when the process died)."""
    twin = twin_factory("fleet", time_scale=200.0)
    path, state = subset_fleet(Path(twin.state_dir) / "fleet.yaml", SUBSET, tmp_path / "fleet.yaml"), tmp_path / "state"
    delays = random.Random(15).uniform
    kills = 0
    for _ in range(KILLS):
        child = subprocess.Popen(apply_args(path, state), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        first = child.stdout.readline()  # the first event: the run is at work
        time.sleep(delays(0.1, 1.0))
        if first and child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.communicate(timeout=60)
    assert kills == KILLS  # every run was still at work when killed
    assert requests_json(twin)["mutating"] > 0  # the kills landed in the middle of the writes, not only at start-up
    done = subprocess.run(apply_args(path, state), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {c["outcome"] for c in json.loads(done.stdout.splitlines()[-1])["clusters"]} <= {"done", "nothing-to-do"}
    mine = {name(c["id"]): c for c in world_json(twin)["clusters"] if name(c["id"]) in SUBSET}
    for label, cluster in mine.items():
        assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy", (label, cluster["health_worst_reasons"])
    killed_writes = requests_json(twin)["mutating"]

    twin.control().reset()  # the same world again, run once without a kill: the writes the fleet needs
    fresh = write_twin_plans(world_json(twin), twin.base_url, twin.ca_bundle, tmp_path / "clean")  # a new PKI: new pins
    assert fresh.fleet_file is not None
    clean_path = subset_fleet(Path(fresh.fleet_file), SUBSET, tmp_path / "clean-fleet.yaml")
    clean = subprocess.run(apply_args(clean_path, tmp_path / "clean-state"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-3000:]
    needed = requests_json(twin)["mutating"]
    assert needed <= killed_writes <= needed + kills, (killed_writes, needed, kills)


def test_the_whole_fleet_converges_with_a_fifth_of_its_requests_faulted(twin_factory: Any, tmp_path: Path) -> None:
    """20% of every request fails (the twin's default fault kinds, seeded): each cluster's steps retry, and one fleet
    apply converts every unblocked cluster, Healthy throughout; sf-fraud stays skipped."""
    twin = twin_factory("fleet", faults="rate=0.2,seed=20")
    path = Path(twin.state_dir) / "fleet.yaml"
    session = open_fleet_session(load_fleet(path), poll_interval=0.02, retry_backoff=0.05)
    run = RunOptions(backoff=0.05)  # a step's own retries, paced for the twin's fast clock (as retry_backoff)
    result = fleet_apply(load(path, session=session), FleetApplyOptions(str(tmp_path / "state"), concurrency=12, run=run))
    assert int(result.exit_code) == 3, [(c.label, c.outcome, c.detail[:300]) for c in result.clusters if c.outcome not in ("done", "nothing-to-do")]
    assert sum(1 for r in requests_json(twin)["requests"] if r["fault"]) > 50  # the faults were real
    for cluster in world_json(twin)["clusters"]:
        if name(cluster["id"]) == "sf-fraud":
            assert cluster["declaration"] == "thumbprint"
            continue
        assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy", cluster["id"]
