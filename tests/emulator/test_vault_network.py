"""Vault network rules (docs/twin.md, "Vault network rules"): each rule broken by hand through the SDK fails the
operation naming the firewall, and each documented way through it works.

The Key Vault VM extension fetches from its scale set's subnet; CRP fetches VMSS secrets as the trusted "Azure
Virtual Machines deployment service"; the operator's data-plane calls come from the scenario's callerAddress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import HttpResponseError

from aztwin import builtin_path
from sfsteps import RG, Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"
SUB = "6f1c6c3e-2b8a-4c55-9d8e-0a1b2c3d4e5f"
VNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks"


def _instances(twin: Any) -> list[dict[str, Any]]:
    return [i for s in world_json(twin)["scale_sets"] for i in s["instances"]]


def _kv_messages(twin: Any) -> list[str]:
    return [i["extensions"]["KVVMExtension"]["message"] for i in _instances(twin) if "KVVMExtension" in i["extensions"]]


def vault_thumbprint(twin: Any, name: str) -> str:
    """The latest version's thumbprint, from the world (the operator cannot read the data plane here)."""
    vault = world_json(twin)["vaults"][0]
    return str(next(c for c in vault["certificates"] if c["name"] == name)["versions"][-1]["thumbprint"])


def _patch_network(step: Step, **acls: Any) -> Any:
    from azure.mgmt.keyvault.models import IPRule, NetworkRuleSet, VaultPatchParameters, VaultPatchProperties

    rules = NetworkRuleSet(
        bypass=acls.get("bypass", "AzureServices"), default_action=acls.get("default_action", "Deny"),
        ip_rules=[IPRule(value=v) for v in acls.get("ip_rules", ["203.0.113.10"])],
    )
    properties = VaultPatchProperties(network_acls=rules, public_network_access=acls.get("public", None))
    return step.c.keyvault.vaults.update(RG, step.vault_name, VaultPatchParameters(properties=properties))


def _scenario_file(tmp_path: Path, **vault_extra: Any) -> Path:
    """vault-firewall with a fixed subscription id (to name subnets) and extra vault settings."""
    data = yaml.safe_load(builtin_path("vault-firewall").read_text(encoding="utf-8"))
    data["name"] = "vault-firewall-variant"
    data["subscriptions"] = [{"id": SUB, "name": "Production", "resourceGroups": [{"name": RG}]}]
    data["vaults"][0].update(vault_extra)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_key_vault_extension_behind_the_firewall_fails_naming_it(twin_factory: Any) -> None:
    """defaultAction Deny, the node subnet not admitted: the hand-made extension rollout fails, nothing installs."""
    twin = twin_factory("vault-firewall")
    step = Step(Clients(twin), "kv-sf-firewall")
    identity = step.create_identity()
    step.grant_secrets(identity)
    with pytest.raises(HttpResponseError) as caught:
        step.install_kv_extension(identity, ["cluster-cert"], CN)
    assert "ForbiddenByFirewall" in str(caught.value) and "vnet-sf/subnets/nt0" in str(caught.value)
    messages = _kv_messages(twin)
    assert messages and all("Client address is not authorized" in m and "ForbiddenByFirewall" in m for m in messages)
    goal = step.thumbprint("cluster-cert")
    assert not any(c["thumbprint"] == goal for i in _instances(twin) for c in i["certificates"])


def test_a_virtual_network_rule_for_the_node_subnet_admits_the_extension(twin_factory: Any) -> None:
    from azure.core.rest import HttpRequest

    twin = twin_factory("vault-firewall-subnet")
    clients = Clients(twin)
    step = Step(clients, "kv-sf-fw-subnet")
    [rule] = step.vault().properties.network_acls.virtual_network_rules
    subnet = clients.compute.send_request(HttpRequest("GET", f"{rule.id}?api-version=2023-09-01")).json()
    assert [e["service"] for e in subnet["properties"]["serviceEndpoints"]] == ["Microsoft.KeyVault"]
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.add_secret("cluster-cert")  # the goal by thumbprint first (VMSS secret: the trusted service)
    step.patch_thumbprints(step.thumbprint("cluster-old"), step.thumbprint("cluster-cert"))
    step.install_kv_extension(identity, ["cluster-cert"], CN, remove_secrets=False)
    messages = _kv_messages(twin)
    assert messages and all(m == "Certificates are up to date." for m in messages)  # the extension fetched the goal
    assert world_json(twin)["cluster"]["health"] == "Healthy"


def test_a_virtual_network_rule_without_the_service_endpoint_admits_nothing(twin_factory: Any, tmp_path: Path) -> None:
    """The rule names nt0's subnet, but the subnet has no Microsoft.KeyVault service endpoint."""
    twin = twin_factory(None, scenario_file=_scenario_file(
        tmp_path, networkAcls={"defaultAction": "Deny", "bypass": "AzureServices", "ipRules": ["203.0.113.10"], "virtualNetworkRules": ["nt0"]}))
    step = Step(Clients(twin), "kv-sf-firewall")
    identity = step.create_identity()
    step.grant_secrets(identity)
    with pytest.raises(HttpResponseError) as caught:
        step.install_kv_extension(identity, ["cluster-cert"], CN)
    assert "ForbiddenByFirewall" in str(caught.value)


@pytest.mark.parametrize(("subnet", "reaches"), [
    (f"{VNET}/vnet-sf/subnets/endpoints", True),  # the nodes' virtual network
    (f"{VNET}/vnet-hub/subnets/endpoints", False),  # another one: peering and DNS zones are not modelled
])
def test_a_private_endpoint_serves_nodes_of_its_own_virtual_network(twin_factory: Any, tmp_path: Path, subnet: str, reaches: bool) -> None:
    """publicNetworkAccess Disabled: only the private endpoint (or a trusted service) reaches the vault."""
    twin = twin_factory(None, scenario_file=_scenario_file(
        tmp_path, publicNetworkAccess="Disabled", privateEndpoints=[{"name": "pe-kv", "subnet": subnet}]))
    clients = Clients(twin)
    step = Step(clients, "kv-sf-firewall")
    vault = step.vault()
    assert vault.properties.public_network_access == "Disabled"
    # The scenario's VMSS secret still installed at start: a trusted service passes with public access disabled.
    assert all(any(c["source"] == "vmss-secret" for c in i["certificates"]) for i in _instances(twin))
    [connection] = vault.properties.private_endpoint_connections
    assert connection.private_endpoint.id.endswith("/privateEndpoints/pe-kv")
    from azure.core.rest import HttpRequest  # a generic ARM GET of the private endpoint (no Microsoft.Network SDK)

    body = clients.keyvault.send_request(HttpRequest("GET", f"{connection.private_endpoint.id}?api-version=2023-09-01")).json()
    assert body["properties"]["subnet"]["id"] == subnet
    with pytest.raises(HttpResponseError) as refused:  # the operator is outside: ForbiddenByConnection
        step.certificate("cluster-cert")
    assert refused.value.status_code == 403 and "ForbiddenByConnection" in str(refused.value)
    identity = step.create_identity()
    step.grant_secrets(identity)
    uri = vault.properties.vault_uri
    twin_step = _ExtensionOnly(step, uri)
    if reaches:
        twin_step.install(identity)
        goal = vault_thumbprint(twin, "cluster-cert")
        assert all(any(c["thumbprint"] == goal and c["source"] == "kv-extension" for c in i["certificates"]) for i in _instances(twin))
        assert all(m == "Certificates are up to date." for m in _kv_messages(twin))
    else:
        with pytest.raises(HttpResponseError) as caught:
            twin_step.install(identity)
        assert "ForbiddenByConnection" in str(caught.value)


class _ExtensionOnly:
    """The Key Vault extension alone (no SF change): what a node can fetch, whatever the cluster declares."""

    def __init__(self, step: Step, vault_uri: str) -> None:
        self.step, self.uri = step, vault_uri

    def install(self, identity: Any) -> None:
        from azure.mgmt.compute.models import (
            UserAssignedIdentitiesValue, VirtualMachineScaleSetExtension, VirtualMachineScaleSetExtensionProperties,
            VirtualMachineScaleSetIdentity,
        )

        scale_set = self.step.compute.virtual_machine_scale_sets.get(RG, "nt0")
        scale_set.identity = VirtualMachineScaleSetIdentity(type="UserAssigned", user_assigned_identities={identity.id: UserAssignedIdentitiesValue()})
        settings = {
            "secretsManagementSettings": {
                "pollingIntervalInS": "3600", "requireInitialSync": True,
                "observedCertificates": [{"url": f"{self.uri}secrets/cluster-cert", "certificateStoreName": "MY", "certificateStoreLocation": "LocalMachine"}],
            },
            "authenticationSettings": {"msiClientId": identity.client_id},
        }
        extension = VirtualMachineScaleSetExtension(name="KVVMExtension", properties=VirtualMachineScaleSetExtensionProperties(
            publisher="Microsoft.Azure.KeyVault", type="KeyVaultForWindows", type_handler_version="3.0", auto_upgrade_minor_version=True,
            settings=settings))
        scale_set.properties.virtual_machine_profile.extension_profile.extensions.append(extension)
        self.step._put_vmss("nt0", scale_set)


def test_vmss_secrets_pass_as_a_trusted_service_only_with_bypass_azure_services(twin_factory: Any) -> None:
    twin = twin_factory("vault-firewall")
    step = Step(Clients(twin), "kv-sf-firewall")
    step.add_secret("cluster-cert")  # bypass AzureServices: CRP is the trusted "Azure Virtual Machines deployment service"
    goal = step.thumbprint("cluster-cert")
    assert all(any(c["thumbprint"] == goal and c["source"] == "vmss-secret" for c in i["certificates"]) for i in _instances(twin))
    old = step.thumbprint("cluster-old")
    after = _patch_network(step, bypass="None")
    assert after.properties.network_acls.bypass == "None"
    with pytest.raises(HttpResponseError) as caught:  # the next model application fetches every VMSS secret again
        step.sf_extension_thumbprints(old, goal)
    assert "ForbiddenByFirewall" in str(caught.value) and "Azure Virtual Machines deployment service" in str(caught.value)


def test_the_operators_data_plane_reads_need_its_address_in_the_ip_rules(twin_factory: Any) -> None:
    """ARM is never behind the vault firewall; the data plane is, for the operator's address too."""
    twin = twin_factory("vault-firewall")
    step = Step(Clients(twin), "kv-sf-firewall")
    assert step.certificate("cluster-cert").name == "cluster-cert"  # 203.0.113.10 is in ipRules
    after = _patch_network(step, ip_rules=["198.51.100.0/24"])
    assert [r.value for r in after.properties.network_acls.ip_rules] == ["198.51.100.0/24"]
    assert step.vault().properties.network_acls.default_action == "Deny"  # ARM reads still work
    with pytest.raises(HttpResponseError) as caught:
        step.certificate("cluster-cert")
    assert caught.value.status_code == 403
    assert "ForbiddenByFirewall" in str(caught.value) and "Client address: 203.0.113.10" in str(caught.value)
    _patch_network(step, default_action="Allow", ip_rules=[])
    assert step.certificate("cluster-cert").name == "cluster-cert"
