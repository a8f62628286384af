"""Issue 11, permission propagation and identities, end to end against the twin with the real SDKs.

rbac-propagation-delay: the 'Key Vault Secrets User' assignment sfmigrate makes reaches the vault 20 simulated minutes
later, long after the extension's initial sync gave up; apply still converts with no manual action, re-running the
extension (forceUpdateTag) within rollout.grantPropagationMinutes and saying so. identity-recreated: a migrated
cluster whose identity was deleted and created again; the plan repairs msiClientId and the vault grant.

The delay scenarios run the twin at 600 simulated seconds per wall second (not the tests' usual 3000), so the
product's own wall time between the grant and the extension's run stays well inside the delay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aztwin.scenario import builtin_path
from migrate import commands
from migrate.errors import Interrupted, StepFailed
from twinkit import Clients, inprocess_session, requests_json, scale_sets, world_json

SCALE = 600.0
STEP = "install-kv-extension:nt0"


def _plan_file(twin: Any, tmp_path: Path, **rollout: Any) -> Path:
    document = yaml.safe_load(twin.plan_file.read_text())
    document.setdefault("rollout", {}).update(rollout)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _force_updates(twin: Any) -> list[dict[str, Any]]:
    return [r for r in requests_json(twin)["requests"]
            if r["method"] == "PATCH" and "/extensions/kvvmextension" in r["path"].lower()]


def _kv_extension(twin: Any) -> dict[str, Any]:
    [scale_set] = scale_sets(Clients(twin))
    return next(e["properties"] for e in scale_set["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
                if e["properties"]["type"] == "KeyVaultForWindows")


def test_a_fresh_role_assignment_converges_without_manual_action(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("rbac-propagation-delay", time_scale=SCALE)
    events: list[dict[str, Any]] = []
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin),
                            emit=events.append)
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]

    record = next(r for r in result.state.steps if r.name == STEP)
    waited = record.observed["grant_propagation"]
    assert waited["reruns"] >= 1 and waited["first_denied_at"]  # the vault denied the extension at first
    assert len(_force_updates(twin)) == waited["reruns"]  # one forceUpdateTag PATCH per re-run, nothing else
    assert _kv_extension(twin)["forceUpdateTag"] == f"sfmigrate-grant-{waited['reruns']}"
    said = [e for e in events if e["type"] == "grant-propagation"]
    assert len(said) == waited["reruns"] and said[0]["detail"]["bound_minutes"] == 30

    before = requests_json(twin)["mutating"]
    again = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert again.nothing_to_do and requests_json(twin)["mutating"] == before


def test_with_no_wait_configured_the_denied_extension_fails_the_step(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("rbac-propagation-delay", time_scale=SCALE)
    plan_file = _plan_file(twin, tmp_path, grantPropagationMinutes=0)
    with pytest.raises(StepFailed) as failed:
        commands.apply(plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert STEP in str(failed.value) and "secrets get permission" in str(failed.value)
    assert _force_updates(twin) == []
    assert world_json(twin)["cluster"]["declaration"] == "thumbprint"  # never converted with nodes lacking the goal


def test_a_grant_that_never_reaches_the_vault_fails_after_the_bound(twin_factory: Any, tmp_path: Path) -> None:
    document = yaml.safe_load(builtin_path("rbac-propagation-delay").read_text(encoding="utf-8"))
    document["name"] = "rbac-never"
    document["propagation"] = {"roleAssignments": "1d"}
    scenario = tmp_path / "rbac-never.yaml"
    scenario.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    twin = twin_factory(scenario_file=scenario, time_scale=SCALE)
    plan_file = _plan_file(twin, tmp_path, grantPropagationMinutes=10)
    with pytest.raises(StepFailed) as failed:
        commands.apply(plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert "still denies the Key Vault extension" in str(failed.value) and "grantPropagationMinutes: 10" in str(failed.value)
    assert 1 <= len(_force_updates(twin)) <= 4  # bounded: about 5 simulated minutes per attempt
    assert world_json(twin)["cluster"]["declaration"] == "thumbprint"


def test_a_recreated_identity_is_repaired(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("identity-recreated")
    planned = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert planned.exit_code == 2
    assert [s.name for s in planned.plan.steps] == ["grant-vault-access", STEP]
    [stale] = [f for f in planned.plan.findings if f.code == "KV_EXTENSION_CLIENT_ID_STALE"]
    identity = Clients(twin).msi.user_assigned_identities.get("rg-sf", "sf-kv-reader")
    old_client = _kv_extension(twin)["settings"]["authenticationSettings"]["msiClientId"]
    assert old_client != identity.client_id and old_client in stale.message and identity.client_id in stale.message

    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert result.state is not None and result.state.status == "complete"
    assert _kv_extension(twin)["settings"]["authenticationSettings"]["msiClientId"] == identity.client_id
    world = world_json(twin)
    [vault] = world["vaults"]
    assert identity.principal_id in {p["objectId"] for p in vault["accessPolicies"]}
    cluster = world["cluster"]
    assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    # The extension reads the vault again: a renewal now reaches the nodes (it could not with the stale client id).
    [scale_set] = world["scale_sets"]
    assert all(i["extensions"]["KVVMExtension"]["status"] == "succeeded" for i in scale_set["instances"])

    before = requests_json(twin)["mutating"]
    again = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert again.nothing_to_do and requests_json(twin)["mutating"] == before


def test_a_run_interrupted_while_waiting_resumes_with_the_journaled_bound(twin_factory: Any, tmp_path: Path) -> None:
    """Ctrl-C while waiting for the grant: the journal keeps when the vault first denied the extension and how many
    re-runs were made; the resumed run continues from there (the bound is not restarted) and converges."""
    twin = twin_factory("rbac-propagation-delay", time_scale=SCALE)
    state = str(tmp_path / "state")
    interrupted: list[dict[str, Any]] = []

    def interrupt(event: dict[str, Any]) -> None:
        if event["type"] == "grant-propagation" and not interrupted:
            interrupted.append(event)
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        commands.apply(twin.plan_file, state_location=state, session=inprocess_session(twin), emit=interrupt)
    assert interrupted and _force_updates(twin) == []  # stopped before the first re-run was sent
    [journal] = (tmp_path / "state").glob("*.journal.json")
    [record] = [r for r in json.loads(journal.read_text())["steps"] if r["name"] == STEP]
    kept = record["observed"]["grant_propagation"]
    assert kept["reruns"] == 1 and kept["first_denied_at"]

    result = commands.apply(twin.plan_file, state_location=state, session=inprocess_session(twin))
    assert result.state is not None and result.state.status == "complete"
    waited = next(r for r in result.state.steps if r.name == STEP).observed["grant_propagation"]
    assert waited["first_denied_at"] == kept["first_denied_at"] and waited["reruns"] > kept["reruns"]
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
