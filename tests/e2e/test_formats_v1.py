"""Files written by the previous version (tests/fixtures/v1: saved plan 1.0, journals 1.0) are still read:
`show` and `apply` read the saved plan, `status` and a resumed `apply` read the journals; and what an
attacker could write into either (an unknown kind, malformed parameters) is a one-line usage error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from migrate import commands
from migrate.errors import ExitCode, StalePlan, UsageError
from migrate.journal.base import cluster_key
from twinkit import fast_session

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v1"
SAVED = json.loads((V1 / "saved-plan.json").read_text())
STEPS = ["ensure-identity", "grant-vault-access", "stage-goal:nt0", "declare-goal-secondary", "install-kv-extension:nt0",
         "convert-cluster", "cleanup-secrets:nt0"]
CLUSTER = SAVED["plan"]["cluster_id"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True, timeout=120)


def state_dir_with(tmp_path: Path, journal: str) -> Path:
    state = tmp_path / "state"
    state.mkdir(parents=True)
    shutil.copy(V1 / journal, state / f"{cluster_key(CLUSTER)}.journal.json")
    return state


def test_show_reads_a_format_1_0_saved_plan() -> None:
    assert SAVED["format_version"] == "1.0"
    done = run("show", str(V1 / "saved-plan.json"), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [s["name"] for s in report["steps"]] == STEPS
    assert report["steps"][6]["params"]["urls"] == SAVED["plan"]["steps"][6]["params"]["urls"]  # typed, read back
    assert report["steps"][4]["params"]["kv"]["name"] == SAVED["plan"]["steps"][4]["params"]["kv"]["name"]
    assert report["steps"][3]["changes"] == SAVED["report"]["steps"][3]["changes"]


def test_apply_reads_a_format_1_0_saved_plan_and_checks_it_against_the_world(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    document = json.loads(json.dumps(SAVED))
    document["spec"]["cloud"].update(armEndpoint=twin.base_url, caBundle=str(twin.ca_bundle))  # aimed at this twin
    document["spec"]["goal"]["pinnedIssuers"] = yaml.safe_load(twin.plan_file.read_text())["goal"]["pinnedIssuers"]
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(document))
    # The fixture was made on another twin (other certificates, other scale set): the saved plan is stale,
    # which apply can only say once it has read every step of it.
    with pytest.raises(StalePlan, match="the saved plan is stale"):
        commands.apply(saved, state_location=str(tmp_path / "state"), session=fast_session(twin))


def test_status_reads_format_1_0_journals(tmp_path: Path) -> None:
    for journal, run_status, statuses in (
        ("journal-stopped.json", "stopped", ["done"] * 5 + ["pending"] * 2),
        ("journal-complete.json", "complete", ["done"] * 7),
    ):
        state = state_dir_with(tmp_path / journal, journal)
        done = run("status", "--cluster", CLUSTER, "--state", str(state), "--format", "json")
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        assert document["status"] == run_status
        assert [(s["name"], s["status"]) for s in document["steps"]] == list(zip(STEPS, statuses))


def test_a_resumed_run_carries_over_the_cleanup_a_format_1_0_journal_kept(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    state = state_dir_with(tmp_path, "journal-stopped.json")
    old = commands.status(CLUSTER, str(state)).state
    assert old is not None and old.step("cleanup-secrets:nt0").step is not None  # the 1.0 "definition", typed
    # This plan file does not ask for the cleanup: only the journal's kept definition brings it in.
    result = commands.apply(twin.plan_file, state_location=str(state), session=fast_session(twin), replan=True)
    assert result.state is not None and result.state.status == "complete"
    assert [r.name for r in result.state.steps] == STEPS
    assert {r.status for r in result.state.steps} == {"done"}
    assert result.state.step("cleanup-secrets:nt0").attempts == 1  # it ran in this run
    written = json.loads(next(state.glob("*.journal.json")).read_text())
    assert written["format_version"] == "1.1"
    assert [r["step"]["kind"] for r in written["steps"]] == [
        "ensure_identity", "grant_vault_access", "stage_goal", "set_cluster_certificate", "install_kv_extension",
        "convert_cluster", "cleanup_secrets"]


@pytest.mark.parametrize(("where", "value", "message"), [
    ("kind", "format_disk", "plan.steps[6].kind: unknown step kind 'format_disk'"),
    ("params", {"vmss_id": "x"}, "plan.steps[6].params.urls: Field required"),
    ("params", {"vmss_id": "x", "urls": ["u"], "shell": "rm -rf /"}, "plan.steps[6].params.shell: Extra inputs are not permitted"),
])
def test_a_tampered_saved_plan_is_a_usage_error_naming_the_field(tmp_path: Path, where: str, value: object, message: str) -> None:
    document = json.loads(json.dumps(SAVED))
    document["plan"]["steps"][6][where] = value
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(document))
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        commands.load_saved_plan(saved)
    done = run("show", str(saved))
    assert done.returncode == ExitCode.USAGE and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_tampered_journal_is_a_usage_error_naming_the_field(tmp_path: Path) -> None:
    state = state_dir_with(tmp_path, "journal-stopped.json")
    path = next(state.glob("*.journal.json"))
    document = json.loads(path.read_text())
    document["steps"][6]["definition"]["params"]["urls"] = "not a list"
    path.write_text(json.dumps(document))
    done = run("status", "--cluster", CLUSTER, "--state", str(state))
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "steps[6].step.params.urls" in done.stderr and len(done.stderr.strip().splitlines()) == 1
