"""``sfmigrate fleet plan|apply|status`` end to end on the twin's two-clusters scenario (issue 15), as processes.

Outcomes asserted: exit codes, the twin's world (declaration, health) and the requests it received.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from migrate.commands import load_saved_plan
from twinkit import requests_json, world_json

REPO = Path(__file__).resolve().parents[2]
RG_A, RG_B = "rg-sf/sfcluster", "rg-sf-b/sfcluster"  # the two clusters' labels (both are named sfcluster)


def sfmigrate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def clusters(twin: Any) -> dict[str, dict[str, Any]]:
    return {c["id"].split("/")[4]: c for c in world_json(twin)["clusters"]}


def fleet_file(twin: Any, tmp_path: Path, second: dict[str, Any] | None = None) -> Path:
    """The twin's fleet.yaml (written by sfmigrate as `emulator serve` does), with overrides for the second cluster."""
    document = yaml.safe_load((Path(twin.state_dir) / "fleet.yaml").read_text())
    if second:
        for key, value in second.items():
            document["clusters"][1].setdefault(key, {}).update(value)
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_fleet_plan_reports_a_row_per_cluster_exits_2_and_saves_a_plan_per_cluster(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    path = fleet_file(twin, tmp_path)
    done = sfmigrate("fleet", "plan", str(path))
    assert done.returncode == 2, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[3:] if line.strip()}
    assert set(rows) == {RG_A, RG_B}
    assert all(row[1] == "changes" for row in rows.values())
    out = tmp_path / "plans"
    done = sfmigrate("fleet", "plan", str(path), "--format", "json", "--out", str(out))
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    assert report["summary"] == {"clusters": 2, "changes": 2} and report["exit_code"] == 2
    for row in report["clusters"]:
        assert row["status"] == "changes" and row["steps"] > 0 and row["cluster_upgrades"] >= 1 and row["expected_minutes"] > 0
        saved = load_saved_plan(Path(row["saved_plan"]))
        assert saved.spec.cluster.id == row["cluster"] and saved.plan.plan_hash() == row["plan_hash"]
    assert json.loads((out / "fleet.json").read_text())["clusters"][0]["cluster"] == report["clusters"][0]["cluster"]
    assert requests_json(twin)["mutating"] == 0  # planning changes nothing


def test_fleet_apply_migrates_both_clusters_then_a_rerun_sends_no_write_and_status_shows_both(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    path, state = fleet_file(twin, tmp_path), str(tmp_path / "state")
    done = sfmigrate("fleet", "apply", str(path), "--state", state, "--yes", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(line.startswith((f"[{RG_A}] ", f"[{RG_B}] ")) for line in lines)
    assert f"[{RG_A}] finished: done" in lines and f"[{RG_B}] finished: done" in lines
    for cluster in clusters(twin).values():
        assert cluster["declaration"] == "common_name"
        assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    # the two ran at the same time: each cluster's run started before the other's ended
    for mine, other in ((RG_A, RG_B), (RG_B, RG_A)):
        assert min(i for i, line in enumerate(lines) if line.startswith(f"[{mine}] ")) < lines.index(f"[{other}] finished: done")
    status = sfmigrate("fleet", "status", str(path), "--state", state, "--format", "json")
    assert status.returncode == 0, status.stderr
    rows = {row["label"]: row for row in json.loads(status.stdout)["clusters"]}
    assert {label: (row["status"], row["declaration"]) for label, row in rows.items()} == {
        RG_A: ("complete", "common_name"), RG_B: ("complete", "common_name")}
    assert rows[RG_A]["journal"] != rows[RG_B]["journal"]  # a journal per cluster
    before = requests_json(twin)["mutating"]
    again = sfmigrate("fleet", "apply", str(path), "--state", state, "--yes", "--output", "json")
    assert again.returncode == 0, again.stderr
    result = events(again.stdout)[-1]
    assert result["type"] == "fleet-result" and [c["outcome"] for c in result["clusters"]] == ["nothing-to-do"] * 2
    assert requests_json(twin)["mutating"] == before  # zero writes on the rerun


def test_fleet_apply_skips_a_blocked_cluster_exits_3_and_migrates_the_other(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    # the second cluster's goal pinned to an issuer that did not issue it: ISSUER_NOT_PINNED blocks it
    path = fleet_file(twin, tmp_path, {"goal": {"pinnedIssuers": ["AB" * 20]}})
    plan = sfmigrate("fleet", "plan", str(path), "--format", "json")
    assert plan.returncode == 3, plan.stderr
    assert {c["label"]: c["status"] for c in json.loads(plan.stdout)["clusters"]} == {RG_A: "changes", RG_B: "blocked"}
    done = sfmigrate("fleet", "apply", str(path), "--state", str(tmp_path / "state"), "--yes", "--concurrency", "2", "--output", "json")
    assert done.returncode == 3, done.stderr
    outcomes = {c["label"]: c for c in events(done.stdout)[-1]["clusters"]}
    assert outcomes[RG_A]["outcome"] == "done"
    assert outcomes[RG_B]["outcome"] == "skipped-blocked" and outcomes[RG_B]["mutating_requests"] == 0
    world = clusters(twin)
    assert world["rg-sf"]["declaration"] == "common_name" and world["rg-sf-b"]["declaration"] == "thumbprint"
    assert all("cluster" in event for event in events(done.stdout)[:-1])  # json progress events carry the cluster


def test_a_failing_canary_keeps_the_rest_of_the_fleet_from_starting(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    document = yaml.safe_load(fleet_file(twin, tmp_path).read_text())
    document["clusters"].reverse()  # the canary: rg-sf-b's cluster, whose vault does not exist (RESOURCE_NOT_FOUND)
    document["clusters"][0]["goal"]["vaultId"] = document["clusters"][0]["goal"]["vaultId"].replace("kv-sf-fleet", "kv-missing")
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(document))
    plan = sfmigrate("fleet", "plan", str(path), "--format", "json")
    assert plan.returncode == 1, plan.stderr  # a cluster whose goal cannot be observed: exit 1, whatever the others
    assert [(c["label"], c["status"]) for c in json.loads(plan.stdout)["clusters"]] == [(RG_B, "error"), (RG_A, "changes")]
    done = sfmigrate("fleet", "apply", str(path), "--state", str(tmp_path / "state"), "--yes", "--concurrency", "2",
                     "--canary", "1", "--output", "json")
    assert done.returncode == 1, done.stderr
    result = events(done.stdout)[-1]
    assert [(c["label"], c["outcome"], c["canary"]) for c in result["clusters"]] == [
        (RG_B, "failed", True), (RG_A, "not-started", False)]
    assert "canary" in result["stopped_reason"] and "kv-missing" in result["clusters"][0]["detail"]
    assert {c["declaration"] for c in clusters(twin).values()} == {"thumbprint"}
    assert requests_json(twin)["mutating"] == 0


def test_after_max_failures_no_other_cluster_starts_and_a_good_canary_goes_first(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    bad = fleet_file(twin, tmp_path, {"goal": {"vaultId": yaml.safe_load((Path(twin.state_dir) / "fleet.yaml").read_text())
                                               ["clusters"][1]["goal"]["vaultId"].replace("kv-sf-fleet", "kv-missing")}})
    document = yaml.safe_load(bad.read_text())
    document["clusters"].reverse()  # the failing cluster first, one at a time
    first_fails = tmp_path / "first-fails.yaml"
    first_fails.write_text(yaml.safe_dump(document))
    done = sfmigrate("fleet", "apply", str(first_fails), "--state", str(tmp_path / "state"), "--yes", "--concurrency", "1",
                     "--max-failures", "1", "--output", "json")
    assert done.returncode == 1, done.stderr
    result = events(done.stdout)[-1]
    assert [c["outcome"] for c in result["clusters"]] == ["failed", "not-started"]
    assert "--max-failures 1" in result["stopped_reason"]
    assert requests_json(twin)["mutating"] == 0
    # a good canary (rg-sf's cluster, first in the twin's fleet file): the other starts only after it finished
    good = sfmigrate("fleet", "apply", str(fleet_file(twin, tmp_path)), "--state", str(tmp_path / "state"), "--yes",
                     "--concurrency", "2", "--canary", "1", "--output", "json")
    assert good.returncode == 0, good.stderr
    stream = events(good.stdout)
    finished = next(i for i, e in enumerate(stream) if e["type"] == "cluster-finished" and e["cluster"] == RG_A)
    assert stream[finished]["detail"]["outcome"] == "done"
    assert min(i for i, e in enumerate(stream) if e.get("cluster") == RG_B) > finished
    assert {c["declaration"] for c in clusters(twin).values()} == {"common_name"}


def test_a_fleet_apply_killed_mid_run_resumes_every_cluster_on_the_rerun(twin_factory, tmp_path: Path) -> None:
    """kill -9 of the whole process while both clusters run: the rerun takes over the dead run's locks and each
    cluster resumes from its journal to common name, Healthy, with at most one extra write per cluster in flight."""
    import signal

    twin = twin_factory("two-clusters")
    path, state = fleet_file(twin, tmp_path), str(tmp_path / "state")
    child = subprocess.Popen([sys.executable, "-m", "migrate", "fleet", "apply", str(path), "--state", state, "--yes",
                              "--concurrency", "2", "--output", "json"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started: set[str] = set()
    try:
        assert child.stdout is not None
        for line in child.stdout:
            event = json.loads(line)
            if event.get("type") == "step-done":
                started.add(event["cluster"])
            if len(started) == 2:  # both clusters are past their first step
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert started == {RG_A, RG_B} and child.returncode == -signal.SIGKILL
    assert {c["declaration"] for c in clusters(twin).values()} == {"thumbprint"}  # killed before any conversion
    again = sfmigrate("fleet", "apply", str(path), "--state", state, "--yes", "--concurrency", "2", "--output", "json")
    assert again.returncode == 0, again.stderr
    assert [c["outcome"] for c in events(again.stdout)[-1]["clusters"]] == ["done", "done"]
    for cluster in clusters(twin).values():
        assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy"
    killed_writes = requests_json(twin)["mutating"]
    twin.control().reset()  # the same world again, run once without a kill: the writes the fleet needs
    from migrate.twin_plan import write_twin_plans

    fresh = write_twin_plans(world_json(twin), twin.base_url, twin.ca_bundle, tmp_path / "clean")  # a new PKI: new pins
    assert fresh.fleet_file is not None
    clean = sfmigrate("fleet", "apply", str(fresh.fleet_file), "--state", str(tmp_path / "clean-state"), "--yes", "--concurrency", "2")
    assert clean.returncode == 0, clean.stderr
    needed = requests_json(twin)["mutating"]
    assert needed <= killed_writes <= needed + 2, (killed_writes, needed)


def test_sigterm_stops_every_running_cluster_with_its_journal_saved_exit_130(twin_factory, tmp_path: Path) -> None:
    """A cancelled job: the main thread's handler asks every cluster to stop at its next event; each journal says
    interrupted and the fleet exits 130 (as apply); the rerun finishes both."""
    import signal

    twin = twin_factory("two-clusters")
    path, state = fleet_file(twin, tmp_path), str(tmp_path / "state")
    child = subprocess.Popen([sys.executable, "-m", "migrate", "fleet", "apply", str(path), "--state", state, "--yes",
                              "--concurrency", "2", "--output", "json"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    started: set[str] = set()
    for line in child.stdout:
        event = json.loads(line)
        if event.get("type") == "step-done":
            started.add(event["cluster"])
        if len(started) == 2:
            break
    child.send_signal(signal.SIGTERM)
    rest, err = child.communicate(timeout=120)
    assert child.returncode == 130, (err, rest[-3000:])
    result = events(rest)[-1]
    assert result["type"] == "fleet-result" and [c["outcome"] for c in result["clusters"]] == ["interrupted", "interrupted"]
    status = sfmigrate("fleet", "status", str(path), "--state", state, "--format", "json")
    assert [row["status"] for row in json.loads(status.stdout)["clusters"]] == ["interrupted", "interrupted"]
    again = sfmigrate("fleet", "apply", str(path), "--state", state, "--yes", "--concurrency", "2")
    assert again.returncode == 0, again.stderr
    assert {c["declaration"] for c in clusters(twin).values()} == {"common_name"}


def test_a_selection_lists_the_subscriptions_classic_clusters_through_arm(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    document = yaml.safe_load((Path(twin.state_dir) / "fleet.yaml").read_text())
    first, second = document["clusters"]
    subscription = first["id"].split("/")[2]
    # one goal for every selected cluster: each names its own resource group's identity by placeholder
    document["defaults"].update({"goal": first["goal"], "identity": {"id": first["identity"]["id"].replace("/rg-sf/", "/{resourceGroup}/")}})
    document["clusters"] = []
    document["select"] = [{"subscription": subscription}]
    path = tmp_path / "select.yaml"
    path.write_text(yaml.safe_dump(document))
    done = sfmigrate("fleet", "plan", str(path), "--format", "json")
    assert done.returncode == 2, done.stderr
    rows = json.loads(done.stdout)["clusters"]
    # sorted by id ("rg-sf-b" before "rg-sf/"), spelt as a plan file would (ARM lists "resourcegroups")
    assert [(row["cluster"], row["origin"]) for row in rows] == [(second["id"], "select[0]"), (first["id"], "select[0]")]
    document["exclude"] = [second["id"]]
    document["select"][0]["resourceGroup"] = "rg-sf"
    path.write_text(yaml.safe_dump(document))
    done = sfmigrate("fleet", "plan", str(path), "--format", "json")
    assert done.returncode == 2, done.stderr
    assert [row["cluster"] for row in json.loads(done.stdout)["clusters"]] == [first["id"]]
    document["select"][0]["tags"] = {"env": "no-such-tag"}
    path.write_text(yaml.safe_dump(document))
    done = sfmigrate("fleet", "plan", str(path), "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["clusters"] == []  # nothing selected: nothing to do
