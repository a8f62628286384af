"""Apply, end to end against the twin with the real SDKs (issue 5 acceptance).

The SDK clients reach the twin in-process (no sockets); the main happy path also runs over real HTTPS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate import commands
from migrate.errors import Blocked
from twinkit import Clients, fast_session, inprocess_session, requests_json, scale_sets, world_json

CONVERTIBLE = ["goal-primary", "goal-secondary", "old-primary", "old-newer-than-goal", "two-old-certs",
               "linux-nodetype", "multi-nodetype", "rbac-vault"]
BLOCKED = ["self-signed-goal", "issuer-not-pinned", "cn-mismatch", "expiring-goal", "cluster-busy", "not-exportable"]


def _extension(scale_set: dict, *types: str) -> dict | None:
    for extension in scale_set["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]:
        if extension["properties"]["type"] in types:
            return extension
    return None


@pytest.mark.parametrize("scenario", CONVERTIBLE)
def test_apply_converts_the_cluster_and_a_second_apply_changes_nothing(twin_factory, tmp_path: Path, scenario: str) -> None:
    twin = twin_factory(scenario)
    _converts_then_changes_nothing(twin, tmp_path, inprocess_session(twin))


def test_apply_over_https_converts_the_cluster_and_a_second_apply_changes_nothing(twin_factory, tmp_path: Path) -> None:
    """The main happy path over real sockets: TLS with the CA bundle, token endpoints, one origin per vault."""
    twin = twin_factory("basic")
    _converts_then_changes_nothing(twin, tmp_path, fast_session(twin))


def _converts_then_changes_nothing(twin, tmp_path: Path, session) -> None:
    goal = twin.world.goal
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    assert all(record.status == "done" for record in result.state.steps)

    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    assert cluster["cluster_state"] == "Ready"
    assert cluster["certificate"] is None
    [common] = cluster["certificateCommonNames"]["commonNames"]
    assert common["certificateIssuerThumbprint"].split(",") == goal["pinnedIssuers"]

    clients = Clients(twin)
    identity = clients.msi.user_assigned_identities.get(goal["identity"].split("/")[4], goal["identity"].rsplit("/", 1)[-1])
    goal_name = goal["certificate"]
    joined = [s for s in scale_sets(clients) if _extension(s, "ServiceFabricNode", "ServiceFabricLinuxNode")]
    assert joined
    for scale_set in joined:
        kv = _extension(scale_set, "KeyVaultForWindows", "KeyVaultForLinux")
        sf = _extension(scale_set, "ServiceFabricNode", "ServiceFabricLinuxNode")
        assert kv is not None, scale_set["name"]
        assert kv["properties"]["settings"]["authenticationSettings"]["msiClientId"] == identity.client_id
        assert goal["identity"].lower() in {k.lower() for k in scale_set["identity"]["userAssignedIdentities"]}
        assert sf["properties"]["settings"]["certificate"]["commonNames"] == [common["certificateCommonName"]]
        assert "thumbprint" not in sf["properties"]["settings"]["certificate"]
        assert kv["name"] in sf["properties"]["provisionAfterExtensions"]
        urls = [c["certificateUrl"] for g in scale_set["properties"]["virtualMachineProfile"]["osProfile"].get("secrets") or []
                for c in g["vaultCertificates"]]
        assert not any(f"/secrets/{goal_name}/" in u for u in urls), urls  # the goal is no longer a VMSS secret

    # Issue 10: every SF extension still has its protected settings (the world says whether, never what), and
    # no scale set was written by a full PUT (it would have dropped them: a GET never returns them).
    for world_scale_set in world_json(twin)["scale_sets"]:
        for extension in world_scale_set["extensions"]:
            if extension["type"] in ("ServiceFabricNode", "ServiceFabricLinuxNode"):
                assert extension["hasProtectedSettings"] is True, (world_scale_set["name"], extension["name"])
    puts = [r for r in requests_json(twin)["requests"] if r["method"] == "PUT" and r["path"].lower().split("?")[0].endswith(
        tuple(f"/virtualmachinescalesets/{s['name'].lower()}" for s in joined))]
    assert puts == []

    mutating_before = requests_json(twin)["mutating"]
    again = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert again.nothing_to_do
    assert requests_json(twin)["mutating"] == mutating_before


@pytest.mark.parametrize("scenario", BLOCKED)
def test_blocked_scenarios_write_nothing(twin_factory, tmp_path: Path, scenario: str) -> None:
    twin = twin_factory(scenario)
    with pytest.raises(Blocked):
        commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert requests_json(twin)["mutating"] == 0
    assert world_json(twin)["cluster"]["declaration"] == "thumbprint"
