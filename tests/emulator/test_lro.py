"""Every long-running operation the migration needs completes through the SDK's own poller.

Service Fabric answers PUT/PATCH 202 + ``Location`` (operationResults, final 200 = the cluster); Compute
answers PUT 200/201 and PATCH 200 with ``Azure-AsyncOperation``, and ``manualupgrade`` 202 with
``Azure-AsyncOperation`` + a ``monitor=true`` ``Location`` (research/emulation.md §3). The outcomes are
checked in the returned resources and in the twin's world, not in the protocol alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.servicefabric.models import ClusterUpdateParameters, SettingsParameterDescription, SettingsSectionDescription

from twinkit import Clients, requests_json, world_json
from wirekit import principal, scenario_file

RG = "rg-sf"
SECRET = "lro-test-secret"  # a scenario principal's client secret (test data, not a credential)


def _states(log: list[tuple[str, int, str | None]]) -> Any:
    def hook(response: Any) -> None:
        text = response.http_response.text()
        body = json.loads(text) if text else None
        state = ((body or {}).get("properties") or {}).get("clusterState") if isinstance(body, dict) else None
        log.append((response.http_request.method, response.http_response.status_code, state))

    return hook


def _goal(clients: Clients) -> tuple[str, str]:
    """The goal certificate's versioned secret URL and its thumbprint, read through CertificateClient."""
    vault = clients.keyvault.vaults.get(RG, "kv-sf-basic")
    certificate = clients.certificates(vault.properties.vault_uri).get_certificate("cluster-cert")
    return certificate.secret_id, certificate.properties.x509_thumbprint.hex().upper()


def _node_thumbprints(twin: Any, scale_set: str = "nt0") -> dict[str, list[str]]:
    found = next(s for s in world_json(twin)["scale_sets"] if s["name"] == scale_set)
    return {i["instanceId"]: [c["thumbprint"] for c in i["certificates"]] for i in found["instances"]}


def _add_secret(model: Any, secret_url: str) -> None:
    """Append a versioned certificate URL to the (single) vault group of a VMSS model's osProfile.secrets."""
    model["virtualMachineProfile"]["osProfile"]["secrets"][0]["vaultCertificates"].append(
        {"certificateUrl": secret_url, "certificateStore": "My"}
    )


def test_cluster_begin_update_walks_user_configuration_back_to_ready(twin, clients: Clients) -> None:
    seen: list[tuple[str, int, str | None]] = []
    settings = [
        SettingsSectionDescription(name="Security", parameters=[SettingsParameterDescription(name="ClusterProtectionLevel", value="EncryptAndSign")]),
        SettingsSectionDescription(name="Hosting", parameters=[SettingsParameterDescription(name="FirewallPolicyEnabled", value="true")]),
    ]
    poller = clients.servicefabric.clusters.begin_update(
        RG, "sfcluster", ClusterUpdateParameters(fabric_settings=settings), raw_response_hook=_states(seen)
    )
    cluster = poller.result()
    assert cluster is not None and cluster.cluster_state == "Ready" and cluster.provisioning_state == "Succeeded"
    assert [s.name for s in cluster.fabric_settings] == ["Security", "Hosting"]
    # The initial 202 carries the cluster mid-upgrade; the poller follows Location until the final 200.
    assert seen[0] == ("PATCH", 202, "UpdatingUserConfiguration")
    assert seen[-1] == ("GET", 200, "Ready")
    world = world_json(twin)
    assert world["cluster"]["cluster_state"] == "Ready" and world["cluster"]["health"] == "Healthy"
    assert [op["status"] for op in world["operations"] if op["kind"] == "sf-update"] == ["Succeeded"]
    polls = [r for r in requests_json(twin)["requests"] if "/operationResults/" in r["path"]]
    assert polls and polls[-1]["status"] == 200


def test_vmss_update_then_full_cluster_put_adds_goal_as_secondary(twin, clients: Clients) -> None:
    """Automatic policy: a VMSS PATCH installs the goal certificate; a full cluster PUT declares it secondary."""
    secret_url, goal = _goal(clients)
    compute = clients.compute.virtual_machine_scale_sets
    secrets = compute.get(RG, "nt0").properties.virtual_machine_profile.os_profile.secrets
    patch = {"properties": {"virtualMachineProfile": {"osProfile": {"secrets": [s.as_dict() for s in secrets]}}}}
    _add_secret(patch["properties"], secret_url)
    updated = compute.begin_update(RG, "nt0", patch).result()
    assert updated.properties.provisioning_state == "Succeeded"
    urls = [c.certificate_url for c in updated.properties.virtual_machine_profile.os_profile.secrets[0].vault_certificates]
    assert secret_url in urls
    instances = list(clients.compute.virtual_machine_scale_set_vms.list(RG, "nt0"))
    assert instances and all(i.properties.latest_model_applied for i in instances)
    assert all(goal in prints for prints in _node_thumbprints(twin).values())

    cluster = clients.servicefabric.clusters.get(RG, "sfcluster")
    cluster.certificate.thumbprint_secondary = goal
    seen: list[tuple[str, int, str | None]] = []
    result = clients.servicefabric.clusters.begin_create_or_update(RG, "sfcluster", cluster, raw_response_hook=_states(seen)).result()
    assert result.certificate.thumbprint_secondary == goal and result.cluster_state == "Ready"
    assert seen[0] == ("PUT", 202, "UpdatingUserCertificate")
    world = world_json(twin)["cluster"]
    assert world["certificate"]["thumbprintSecondary"] == goal
    assert world["cluster_state"] == "Ready" and world["health"] == "Healthy"


def test_cluster_put_rejected_synchronously_surfaces_sfrp_code(twin, clients: Clients) -> None:
    cluster = clients.servicefabric.clusters.get(RG, "sfcluster")
    cluster.certificate.thumbprint_secondary = "not-a-thumbprint"
    with pytest.raises(HttpResponseError) as caught:
        clients.servicefabric.clusters.begin_create_or_update(RG, "sfcluster", cluster).result()
    assert caught.value.status_code == 400 and caught.value.error.code == "InvalidCertificateThumbprint"
    assert world_json(twin)["cluster"]["certificate"].get("thumbprintSecondary") is None


@pytest.fixture
def manual_twin(twin_factory, tmp_path):
    path = scenario_file(
        tmp_path, "manual-lro", upgrade_policy="Manual",
        principals=[{"name": "ci-app", "clientSecret": SECRET, "roles": [{"role": "Owner"}]}],
        edit=lambda doc: doc["vaults"][0].setdefault("accessPolicies", [{"principal": "operator", "certificates": ["get", "list"]}])
        .append({"principal": "principal:ci-app", "certificates": ["get", "list"]}),
    )
    return twin_factory(scenario_file=path)


def test_manual_policy_update_waits_for_update_instances(manual_twin) -> None:
    """Manual policy: the PATCH changes the model only; ``manualupgrade`` rolls it onto the chosen instances."""
    app = principal(manual_twin, "ci-app")
    credential = ClientSecretCredential(
        app["tenantId"], app["clientId"], SECRET, authority=manual_twin.base_url,
        disable_instance_discovery=True, connection_verify=manual_twin.ca_bundle,
    )
    clients = Clients(manual_twin, credential)
    compute = clients.compute
    secret_url, goal = _goal(clients)
    model = compute.virtual_machine_scale_sets.get(RG, "nt0")
    secrets = model.properties.virtual_machine_profile.os_profile.secrets
    patch = {"properties": {"virtualMachineProfile": {"osProfile": {"secrets": [s.as_dict() for s in secrets]}}}}
    _add_secret(patch["properties"], secret_url)
    compute.virtual_machine_scale_sets.begin_update(RG, "nt0", patch).result()
    flags = {i.instance_id: i.properties.latest_model_applied for i in compute.virtual_machine_scale_set_vms.list(RG, "nt0")}
    assert flags == {"0": False, "1": False, "2": False}
    assert not any(goal in prints for prints in _node_thumbprints(manual_twin).values())

    assert compute.virtual_machine_scale_sets.begin_update_instances(RG, "nt0", {"instanceIds": ["0", "2"]}).result() is None
    flags = {i.instance_id: i.properties.latest_model_applied for i in compute.virtual_machine_scale_set_vms.list(RG, "nt0")}
    assert flags == {"0": True, "1": False, "2": True}
    prints = _node_thumbprints(manual_twin)
    assert goal in prints["0"] and goal in prints["2"] and goal not in prints["1"]
    view = compute.virtual_machine_scale_set_vms.get_instance_view(RG, "nt0", "1")
    assert view.platform_update_domain == 1

    compute.virtual_machine_scale_sets.begin_update_instances(RG, "nt0", {"instanceIds": ["1"]}).result()
    assert all(i.properties.latest_model_applied for i in compute.virtual_machine_scale_set_vms.list(RG, "nt0"))
    callers = {r["caller"] for r in requests_json(manual_twin)["requests"] if "/virtualMachineScaleSets/" in r["path"]}
    assert callers == {app["objectId"]}


def test_vmss_full_put_of_existing_and_create_of_new(manual_twin) -> None:
    clients = Clients(manual_twin)
    scale_sets = clients.compute.virtual_machine_scale_sets
    existing = scale_sets.get(RG, "nt0")
    existing.tags = {**(existing.tags or {}), "owner": "sfmigrate"}
    result = scale_sets.begin_create_or_update(RG, "nt0", existing).result()
    assert result.tags["owner"] == "sfmigrate" and result.properties.provisioning_state == "Succeeded"
    # Issue 10: the GET carries no protectedSettings, so this "tags only" PUT drops the SF extension's: the model
    # changed, and the Manual-policy instances are no longer on it (docs/twin.md, "Protected settings").
    assert not any(i.properties.latest_model_applied for i in clients.compute.virtual_machine_scale_set_vms.list(RG, "nt0"))
    nt0 = next(s for s in world_json(manual_twin)["scale_sets"] if s["name"] == "nt0")
    assert [e["hasProtectedSettings"] for e in nt0["extensions"]] == [False]

    fresh = {
        "location": existing.location,
        "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": 2},
        "properties": {
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": "extra", "adminUsername": "azureuser"},
                "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}},
            },
        },
    }
    created = scale_sets.begin_create_or_update(RG, "extra", fresh).result()
    assert created.name == "extra" and created.properties.provisioning_state == "Succeeded"
    assert len(list(clients.compute.virtual_machine_scale_set_vms.list(RG, "extra"))) == 2
    assert {s["name"] for s in world_json(manual_twin)["scale_sets"]} == {"nt0", "extra"}
    statuses = [r["status"] for r in requests_json(manual_twin)["requests"] if r["method"] == "PUT"]
    assert statuses == [200, 201]
