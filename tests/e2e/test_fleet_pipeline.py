"""The fleet pipeline (runbooks/azure-devops/fleet-pipeline.yml) and its fan-out, as Azure DevOps would run it.

- The YAML keeps its shape (Plan publishes the saved plans and sets the matrix; Apply fans out over it) and every
  ``sfmigrate`` line parses with the real CLI (the checker of tests/unit/test_runbooks.py).
- The fan-out on the twin: ``fleet plan --matrix`` in pipeline mode, then one ``sfmigrate apply`` process per
  matrix leg, all at once, as the jobs would be started (TF_BUILD, the twin's pipeline credential), against one
  Azurite container; both clusters converge, each journal is in the container, a rerun of every leg writes nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from twinkit import requests_json, world_json, load_test_module, pipeline_env

REPO = Path(__file__).resolve().parents[2]
FLEET_PIPELINE = REPO / "runbooks" / "azure-devops" / "fleet-pipeline.yml"


def _runbook_checks() -> Any:
    """tests/unit/test_runbooks.py's command-line checker (a module of another folder: loaded by path)."""
    return load_test_module("unit/test_runbooks.py", "runbook_checks_for_fleet")


def _scripts(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in ([v] if k in ("inlineScript", "script", "bash") and isinstance(v, str) else _scripts(v))]
    if isinstance(node, list):
        return [s for item in node for s in _scripts(item)]
    return []


def test_the_fleet_pipeline_plans_then_fans_out_over_the_matrix_and_its_sfmigrate_lines_are_valid() -> None:
    document = yaml.safe_load(FLEET_PIPELINE.read_text(encoding="utf-8"))
    stages = {s["stage"]: s for s in document["stages"]}
    assert list(stages) == ["Plan", "Apply"]
    plan_job = stages["Plan"]["jobs"][0]
    assert plan_job["job"] == "plan"
    plan_task = next(s for s in plan_job["steps"] if s.get("task", "").startswith("AzureCLI@"))
    assert plan_task["name"] == "m", "the output path stageDependencies.Plan.plan.outputs['m.matrix'] needs this name"
    assert any(s.get("publish") and s.get("artifact") == "sfmigrate-fleet-plans" for s in plan_job["steps"])

    apply_stage = stages["Apply"]
    assert "dependencies.Plan.outputs['plan.m.clusters']" in apply_stage["condition"]
    apply_job = next(j for j in apply_stage["jobs"] if j.get("job") == "apply")
    assert apply_job["strategy"]["matrix"] == "$[ stageDependencies.Plan.plan.outputs['m.matrix'] ]"
    assert "maxParallel" in apply_job["strategy"]
    assert any(s.get("download") == "current" and s.get("artifact") == "sfmigrate-fleet-plans" for s in apply_job["steps"])
    tasks = [plan_task, *(s for s in apply_job["steps"] if s.get("task", "").startswith("AzureCLI@"))]
    for task in tasks:  # AzurePipelinesCredential needs the secret mapped into every sfmigrate step
        assert task["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)", task.get("displayName")
        assert "set -x" not in task["inputs"]["inlineScript"], "set -x garbles ##vso logging commands"

    checks = _runbook_checks()
    lines = [line for script in _scripts(document) for line in checks.shell_lines(script) if "sfmigrate " in line]
    plan_line = next(line for line in lines if "sfmigrate fleet plan" in line)
    for fragment in ("--format json", "--out", "--matrix", "--ci azure-devops"):
        assert fragment in plan_line, f"the plan step lost '{fragment}'"
    apply_line = next(line for line in lines if "sfmigrate apply" in line)
    for fragment in ("$(planFile)", "--yes", "--state"):
        assert fragment in apply_line, f"the apply step lost '{fragment}'"
    assert len(lines) >= 3
    problems = [p for line in lines for p in checks.check_command_line(line)]
    assert not problems, "\n".join(problems)
    assert checks.check_command_line("sfmigrate fleet plan f.yaml --matrix m.json --out p --frobnicate"), "the checker must catch a wrong option"


def test_matrix_job_names_keep_azure_devops_rules_and_stay_unique() -> None:
    from migrate.fleet.matrix import job_name

    taken: set[str] = set()
    names = [job_name(label, taken) for label in ("rg-sf/sfcluster", "rg_sf/sfcluster", "RG-SF/SFCLUSTER", "9rg/é-cluster", "x" * 150)]
    assert names[:3] == ["rg_sf_sfcluster", "rg_sf_sfcluster_2", "RG_SF_SFCLUSTER_3"]  # unique, compared case-insensitively
    assert names[3] == "c_9rg_cluster"  # starts with a letter, only A-Z a-z 0-9 _
    assert len(names[4]) == 100
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,99}", n) for n in names)


def test_matrix_without_out_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "migrate", "fleet", "plan", str(tmp_path / "fleet.yaml"), "--matrix", str(tmp_path / "m.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 64 and "--matrix" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "m.json").exists()


# -- the fan-out on the twin ------------------------------------------------------------------------------------


def _sfmigrate(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "migrate", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _legs(matrix: dict[str, dict[str, str]], plans: Path, env: dict[str, str], state: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """One apply process per matrix leg, all started before any is waited for (the jobs of one Apply stage)."""
    started = {name: _sfmigrate(["apply", str(plans / leg["planFile"]), "--yes", "--state", state], env) for name, leg in matrix.items()}
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=300)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


@pytest.mark.azurite
def test_apply_jobs_fanned_out_from_the_matrix_converge_against_one_azurite_container(twin_factory, azurite, tmp_path: Path) -> None:
    from azure.storage.blob import ContainerClient

    twin = twin_factory("two-clusters")
    env, principal = pipeline_env(twin)
    assert env["TF_BUILD"] == "True"
    env["SFMIGRATE_STATE_CONNECTION_STRING"] = azurite.connection_string
    env["AGENT_TEMPDIRECTORY"] = str(tmp_path / "agent-temp")
    fleet_file, plans, matrix_file = Path(twin.state_dir) / "fleet.yaml", tmp_path / "plans", tmp_path / "plans" / "matrix.json"
    container, prefix = f"fleet-{tmp_path.name.lower().replace('_', '-')}"[:63].rstrip("-"), "run"

    planner = _sfmigrate(["fleet", "plan", str(fleet_file), "--format", "json", "--out", str(plans), "--matrix", str(matrix_file)], env)
    out, err = planner.communicate(timeout=120)
    assert planner.returncode == 2, err
    report = json.loads(out)  # stdout carries only the report in pipeline mode; the commands went to stderr
    matrix = json.loads(matrix_file.read_text())
    assert f"##vso[task.setvariable variable=matrix;isOutput=true]{json.dumps(matrix, separators=(',', ':'), sort_keys=True)}" in err.splitlines()
    assert "##vso[task.setvariable variable=clusters;isOutput=true]2" in err.splitlines()
    assert sorted(leg["clusterId"] for leg in matrix.values()) == sorted(c["cluster"] for c in report["clusters"])
    assert all(name.replace("_", "").isalnum() and name[0].isalpha() for name in matrix)

    first = _legs(matrix, plans, env, f"blob:{container}/{prefix}")
    for name, done in first.items():
        assert done.returncode == 0, (name, done.stderr[-2000:])
        assert "##vso[task.setvariable variable=migrationStatus;isOutput=true]complete" in done.stdout.splitlines()
    for cluster in world_json(twin)["clusters"]:
        assert cluster["declaration"] == "common_name", cluster["id"]
        assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    callers = {r["caller"] for r in requests_json(twin)["requests"] if r["caller"]}
    assert callers == {principal["objectId"]}  # every call came from the pipeline's principal

    blobs = ContainerClient.from_connection_string(azurite.connection_string, container)
    journals = sorted(b.name for b in blobs.list_blobs(name_starts_with=prefix + "/") if b.name.endswith(".journal.json"))
    assert len(journals) == 2, journals  # one journal per cluster, side by side in the one container
    for name in journals:
        assert json.loads(blobs.download_blob(name).readall())["status"] == "complete", name

    writes_before = requests_json(twin)["mutating"]
    rerun = _legs(matrix, plans, env, f"blob:{container}/{prefix}")
    assert all(done.returncode == 0 for done in rerun.values()), {n: d.stderr[-1000:] for n, d in rerun.items()}
    assert requests_json(twin)["mutating"] == writes_before  # re-running every job changes nothing
