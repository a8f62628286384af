"""How errors read (issue 14): printed once; a step failure ends with "resumable"; a transient fault that
outlived the retries points to the throttling runbook; no "not found: not found" nor "in the plan file in the
plan file"; a wrong subscription names the subscription and the credential/tenant; an authentication failure
keeps every credential's reason and ends with a hint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from twinkit import requests_json


def _sfmigrate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, capture_output=True, text=True, timeout=600)


def _plan_with(twin, tmp_path: Path, old: str, new: str) -> Path:
    changed = tmp_path / "plan.yaml"
    changed.write_text(twin.plan_file.read_text().replace(old, new))
    return changed


def test_a_failing_step_prints_its_error_once_then_resumable_and_the_throttling_runbook(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary", faults="match=PUT .*/userAssignedIdentities/,kinds=429,rate=1")
    applied = _sfmigrate(["apply", str(twin.plan_file), "--yes", "--state", str(tmp_path / "s"), "--output", "plain"],
                         {**os.environ, **twin.env})
    assert applied.returncode == 1, applied.stderr
    lines = applied.stderr.strip().splitlines()
    assert sum("step 'ensure-identity' failed" in line for line in lines) == 1, applied.stderr
    assert lines[0].startswith("sfmigrate: step 'ensure-identity' failed: ") and "TooManyRequests" in lines[0]
    assert "runbooks/failures/throttling.md" in lines[0]
    assert lines[-1] == "sfmigrate: resumable: run `sfmigrate apply` again"
    assert (Path(__file__).parents[2] / "runbooks/failures/throttling.md").is_file()


def test_a_transient_fault_during_discovery_points_to_the_throttling_runbook(twin_factory) -> None:
    twin = twin_factory("old-primary", faults="match=GET .*/clusters/,kinds=503,rate=1")
    planned = _sfmigrate(["plan", str(twin.plan_file)], {**os.environ, **twin.env})
    assert planned.returncode == 1, planned.stderr
    assert planned.stderr.strip().splitlines()[-1] == (
        "sfmigrate: Azure kept answering with a transient fault: see runbooks/failures/throttling.md")


def test_not_found_wording_has_no_doubled_words(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    planned = _sfmigrate(["plan", str(_plan_with(twin, tmp_path, "clusters/sfcluster", "clusters/nosuch"))], env)
    assert planned.returncode == 1, planned.stderr
    assert "clusters/nosuch was not found: ResourceNotFound: " in planned.stdout
    assert "not found: not found" not in planned.stdout and "in the plan file in the plan file" not in planned.stdout
    assert "Check cluster.id in the plan file" in planned.stdout


def test_a_wrong_subscription_names_the_subscription_the_credential_and_the_tenant(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    real = twin.world.default_subscription
    wrong = "00000000-1111-2222-3333-444444444444"
    planned = _sfmigrate(["plan", str(_plan_with(twin, tmp_path, real, wrong))], {**os.environ, **twin.env})
    assert planned.returncode == 1, planned.stderr
    assert (f"subscription {wrong} is not visible to DefaultAzureCredential (AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential) "
            f"in tenant {twin.env['AZURE_TENANT_ID']} (SubscriptionNotFound: ") in planned.stdout
    assert "in the plan file in the plan file" not in planned.stdout and "not found: not found" not in planned.stdout
    assert requests_json(twin)["mutating"] == 0


def test_an_authentication_failure_lists_each_credential_and_ends_with_a_hint(twin_factory) -> None:
    twin = twin_factory("basic")
    env = {**os.environ, **twin.env, "IDENTITY_HEADER": "not-the-twin-secret"}
    env.pop("AZURE_TOKEN_CREDENTIALS")  # the whole chain: Environment, WorkloadIdentity, ManagedIdentity ...
    planned = _sfmigrate(["plan", str(twin.plan_file)], env)
    assert planned.returncode == 1, planned.stderr
    lines = planned.stderr.strip().splitlines()
    assert lines[0] == "sfmigrate: authentication failed: DefaultAzureCredential failed to retrieve a token from the included credentials"
    reasons = [line for line in lines if line.startswith("sfmigrate:   ")]
    named = [line.split(":")[1].strip() for line in reasons]
    assert named[:3] == ["EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"], lines
    assert lines[-1].startswith("sfmigrate: hint: sign in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID")
    assert "https://learn.microsoft.com/" in lines[-1] and "not-the-twin-secret" not in planned.stderr
    assert "Traceback" not in planned.stderr
