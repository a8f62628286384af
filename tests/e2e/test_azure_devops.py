"""Inside an Azure DevOps pipeline: AzurePipelinesCredential end to end, and the ##vso logging commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twinkit import requests_json, world_json, pipeline_env





def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, capture_output=True, text=True, timeout=300)


def test_plan_and_apply_in_a_pipeline_with_azure_pipelines_credential(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env, principal = pipeline_env(twin)
    summary = tmp_path / "plan.md"
    saved = tmp_path / "saved-plan.json"
    planned = run(["plan", str(twin.plan_file), "--ci", "azure-devops", "--out", str(saved), "--report", str(summary)], env)
    assert planned.returncode == 0, planned.stderr  # changes pending: hasChanges carries it, not the exit code
    lines = planned.stdout.splitlines()
    assert "##vso[task.setvariable variable=hasChanges;isOutput=true]true" in lines
    assert "##vso[task.setvariable variable=blocked;isOutput=true]false" in lines
    assert f"##vso[task.uploadsummary]{summary.resolve()}" in lines
    assert any(line.startswith("##vso[task.complete result=Succeeded") for line in lines)
    assert summary.read_text().startswith("## sfmigrate plan")

    applied = run(["apply", str(saved), "--yes", "--ci", "azure-devops", "--state", str(tmp_path / "state")], env)
    assert applied.returncode == 0, applied.stderr
    out = applied.stdout.splitlines()
    groups = [line for line in out if line.startswith("##[group]")]
    assert [g.split(":")[0] for g in groups][:2] == ["##[group]ensure-identity", "##[group]grant-vault-access"]
    assert out.count("##[endgroup]") == len(groups)
    assert "##vso[task.setvariable variable=migrationStatus;isOutput=true]complete" in out
    assert any(line.startswith("##vso[task.complete result=Succeeded") for line in out)
    assert "credential: AzurePipelinesCredential" in applied.stderr

    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy"
    callers = {r["caller"] for r in requests_json(twin)["requests"] if r["caller"]}
    assert callers == {principal["objectId"]}  # every ARM and Key Vault call came from the pipeline's principal


def test_findings_become_logissue_and_a_blocked_plan_fails_the_step(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("self-signed-goal")
    env, _ = pipeline_env(twin)
    env["AGENT_TEMPDIRECTORY"] = str(tmp_path)  # where the agent lets a step write its summary
    planned = run(["plan", str(twin.plan_file)], env)  # TF_BUILD=True turns the integration on by itself
    assert planned.returncode == 3
    assert any(line.startswith("##vso[task.logissue type=error;code=GOAL_SELF_SIGNED]") for line in planned.stdout.splitlines())
    assert any(line.startswith("##vso[task.complete result=Failed") for line in planned.stdout.splitlines())
    assert f"##vso[task.uploadsummary]{tmp_path / 'sfmigrate-plan.md'}" in planned.stdout.splitlines()
