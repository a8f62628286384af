"""The built-in scenarios (their names are a contract): each starts Healthy, has a goal, and is the world its
header says it is. Read through ``GET /_emulator/world`` of a served twin, as any outside observer would."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from aztwin.scenario import builtin_names, builtin_path, load_scenario
from twinkit import Clients, world_json

CONTRACT = [
    "already-cn", "basic", "cluster-busy", "cn-mismatch", "expiring-goal", "fleet", "goal-from-other-ca", "goal-primary",
    "goal-secondary", "identity-recreated", "issuer-not-pinned", "issuer-shared-key", "linux-nodetype", "multi-nodetype",
    "no-client-auth-eku", "not-exportable", "old-expiring", "old-newer-than-goal", "old-primary", "pki-offline", "rbac-propagation-delay",
    "rbac-vault", "reverse-proxy-renewed", "reverse-proxy-thumbprint", "self-signed-goal", "shared-subject", "two-clusters", "two-old-certs",
    "upgrade-rollback", "vault-firewall", "vault-firewall-subnet",
]
MULTI_CLUSTER = {"two-clusters": 2, "fleet": 13}  # every other built-in scenario holds one cluster


def test_the_built_in_scenario_names_are_the_contract() -> None:
    assert builtin_names() == CONTRACT


@pytest.mark.parametrize("name", CONTRACT)
def test_each_scenario_file_explains_its_world_and_names_a_goal(name: str) -> None:
    text = builtin_path(name).read_text(encoding="utf-8")
    assert text.startswith(f"# {name}:"), "a header comment naming the scenario and explaining its world"
    spec, _ = load_scenario(name)
    assert spec.name == name and spec.description.strip()
    assert len(spec.clusters) == MULTI_CLUSTER.get(name, 1) and yaml.safe_load(text)["apiVersion"] == "sfmigrate/twin-v1"
    goals = [spec.goal] if spec.goal is not None else [c.goal for c in spec.clusters]  # a goal for every cluster
    assert len(goals) == len(spec.clusters) and all(g is not None and g.commonName for g in goals)
    assert spec.goal is None or spec.goal.cluster == spec.clusters[0].name


def test_every_built_in_world_starts_healthy_with_its_goal(twin_factory: Any) -> None:
    for name in CONTRACT:
        twin = twin_factory(name)
        world = world_json(twin)
        cluster = world["cluster"]
        assert cluster["health"] == cluster["health_worst"] == "Healthy", (name, cluster["health_reasons"])
        expected_state = "UpdatingUserConfiguration" if name == "cluster-busy" else "Ready"
        assert cluster["cluster_state"] == expected_state, name
        assert world["goal"]["cluster"] == cluster["id"] and world["goal"]["certificate"], name
        assert twin.plan_file is not None and twin.plan_file.is_file(), name
        plan = yaml.safe_load(twin.plan_file.read_text(encoding="utf-8"))
        assert plan["cluster"]["id"] == cluster["id"] and plan["goal"]["certificateName"] == world["goal"]["certificate"]
        for instance in (i for s in world["scale_sets"] for i in s["instances"]):
            assert instance["provisioningState"] == "Succeeded", (name, instance)
            assert all(e["status"] == "succeeded" for e in instance["extensions"].values()), (name, instance["extensions"])
        twin.stop()


def _world(twin_factory: Any, name: str) -> tuple[Any, dict[str, Any]]:
    twin = twin_factory(name)
    return twin, world_json(twin)


def _goal_version(world: dict[str, Any]) -> dict[str, Any]:
    vault = next(v for v in world["vaults"] if v["id"] == world["goal"]["vault"])
    return next(c for c in vault["certificates"] if c["name"] == world["goal"]["certificate"])["versions"][-1]


def _declared(world: dict[str, Any]) -> list[str]:
    certificate = world["cluster"]["certificate"] or {}
    return [t for t in (certificate.get("thumbprint"), certificate.get("thumbprintSecondary")) if t]


def _installed(world: dict[str, Any]) -> set[str]:
    return {t for nt in world["cluster"]["node_types"] for n in nt["nodes"] for t in n["thumbprints"]}


def test_goal_primary_is_declared_and_delivered_by_thumbprint(twin_factory: Any) -> None:
    _, world = _world(twin_factory, "goal-primary")
    goal = _goal_version(world)
    assert _declared(world) == [goal["thumbprint"]] and world["cluster"]["declaration"] == "thumbprint"
    assert goal["issuer"] == "contoso-issuing-1" and world["goal"]["pinnedIssuers"] == [next(a["thumbprint"] for a in world["pki"] if a["name"] == "contoso-issuing-1")]
    (node_type,) = world["cluster"]["node_types"]
    assert node_type["os"] == "windows" and len(node_type["nodes"]) == 5
    assert all(c["source"] == "vmss-secret" for n in node_type["nodes"] for c in n["certificates"])
    assert world["scale_sets"][0]["secrets"][0].rsplit("/", 2)[-2] == "cluster-cert"  # a versioned URL
    assert not any(i["name"] == "sf-kv-reader" for i in world["identities"])  # sfmigrate creates it


def test_goal_not_yet_in_the_cluster(twin_factory: Any) -> None:
    for name in ("old-primary", "old-newer-than-goal", "two-old-certs", "multi-nodetype", "rbac-vault", "not-exportable"):
        twin, world = _world(twin_factory, name)
        goal = _goal_version(world)
        assert goal["thumbprint"] not in _declared(world) and goal["thumbprint"] not in _installed(world), name
        assert len(_declared(world)) == (2 if name == "two-old-certs" else 1), name
        twin.stop()


def test_already_cn_is_the_end_state(twin_factory: Any) -> None:
    _, world = _world(twin_factory, "already-cn")
    cluster = world["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["certificate"] is None
    assert cluster["certificateCommonNames"]["commonNames"][0]["certificateIssuerThumbprint"] == world["goal"]["pinnedIssuers"][0]
    scale_set = world["scale_sets"][0]
    assert scale_set["secrets"] == [] and world["goal"]["identity"] in scale_set["identities"]
    assert {e["type"] for e in scale_set["extensions"]} == {"KeyVaultForWindows", "ServiceFabricNode"}
    assert all(c["source"] == "kv-extension" for n in cluster["node_types"][0]["nodes"] for c in n["certificates"])
    assert cluster["hazards"] == []


def test_multi_nodetype_has_three_kinds_of_node_type(twin_factory: Any) -> None:
    _, world = _world(twin_factory, "multi-nodetype")
    kinds = {(s["name"], s["os"], s["upgradeMode"]) for s in world["scale_sets"]}
    assert kinds == {("nt0", "windows", "Automatic"), ("nt1", "windows", "Manual"), ("nt2", "linux", "Automatic")}


def test_rbac_vault_needs_data_roles(twin_factory: Any) -> None:
    twin, world = _world(twin_factory, "rbac-vault")
    vault = world["vaults"][0]
    assert vault["rbac"] is True and vault["accessPolicies"] == []
    certificate = Clients(twin).certificates(vault["uri"]).get_certificate("cluster-cert")  # operator: Key Vault Reader
    assert certificate.properties.x509_thumbprint.hex().upper() == _goal_version(world)["thumbprint"]


def test_goal_hazard_scenarios_are_what_they_say(twin_factory: Any) -> None:
    checks = {
        "self-signed-goal": lambda w, g: g["issuer"] == "self" and w["goal"]["pinnedIssuers"] == [g["thumbprint"]],
        "issuer-not-pinned": lambda w, g: g["issuer"] == "contoso-issuing-1"
        and w["goal"]["pinnedIssuers"] == [next(a["thumbprint"] for a in w["pki"] if a["name"] == "contoso-root")],
        "cn-mismatch": lambda w, g: w["goal"]["commonName"] != g["subject"].removeprefix("CN=")
        and w["goal"]["commonName"].lower() == g["subject"].removeprefix("CN=").lower(),
        "not-exportable": lambda w, g: not next(c for v in w["vaults"] for c in v["certificates"] if c["name"] == "cluster-cert")["exportable"],
        "expiring-goal": lambda w, g: "ExpiresSoon" in {h["code"] for h in w["cluster"]["hazards"]},
        "no-client-auth-eku": lambda w, g: "NoClientAuthEku" in {h["code"] for h in w["cluster"]["hazards"]},
        "reverse-proxy-thumbprint": lambda w, g: w["cluster"]["reverseProxyCertificate"]["thumbprint"] != g["thumbprint"],
        "shared-subject": lambda w, g: "SharedSubject" in {h["code"] for h in w["cluster"]["hazards"]},
    }
    for name, check in checks.items():
        twin, world = _world(twin_factory, name)
        assert check(world, _goal_version(world)), name
        twin.stop()


def test_cluster_busy_refuses_updates_until_it_settles(twin_factory: Any) -> None:
    import json
    import ssl
    import urllib.request

    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.servicefabric.models import ClusterUpdateParameters

    twin = twin_factory("cluster-busy")
    clients = Clients(twin)
    with pytest.raises(HttpResponseError) as caught:
        clients.servicefabric.clusters.begin_update("rg-sf", "sfcluster", ClusterUpdateParameters(tags={"touched": "yes"})).result()
    assert "PendingClusterUpgradeCannotBeInterrupted" in str(caught.value)
    request = urllib.request.Request(twin.base_url + "/_emulator/clock/advance", data=json.dumps({"seconds": 6 * 3600 + 60}).encode(), method="POST")
    urllib.request.urlopen(request, context=ssl.create_default_context(cafile=twin.ca_bundle), timeout=30).read()
    assert clients.servicefabric.clusters.get("rg-sf", "sfcluster").cluster_state == "Ready"
    clients.servicefabric.clusters.begin_update("rg-sf", "sfcluster", ClusterUpdateParameters(tags={"touched": "yes"})).result()
