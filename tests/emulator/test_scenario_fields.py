"""Scenario-file fields of issue 12: client certificates, cluster names unique per resource group, a goal per
cluster (a plan file each), role scopes in any subscription, ``enableAutomaticUpgrade`` on the Key Vault extension.

Each is checked where it lands: the world the twin builds (``/_emulator/world``), what ARM answers through the
real SDK clients, the plan files sfmigrate writes, and what sfmigrate plans against that twin.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from aztwin.clock import ManualClock
from aztwin.scenario import ScenarioError, build_world, builtin_path, parse_scenario
from migrate import commands
from migrate.spec import load_plan
from migrate.twin_plan import write_plans_for
from twinkit import Clients, PlannedTwin, world_json

REPO = Path(__file__).resolve().parents[2]
THUMBPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"


def _document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(builtin_path(name).read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def _world(document: dict[str, Any]) -> dict[str, Any]:
    spec = parse_scenario(yaml.safe_dump(document), "test.yaml")
    snapshot: dict[str, Any] = build_world(spec, "https://127.0.0.1:1", clock=ManualClock()).snapshot()
    return snapshot


def _error(document: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(yaml.safe_dump(document), "test.yaml")
    return str(caught.value)


def _file(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _session(plan_file: Path) -> Any:
    return commands.open_session(load_plan(plan_file), poll_interval=0.02, retry_backoff=0.05)


# -- client certificates -------------------------------------------------------------------------------
def test_client_certificates_are_declared_in_arm_and_shown_in_the_world(tmp_path: Path, twin_factory: Callable[..., PlannedTwin]) -> None:
    document = _document("basic")
    document["name"] = "client-certs"
    document["clusters"][0]["clientCertificateThumbprints"] = [
        {"thumbprint": "kv-sf-basic/cluster-old", "isAdmin": True},
        {"thumbprint": THUMBPRINT.lower()},
    ]
    document["clusters"][0]["clientCertificateCommonNames"] = [
        {"commonName": "sfadmin.contoso.com", "issuers": ["contoso-issuing-1"], "isAdmin": True},
        {"commonName": "sfreader.contoso.com"},
    ]
    twin = twin_factory(None, scenario_file=_file(tmp_path, document))
    world = world_json(twin)
    cluster = world["cluster"]
    old = next(c for v in world["vaults"] for c in v["certificates"] if c["name"] == "cluster-old")
    issuing = next(a for a in world["pki"] if a["name"] == "contoso-issuing-1")
    expected_thumbprints = [
        {"isAdmin": True, "certificateThumbprint": old["versions"][0]["thumbprint"]},
        {"isAdmin": False, "certificateThumbprint": THUMBPRINT},
    ]
    expected_names = [
        {"isAdmin": True, "certificateCommonName": "sfadmin.contoso.com", "certificateIssuerThumbprint": issuing["thumbprint"]},
        {"isAdmin": False, "certificateCommonName": "sfreader.contoso.com", "certificateIssuerThumbprint": ""},
    ]
    assert cluster["clientCertificateThumbprints"] == expected_thumbprints
    assert cluster["clientCertificateCommonNames"] == expected_names
    assert cluster["health"] == "Healthy"  # declared and shown: the twin models no client connections
    # ARM answers the same declaration through the real Service Fabric client.
    rid = cluster["id"].split("/")
    arm = Clients(twin).servicefabric.clusters.get(rid[4], rid[-1]).as_dict()
    assert [(c["is_admin"], c["certificate_thumbprint"]) for c in arm["client_certificate_thumbprints"]] == [
        (e["isAdmin"], e["certificateThumbprint"]) for e in expected_thumbprints
    ]
    assert [(c["is_admin"], c["certificate_common_name"], c["certificate_issuer_thumbprint"]) for c in arm["client_certificate_common_names"]] == [
        (e["isAdmin"], e["certificateCommonName"], e["certificateIssuerThumbprint"]) for e in expected_names
    ]


def test_a_scenario_without_client_certificates_shows_empty_lists() -> None:
    cluster = _world(_document("basic"))["cluster"]
    assert cluster["clientCertificateThumbprints"] == [] and cluster["clientCertificateCommonNames"] == []


@pytest.mark.parametrize(
    "entry, where",
    [
        ({"clientCertificateThumbprints": [{"thumbprint": "kv-sf-basic/nothing"}]}, "clusters[0].clientCertificateThumbprints[0].thumbprint"),
        ({"clientCertificateCommonNames": [{"commonName": "a.contoso.com", "issuers": ["nobody"]}]},
         "clusters[0].clientCertificateCommonNames[0].issuers[0]"),
        ({"clientCertificateCommonNames": [{"commonName": ""}]}, "clusters[0].clientCertificateCommonNames[0].commonName"),
    ],
)
def test_bad_client_certificates_name_their_field(entry: dict[str, Any], where: str) -> None:
    document = _document("basic")
    document["clusters"][0].update(entry)
    assert f"test.yaml: {where}:" in _error(document)


# -- cluster names per resource group, a goal per cluster ------------------------------------------------
def test_two_clusters_may_share_a_name_in_different_resource_groups() -> None:
    world = _world(_document("two-clusters"))
    ids = [c["id"].split("/") for c in world["clusters"]]
    assert [(i[4], i[-1]) for i in ids] == [("rg-sf", "sfcluster"), ("rg-sf-b", "sfcluster")]
    assert all(c["health"] == "Healthy" for c in world["clusters"])
    # Each cluster has its own nodes: its own nt0 scale set, in its own resource group.
    assert [[t["vmss"].split("/")[4] for t in c["node_types"]] for c in world["clusters"]] == [["rg-sf"], ["rg-sf-b"]]
    assert [g["cluster"] for g in world["goals"]] == [c["id"] for c in world["clusters"]]
    assert [g["certificate"] for g in world["goals"]] == ["cluster-cert-a", "cluster-cert-b"]
    assert world["goal"] == world["goals"][0]


def test_a_cluster_name_is_unique_in_its_resource_group() -> None:
    document = _document("two-clusters")
    del document["clusters"][1]["resourceGroup"]
    assert _error(document) == "test.yaml: clusters[1].name: a cluster named 'sfcluster' already exists in that resource group"


def test_the_top_level_goal_names_its_cluster_by_resource_group_where_the_name_is_shared() -> None:
    document = _document("two-clusters")
    goal = document["clusters"][1].pop("goal")
    document["goal"] = {"cluster": "sfcluster", **goal}
    assert "test.yaml: goal.cluster: clusters named 'sfcluster' are in several resource groups" in _error(document)
    document["goal"]["resourceGroup"] = "rg-nowhere"
    assert _error(document) == "test.yaml: goal.cluster: unknown cluster 'sfcluster' in resource group 'rg-nowhere'"
    document["goal"]["resourceGroup"] = "rg-sf"  # that cluster has its own goal already
    assert "test.yaml: goal.cluster: cluster 'sfcluster' has its own goal (clusters[0].goal)" in _error(document)
    document["goal"]["resourceGroup"] = "RG-SF-B"
    world = _world(document)
    # The top-level goal comes first (it is `goal`, hence plan.yaml), then the clusters' own.
    assert [g["cluster"].split("/")[4] for g in world["goals"]] == ["rg-sf-b", "rg-sf"]
    assert world["goal"]["certificate"] == "cluster-cert-b"


def test_a_cluster_goal_names_its_bad_field() -> None:
    document = _document("two-clusters")
    document["clusters"][1]["goal"]["pinnedIssuers"] = ["nobody"]
    assert "test.yaml: clusters[1].goal.pinnedIssuers[0]:" in _error(document)
    document["clusters"][1]["goal"]["certificate"] = "cluster-cert-c"
    assert "test.yaml: clusters[1].goal.certificate:" in _error(document)


def test_each_cluster_goal_gets_a_plan_file_that_plans_that_cluster(twin_factory: Callable[..., PlannedTwin]) -> None:
    twin = twin_factory("two-clusters")
    world = world_json(twin)
    plans = write_plans_for(twin)
    assert list(plans.plan_files) == [c["id"] for c in world["clusters"]]
    assert [p.name for p in plans.plan_files.values()] == ["plan.yaml", "plan-sfcluster-rg-sf-b.yaml"]
    assert plans.plan_file == twin.plan_file == twin.state_dir / "plan.yaml"
    for cluster, (cluster_id, plan_file) in zip(world["clusters"], plans.plan_files.items()):
        group = cluster_id.split("/")[4]
        result = commands.plan(plan_file, session=_session(plan_file))
        assert result.plan.cluster_id.lower() == cluster["id"].lower() and not result.plan.blocked, result.plan.findings
        assert result.plan.steps and result.plan.has_changes
        # Both clusters' node types are called nt0: each plan touches its own cluster's scale set and no other.
        scale_sets = {r.lower() for s in result.plan.steps for r in s.resources if "/virtualmachinescalesets/" in r.lower()}
        assert scale_sets and {r.split("/")[4] for r in scale_sets} == {group}, scale_sets
        clusters = {r.lower() for s in result.plan.steps for r in s.resources if "/microsoft.servicefabric/clusters/" in r.lower()}
        assert clusters == {cluster_id.lower()}, clusters
        goal = next(g for g in world["goals"] if g["cluster"] == cluster_id)
        assert yaml.safe_load(plan_file.read_text(encoding="utf-8"))["goal"]["certificateName"] == goal["certificate"]


def test_serve_prints_a_plan_file_per_cluster_goal(tmp_path: Path) -> None:
    import os
    import signal

    drop = {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_TOKEN_CREDENTIALS", "AZURE_AUTHORITY_HOST", "SFMIGRATE_ARM_ENDPOINT"}
    child = subprocess.Popen(
        [sys.executable, "-m", "migrate", "emulator", "serve", "--scenario", "two-clusters", "--state-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items() if k not in drop},
    )
    try:
        assert child.stdout is not None
        ready = json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert list(ready)[-4:] == ["plan_file", "plan_files", "fleet_file", "scenario"]
    assert ready["fleet_file"] == str(tmp_path / "fleet.yaml")
    assert ready["plan_file"] == str(tmp_path / "plan.yaml")
    assert sorted(Path(p).name for p in ready["plan_files"].values()) == ["plan-sfcluster-rg-sf-b.yaml", "plan.yaml"]
    for cluster_id, path in ready["plan_files"].items():
        assert load_plan(Path(path)).cluster.id == cluster_id


# -- role scopes in any subscription -------------------------------------------------------------------
def _two_subscriptions() -> dict[str, Any]:
    document = _document("basic")
    document["subscriptions"] = [
        {"name": "Production", "resourceGroups": [{"name": "rg-sf"}]},
        {"name": "Staging", "id": "5c2a9e3e-0d6b-4f37-9d54-0e7a3f1b2c44", "resourceGroups": [{"name": "rg-staging"}]},
    ]
    return document


def test_role_scopes_lie_in_the_subscription_they_name() -> None:
    document = _two_subscriptions()
    document["operator"] = {"roles": [
        {"role": "Owner"},
        {"role": "Reader", "scope": "resourceGroup:rg-staging", "subscription": "Staging"},
        {"role": "Contributor", "scope": "subscription", "subscription": "5c2a9e3e-0d6b-4f37-9d54-0e7a3f1b2c44"},
    ]}
    world = _world(document)
    production = world["subscriptions"][0]["id"]
    scopes = {(a["role"], a["scope"]) for a in world["role_assignments"]}
    assert scopes == {
        ("Owner", f"/subscriptions/{production}"),
        ("Reader", "/subscriptions/5c2a9e3e-0d6b-4f37-9d54-0e7a3f1b2c44/resourceGroups/rg-staging"),
        ("Contributor", "/subscriptions/5c2a9e3e-0d6b-4f37-9d54-0e7a3f1b2c44"),
    }
    staged = [a for a in world["role_assignments"] if a["role"] != "Owner"]
    assert all(a["id"].startswith(a["scope"] + "/providers/Microsoft.Authorization/roleAssignments/") for a in staged)


@pytest.mark.parametrize(
    "role, says",
    [
        ({"role": "Reader", "scope": "resourceGroup:rg-staging"}, "operator.roles[0].scope: unknown resourceGroup 'rg-staging' in subscription 'Production'"),
        ({"role": "Reader", "scope": "resourceGroup:rg-sf", "subscription": "Staging"}, "operator.roles[0].scope: unknown resourceGroup 'rg-sf' in subscription 'Staging'"),
        ({"role": "Reader", "subscription": "Testing"}, "operator.roles[0].subscription: unknown subscription 'Testing'"),
        ({"role": "Reader", "scope": "vault:kv-sf-basic", "subscription": "Staging"},
         "operator.roles[0].subscription: applies to the scopes subscription and resourceGroup:<name> only"),
    ],
)
def test_a_role_scope_outside_its_subscription_is_refused(role: dict[str, Any], says: str) -> None:
    document = _two_subscriptions()
    document["operator"] = {"roles": [role]}
    assert _error(document) == f"test.yaml: {says}"


# -- enableAutomaticUpgrade ------------------------------------------------------------------------------
@pytest.mark.parametrize("auto_upgrade", [True, None])
def test_enable_automatic_upgrade_reaches_the_vmss_body_and_sfmigrate_warns(
    tmp_path: Path, twin_factory: Callable[..., PlannedTwin], auto_upgrade: bool | None,
) -> None:
    document = _document("already-cn")
    document["name"] = "auto-upgrade"
    extension = document["clusters"][0]["nodeTypes"][0]["keyVaultExtension"]
    extension.pop("enableAutomaticUpgrade", None)
    if auto_upgrade is not None:
        extension["enableAutomaticUpgrade"] = auto_upgrade
    twin = twin_factory(None, scenario_file=_file(tmp_path, document))
    clients = Clients(twin)
    rid = world_json(twin)["scale_sets"][0]["id"].split("/")
    scale_set = clients.compute.virtual_machine_scale_sets.get(rid[4], rid[-1])
    [kv] = [e.properties for e in scale_set.properties.virtual_machine_profile.extension_profile.extensions
            if e.properties.publisher == "Microsoft.Azure.KeyVault"]
    assert kv.enable_automatic_upgrade is auto_upgrade  # absent from the body unless the scenario sets it
    assert twin.plan_file is not None
    codes = [f.code for f in commands.plan(twin.plan_file, session=_session(twin.plan_file)).plan.findings]
    assert ("EXTENSION_AUTO_UPGRADE" in codes) is bool(auto_upgrade), codes
