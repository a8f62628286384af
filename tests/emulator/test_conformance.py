"""Wire JSON validates against Microsoft's published specs, for every resource type the twin serves.

Bodies are fetched with raw HTTPS (the twin's CA, a bearer token from its managed-identity endpoint), so the
schemas judge what goes over the wire, not what an SDK model keeps. Spec files: ``../shared/specs``
(tests/specs.py explains how Swagger's keywords are mapped). Where a spec is older than the SDK (e.g. SF
2021-06-01 ``Cluster`` lacks ``upgradeWave``; compute 39 speaks 2026-04-01 against the 2024-07-01 file), the
SDK is trusted: Swagger models allow extra properties, so newer fields the SDK reads do not fail here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import specs
from wirekit import API, Wire, scenario_file

SHARED_SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs"
pytestmark = pytest.mark.skipif(
    not SHARED_SPECS.is_dir(), reason=f"the spec copies are not at {SHARED_SPECS} (clone without ../shared beside it)"
)

SF, VMSS, KV, MSI, DATA = specs.SERVICEFABRIC, specs.COMPUTE_VMSS, specs.KEYVAULT_MGMT, specs.MSI, specs.KEYVAULT_DATA
COMPUTE_COMMON = "compute/resource-manager/Microsoft.Compute/common-types/v1/common.json"
KV_COMMON = "keyvault/resource-manager/Microsoft.KeyVault/KeyVault/stable/2024-11-01/common.json"
DATA_COMMON = "keyvault/data-plane/Microsoft.KeyVault/stable/7.5/common.json"


def test_spec_copies_sit_where_the_helper_reads_them() -> None:
    assert specs.SPECS == SHARED_SPECS
    # The validator is not vacuous: it resolves cross-file refs and reports type errors deep inside them.
    bad = {"location": "westeurope", "properties": {"virtualMachineProfile": {"osProfile": {"secrets": [{"sourceVault": {"id": 5}}]}}}}
    assert specs.errors(bad, VMSS, "VirtualMachineScaleSet") == [
        "properties/virtualMachineProfile/osProfile/secrets/0/sourceVault/id: 5 is not of type 'string'"
    ]
    assert specs.errors({"properties": {}}, SF, "Cluster")  # location, managementEndpoint, nodeTypes missing


def _rich(document: dict[str, Any]) -> None:
    """basic + a user-assigned identity, the Key Vault VM extension and a common-name declaration."""
    document["identities"] = [{"name": "sf-kv-reader"}]
    document["vaults"][0]["accessPolicies"] = [
        {"principal": "operator", "certificates": ["get", "list"]},
        {"principal": "identity:sf-kv-reader", "secrets": ["get", "list"]},
    ]
    node_type = document["clusters"][0]["nodeTypes"][0]
    node_type["keyVaultExtension"] = {"identity": "sf-kv-reader", "observed": ["kv-sf-basic/cluster-cert"]}
    document["clusters"][0]["certificate"] = {
        "commonNames": [{"commonName": "sfcluster.contoso.com", "issuers": ["contoso-issuing-1"]}]
    }
    document["clusters"][0]["nodeTypes"].append({"name": "nt1", "os": "linux", "instances": 2, "upgradePolicy": "Rolling"})


@pytest.fixture(params=["basic", "rich"])
def wire(request, twin_factory, tmp_path) -> Wire:
    if request.param == "basic":
        return Wire(twin_factory("basic"))
    return Wire(twin_factory(scenario_file=scenario_file(tmp_path, "rich", edit=_rich)))


def test_service_fabric_clusters(wire: Wire) -> None:
    one = f"{wire.rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster"
    specs.assert_conforms(wire.get_json(one, API["servicefabric"]), SF, "Cluster")
    for scope in (wire.rg, f"/subscriptions/{wire.sub}"):
        listed = wire.get_json(f"{scope}/providers/Microsoft.ServiceFabric/clusters", API["servicefabric"])
        assert len(listed["value"]) == 1
        specs.assert_conforms(listed, SF, "ClusterListResult")


def test_scale_sets_instances_and_instance_views(wire: Wire) -> None:
    names = [s["name"] for s in wire.get_json(f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets", API["compute"])["value"]]
    assert "nt0" in names
    for scope in (wire.rg, f"/subscriptions/{wire.sub}"):
        specs.assert_conforms(wire.get_json(f"{scope}/providers/Microsoft.Compute/virtualMachineScaleSets", API["compute"]), VMSS, "VirtualMachineScaleSetListResult")
    for name in names:
        one = f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
        specs.assert_conforms(wire.get_json(one, API["compute"]), VMSS, "VirtualMachineScaleSet")
        specs.assert_conforms(wire.get_json(one + "/instanceView", API["compute"]), VMSS, "VirtualMachineScaleSetInstanceView")
        for query in ("", "?$expand=instanceView"):
            listed = wire.get_json(one + "/virtualMachines" + query, API["compute"])
            specs.assert_conforms(listed, VMSS, "VirtualMachineScaleSetVMListResult")
        vm = wire.get_json(one + "/virtualMachines/0?$expand=instanceView", API["compute"])
        assert vm["properties"]["instanceView"]["extensions"]
        specs.assert_conforms(vm, VMSS, "VirtualMachineScaleSetVM")
        specs.assert_conforms(wire.get_json(one + "/virtualMachines/1", API["compute"]), VMSS, "VirtualMachineScaleSetVM")
        specs.assert_conforms(wire.get_json(one + "/virtualMachines/1/instanceView", API["compute"]), VMSS, "VirtualMachineScaleSetVMInstanceView")
        extensions = wire.get_json(one + "/extensions", API["compute"])
        specs.assert_conforms(extensions, VMSS, "VirtualMachineScaleSetExtensionListResult")
        for extension in extensions["value"]:
            child = wire.get_json(f"{one}/extensions/{extension['name']}", API["compute"])
            specs.assert_conforms(child, VMSS, "VirtualMachineScaleSetExtension")
            assert "protectedSettings" not in child["properties"]  # write-only (docs/twin.md)


def test_vaults_and_access_policy_results(wire: Wire) -> None:
    one = f"{wire.rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic"
    vault = wire.get_json(one, API["keyvault"])
    specs.assert_conforms(vault, KV, "Vault")
    for scope in (wire.rg, f"/subscriptions/{wire.sub}"):
        specs.assert_conforms(wire.get_json(f"{scope}/providers/Microsoft.KeyVault/vaults", API["keyvault"]), KV, "VaultListResult")
    generic = wire.get_json(f"/subscriptions/{wire.sub}/resources?$filter=resourceType eq 'Microsoft.KeyVault/vaults'", API["keyvault"])
    specs.assert_conforms(generic, KV, "ResourceListResult")
    entry = {"tenantId": vault["properties"]["tenantId"], "objectId": "3b0b6a47-0fd3-4a8c-9f5e-0c8e4c6f4a11",
             "permissions": {"secrets": ["get", "list"]}}
    for kind in ("add", "replace", "remove"):
        response = wire.request("PUT", f"{one}/accessPolicies/{kind}", {"properties": {"accessPolicies": [entry]}}, api=API["keyvault"])
        assert response.status_code == 200, response.text
        specs.assert_conforms(response.json(), KV, "VaultAccessPolicyParameters")


def test_user_assigned_identities(wire: Wire) -> None:
    one = f"{wire.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-conformance"
    created = wire.request("PUT", one, {"location": "westeurope", "tags": {"a": "b"}}, api=API["msi"])
    assert created.status_code == 201
    specs.assert_conforms(created.json(), MSI, "Identity")
    again = wire.request("PUT", one, {"location": "westeurope"}, api=API["msi"])
    assert again.status_code == 200 and again.json()["properties"]["principalId"] == created.json()["properties"]["principalId"]
    specs.assert_conforms(wire.get_json(one, API["msi"]), MSI, "Identity")
    listed = wire.get_json(f"{wire.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities", API["msi"])
    for item in listed["value"]:
        specs.assert_conforms(item, MSI, "Identity")


def test_key_vault_certificates(wire: Wire) -> None:
    uri = wire.get_json(f"{wire.rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic", API["keyvault"])["properties"]["vaultUri"]
    get = lambda path: wire.get_json(uri + path, API["kv"], token="kv")  # noqa: E731
    latest = get("certificates/cluster-cert/")  # the SDK's trailing slash (research §2)
    specs.assert_conforms(latest, DATA, "CertificateBundle")
    assert latest["policy"] and latest["id"].startswith(uri + "certificates/cluster-cert/")
    specs.assert_conforms(get(latest["id"][len(uri):]), DATA, "CertificateBundle")
    specs.assert_conforms(get("certificates/cluster-cert/policy"), DATA, "CertificatePolicy")
    for path in ("certificates", "certificates/cluster-cert/versions"):
        listed = get(path)
        assert listed["value"]
        specs.assert_conforms(listed, DATA, "CertificateListResult")
        for item in listed["value"]:
            specs.assert_conforms(item, DATA, "CertificateItem")


def test_lro_bodies_conform(twin_factory) -> None:
    """Initial and final bodies of the LROs the migration drives are resources of the specs' types."""
    wire = Wire(twin_factory("basic"))
    cluster = f"{wire.rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster"
    patch = {"properties": {"fabricSettings": [{"name": "Hosting", "parameters": [{"name": "A", "value": "1"}]}]}}
    started = wire.request("PATCH", cluster, patch, api=API["servicefabric"])
    assert started.status_code == 202 and "operationResults" in started.headers["Location"]
    specs.assert_conforms(started.json(), SF, "Cluster")
    final = _poll(wire, started.headers["Location"])
    specs.assert_conforms(final.json(), SF, "Cluster")

    scale_set = f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0"
    patched = wire.request("PATCH", scale_set, {"tags": {"x": "y"}}, api=API["compute"])
    assert patched.status_code == 200 and "Azure-AsyncOperation" in patched.headers
    specs.assert_conforms(patched.json(), VMSS, "VirtualMachineScaleSet")
    body = wire.get_json(scale_set, API["compute"])
    put = wire.request("PUT", scale_set, body, api=API["compute"])
    assert put.status_code == 200
    specs.assert_conforms(put.json(), VMSS, "VirtualMachineScaleSet")


def _poll(wire: Wire, url: str) -> Any:
    import time

    for _ in range(500):
        response = wire.request("GET", url)
        if response.status_code != 202:
            assert response.status_code == 200, response.text
            return response
        time.sleep(0.01)
    raise AssertionError(f"{url} never finished")


def test_error_bodies_conform(twin_factory) -> None:
    wire = Wire(twin_factory("basic"))
    cases = [
        (f"{wire.rg}/providers/Microsoft.ServiceFabric/clusters/nope", API["servicefabric"], SF, "ErrorModel"),
        (f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nope", API["compute"], COMPUTE_COMMON, "CloudError"),
        (f"{wire.rg}/providers/Microsoft.KeyVault/vaults/nope", API["keyvault"], KV_COMMON, "CloudError"),
        (f"{wire.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope", API["msi"], MSI, "CloudError"),
    ]
    for path, api, spec_file, definition in cases:
        response = wire.request("GET", path, api=api)
        assert response.status_code == 404, response.text
        specs.assert_conforms(response.json(), spec_file, definition)
    uri = wire.get_json(f"{wire.rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic", API["keyvault"])["properties"]["vaultUri"]
    missing = wire.request("GET", uri + "certificates/nope/", api=API["kv"], token="kv")
    assert missing.status_code == 404
    specs.assert_conforms(missing.json(), DATA_COMMON, "KeyVaultError")
