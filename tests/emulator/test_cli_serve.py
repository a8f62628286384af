"""The CLI contract of ``sfmigrate emulator serve`` and ``sfmigrate emulator scenarios``, as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

READY_KEYS = {"arm_endpoint", "ca_bundle", "subscription_id", "tenant_id", "env", "plan_file", "plan_files", "fleet_file", "scenario"}
REPO = Path(__file__).resolve().parents[2]


def _sfmigrate(*args: str) -> list[str]:
    return [sys.executable, "-m", "migrate", *args]


def _clean_env() -> dict[str, str]:
    """The caller's environment without a twin's variables (the fixtures may have set them in this process)."""
    drop = {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_TOKEN_CREDENTIALS", "AZURE_AUTHORITY_HOST", "SFMIGRATE_ARM_ENDPOINT"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_one_ready_line_serves_and_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    child = subprocess.Popen(
        _sfmigrate("emulator", "serve", "--scenario", "basic", "--port", "0", "--state-dir", str(tmp_path)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env(),
    )
    try:
        assert child.stdout is not None
        ready = json.loads(child.stdout.readline())
        assert set(ready) == READY_KEYS and ready["scenario"] == "basic"
        assert ready["arm_endpoint"].startswith("https://127.0.0.1:") and Path(ready["ca_bundle"]).is_file()
        assert ready["plan_file"] and Path(ready["plan_file"]).is_file()
        assert list(ready["plan_files"].values()) == [ready["plan_file"]]  # one goal: one plan file
        assert ready["fleet_file"] is None  # a fleet file needs two goals or more
        env = ready["env"]
        assert env["IDENTITY_ENDPOINT"].startswith(ready["arm_endpoint"]) and env["REQUESTS_CA_BUNDLE"] == ready["ca_bundle"]
        # It serves: a managed-identity token, then ARM with it, over HTTPS trusting the printed bundle.
        token = requests.get(env["IDENTITY_ENDPOINT"], params={"resource": "https://management.azure.com", "api-version": "2019-08-01"},
                             headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}, verify=ready["ca_bundle"], timeout=30).json()
        cluster = requests.get(
            f"{ready['arm_endpoint']}/subscriptions/{ready['subscription_id']}/resourceGroups/rg-sf/providers/Microsoft.ServiceFabric/clusters/sfcluster",
            params={"api-version": "2021-06-01"}, headers={"Authorization": f"Bearer {token['access_token']}"},
            verify=ready["ca_bundle"], timeout=30,
        )
        assert cluster.status_code == 200 and cluster.json()["properties"]["clusterState"] == "Ready"
    finally:
        child.send_signal(stop)
        out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out == "" and "Traceback" not in err  # exactly one line was printed, nothing after it


@pytest.mark.parametrize(
    "args, says",
    [
        (["--time-scale", "-1"], "--time-scale"),
        (["--scenario", "no-such-scenario"], "unknown scenario"),
        (["--faults", "rate=2"], "--faults"),
        (["--faults", "kinds=418"], "--faults"),
        (["--port", "70000"], "--port"),
        (["--scenario", "basic", "--scenario-file", "x.yaml"], "--scenario"),
        (["--scenario-file", "/nonexistent/scenario.yaml"], "/nonexistent/scenario.yaml"),
    ],
)
def test_bad_arguments_exit_64_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    done = subprocess.run(_sfmigrate("emulator", "serve", *args, "--state-dir", str(tmp_path)), cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=_clean_env())
    assert done.returncode == 64, done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1 and says in done.stderr
    assert "Traceback" not in done.stderr


def test_scenarios_lists_the_built_ins() -> None:
    text = subprocess.run(_sfmigrate("emulator", "scenarios"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and any(line.split()[0] == "basic" for line in text.stdout.splitlines())
    listed = subprocess.run(_sfmigrate("emulator", "scenarios", "--format", "json"), cwd=REPO, capture_output=True, text=True, timeout=60)
    rows = json.loads(listed.stdout)
    basic = next(r for r in rows if r["name"] == "basic")
    assert basic["description"] and Path(basic["file"]).is_file()
