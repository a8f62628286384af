"""A certificate upgrade SFRP accepts and then rolls back (issue 12): apply stops with exit 1 naming the step,
the upgrade domain and the reason; the cluster is Healthy on its previous declaration; the run is resumable, and
once the cause is fixed (control API) apply converges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from twinkit import requests_json, world_json


def _apply(plan: Path, state: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", "apply", str(plan), "--yes", "--state", str(state), "--output", "plain"],
                          env=env, capture_output=True, text=True, timeout=600)


def test_a_rolled_back_conversion_stops_resumably_and_converges_once_the_node_is_healed(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("upgrade-rollback", time_scale=2000)
    env = {**os.environ, **twin.env}
    state = tmp_path / "state"
    before = world_json(twin)["cluster"]
    assert before["declaration"] == "thumbprint" and before["unhealthy_nodes"] == {"nt0_3": before["unhealthy_nodes"]["nt0_3"]}

    first = _apply(twin.plan_file, state, env)
    assert first.returncode == 1, first.stdout + first.stderr
    output = first.stdout + first.stderr
    assert "step 'convert-cluster' failed" in output and "rolled it back in upgrade domain 3" in output
    assert "nt0_3 is unhealthy" in output and "runbooks/failures/upgrade-rolled-back.md" in output
    assert "Traceback" not in output
    after = world_json(twin)["cluster"]
    assert after["declaration"] == "thumbprint" and after["cluster_state"] == "Ready" and after["health"] == "Healthy"
    assert after["certificate"] == before["certificate"]
    journal = json.loads(next(state.glob("*.journal.json")).read_text())
    convert = next(s for s in journal["steps"] if s["name"] == "convert-cluster")
    assert convert["status"] == "failed" and not convert.get("operation_url")
    assert "rolled it back" in (convert.get("last_error") or "")

    assert twin.control().set_node_health("nt0_3", None)["unhealthy"] is None
    seen = requests_json(twin)["total"]
    second = _apply(twin.plan_file, state, env)
    assert second.returncode == 0, second.stdout + second.stderr
    done = world_json(twin)["cluster"]
    assert done["declaration"] == "common_name" and done["health"] == "Healthy"
    log = requests_json(twin, since=seen)
    cluster_writes = [r for r in log["requests"] if r["method"] in ("PUT", "PATCH") and "/clusters/" in r["path"]]
    assert len(cluster_writes) == 1, "the resumed run repeats only the conversion"
