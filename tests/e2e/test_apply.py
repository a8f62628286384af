"""Apply, end to end against the twin with the real SDKs (issue 5 acceptance).

The SDK clients reach the twin in-process (no sockets); the main happy path also runs over real HTTPS.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from migrate import commands
from migrate.errors import Blocked
from twinkit import Clients, fast_session, inprocess_session, requests_json, scale_sets, world_json

CONVERTIBLE = ["goal-primary", "goal-secondary", "old-primary", "old-newer-than-goal", "two-old-certs",
               "linux-nodetype", "multi-nodetype", "rbac-vault", "goal-from-other-ca", "vault-firewall-subnet",
               "rbac-propagation-delay", "old-expiring"]  # reverse-proxy-renewed: tests/e2e/test_reverse_proxy_renewed.py
BLOCKED = ["self-signed-goal", "issuer-not-pinned", "cn-mismatch", "expiring-goal", "cluster-busy", "not-exportable",
           "pki-offline", "issuer-shared-key", "vault-firewall"]


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


@pytest.mark.parametrize("scenario", ["old-primary", "goal-primary", "multi-nodetype"])
def test_apply_with_cleanup_removes_the_goal_secret_after_the_conversion(twin_factory, tmp_path: Path, scenario: str) -> None:
    twin = twin_factory(scenario)
    document = yaml.safe_load(twin.plan_file.read_text())
    document["cleanup"] = {"removeOldSecrets": True}
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(document))
    _converts_then_changes_nothing(twin, tmp_path, inprocess_session(twin), plan_file=plan_file)


def _converts_then_changes_nothing(twin, tmp_path: Path, session, plan_file: Path | None = None) -> None:
    goal = twin.world.goal
    plan_file = plan_file or twin.plan_file
    cleanup = bool((yaml.safe_load(plan_file.read_text()).get("cleanup") or {}).get("removeOldSecrets"))
    result = commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    steps = [s.name for s in result.plan.steps]
    # The goal's versioned secret outlives the conversion (the cut-over window); only the cleanup removes it.
    assert all(steps.index(n) > steps.index("convert-cluster") for n in steps if n.startswith("cleanup-secrets:"))
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
    goal_name = goal["certificate"]
    joined = [s for s in scale_sets(clients) if _extension(s, "ServiceFabricNode", "ServiceFabricLinuxNode")]
    assert joined
    for scale_set in joined:
        kv = _extension(scale_set, "KeyVaultForWindows", "KeyVaultForLinux")
        sf = _extension(scale_set, "ServiceFabricNode", "ServiceFabricLinuxNode")
        urls = [c["certificateUrl"] for g in scale_set["properties"]["virtualMachineProfile"]["osProfile"].get("secrets") or []
                for c in g["vaultCertificates"]]
        if sf["properties"]["type"] == "ServiceFabricLinuxNode":
            # Issue 10: Linux keeps the goal as a versioned VMSS secret (even with cleanup), no Key Vault extension.
            assert kv is None, scale_set["name"]
            assert sf["properties"]["settings"]["certificate"]["commonNames"] == [common["certificateCommonName"]]
            assert any(f"/secrets/{goal_name}/" in u for u in urls), urls
            assert any(f.code == "LINUX_DELIVERY_BY_VMSS_SECRET" for f in result.plan.findings)
            continue
        identity = clients.msi.user_assigned_identities.get(goal["identity"].split("/")[4], goal["identity"].rsplit("/", 1)[-1])
        assert kv is not None, scale_set["name"]
        assert kv["properties"]["settings"]["authenticationSettings"]["msiClientId"] == identity.client_id
        assert goal["identity"].lower() in {k.lower() for k in scale_set["identity"]["userAssignedIdentities"]}
        assert sf["properties"]["settings"]["certificate"]["commonNames"] == [common["certificateCommonName"]]
        assert "thumbprint" not in sf["properties"]["settings"]["certificate"]
        assert kv["name"] in sf["properties"]["provisionAfterExtensions"]
        if cleanup:
            assert not any(f"/secrets/{goal_name}/" in u for u in urls), urls  # the cleanup removed the goal's secret
        else:  # cleanup off: it stays (harmless on Windows: SF picks by common name), and the plan says so
            assert any(f"/secrets/{goal_name}/" in u for u in urls), urls
            assert any("the goal's versioned VMSS secret stays" in note for note in result.plan.notes)

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
    again = commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    assert again.nothing_to_do
    assert requests_json(twin)["mutating"] == mutating_before


@pytest.mark.parametrize("scenario", BLOCKED)
def test_blocked_scenarios_write_nothing(twin_factory, tmp_path: Path, scenario: str) -> None:
    twin = twin_factory(scenario)
    with pytest.raises(Blocked):
        commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert requests_json(twin)["mutating"] == 0
    assert world_json(twin)["cluster"]["declaration"] == "thumbprint"
