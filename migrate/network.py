"""Who can reach the goal's vault over the network (pure): the vault's rules, the node types' subnets.

Key Vault's firewall applies to the data plane only
(https://learn.microsoft.com/azure/key-vault/general/overview-vnet-service-endpoints). Two fetches matter to a
migration: the Key Vault VM extension on each Windows node fetches from the VM's own network (its scale set's
subnet), and Compute fetches VMSS secrets (``osProfile.secrets``) as the trusted "Azure Virtual Machines
deployment service", which passes the firewall only with ``networkAcls.bypass: AzureServices``
(https://learn.microsoft.com/azure/key-vault/general/network-security). Discovery fills these views; the check
is :func:`migrate.checks.network.check_vault_network`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

KEYVAULT_SERVICE_ENDPOINT = "Microsoft.KeyVault"
NETWORK_API_VERSION = "2023-09-01"  # Microsoft.Network, for the generic GETs of subnets and private endpoints


@dataclass
class SubnetView:
    id: str
    service_endpoints: list[str] = field(default_factory=list)
    readable: bool = True  # False: discovery could not read it (its service endpoints are unknown)

    @property
    def keyvault_endpoint(self) -> bool:
        return any(s.lower() == KEYVAULT_SERVICE_ENDPOINT.lower() for s in self.service_endpoints)


@dataclass
class VaultNetworkView:
    """``publicNetworkAccess``, ``networkAcls`` and the approved private endpoints' subnets of the goal's vault."""

    public_network_access: str = "Enabled"
    default_action: str = "Allow"
    bypass: str = "AzureServices"
    ip_rules: list[str] = field(default_factory=list)
    virtual_network_rules: list[str] = field(default_factory=list)  # subnet ids
    private_endpoint_ids: list[str] = field(default_factory=list)  # approved connections only
    private_endpoint_subnets: list[str] = field(default_factory=list)  # the subnets of those endpoints (discovery reads them)
    subnets: dict[str, SubnetView] = field(default_factory=dict)  # lower-cased id -> the node types' subnets, as read

    @property
    def public_disabled(self) -> bool:
        return self.public_network_access.lower() == "disabled"

    @property
    def open(self) -> bool:
        """Every network reaches the data plane: nothing for the migration to check."""
        return not self.public_disabled and self.default_action.lower() != "deny"

    @property
    def trusted_services_pass(self) -> bool:
        return self.bypass.lower() == "azureservices"


def vault_network(raw_vault: Mapping[str, Any]) -> VaultNetworkView:
    """Read the network part of a vault's ARM body (keyvault.json: NetworkRuleSet, PrivateEndpointConnectionItem)."""
    properties = raw_vault.get("properties") or {}
    acls = properties.get("networkAcls") or {}
    approved = [
        str((c.get("properties") or {}).get("privateEndpoint", {}).get("id") or "")
        for c in properties.get("privateEndpointConnections") or []
        if str(((c.get("properties") or {}).get("privateLinkServiceConnectionState") or {}).get("status") or "").lower() == "approved"
    ]
    return VaultNetworkView(
        public_network_access=str(properties.get("publicNetworkAccess") or "Enabled"),
        default_action=str(acls.get("defaultAction") or "Allow"),
        bypass=str(acls.get("bypass") or "AzureServices"),  # "If not specified the default is 'AzureServices'"
        ip_rules=[str(r.get("value")) for r in acls.get("ipRules") or [] if r.get("value")],
        virtual_network_rules=[str(r.get("id")) for r in acls.get("virtualNetworkRules") or [] if r.get("id")],
        private_endpoint_ids=[a for a in approved if a],
    )


def subnet_ids(raw_scale_set: Mapping[str, Any]) -> list[str]:
    """The subnets of a scale set's NIC IP configurations (``virtualMachineProfile.networkProfile``)."""
    profile = (raw_scale_set.get("properties") or {}).get("virtualMachineProfile") or {}
    out: list[str] = []
    for nic in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ip in (nic.get("properties") or {}).get("ipConfigurations") or []:
            subnet = ((ip.get("properties") or {}).get("subnet") or {}).get("id")
            if isinstance(subnet, str) and subnet and subnet.lower() not in (s.lower() for s in out):
                out.append(subnet)
    return out


def subnet_view(raw: Mapping[str, Any], subnet_id: str) -> SubnetView:
    endpoints = [str(e.get("service")) for e in (raw.get("properties") or {}).get("serviceEndpoints") or [] if e.get("service")]
    return SubnetView(str(raw.get("id") or subnet_id), endpoints)


def virtual_network_of(subnet_id: str) -> str:
    lowered = subnet_id.lower()
    return lowered[: lowered.rfind("/subnets/")] if "/subnets/" in lowered else lowered


def extension_reaches(network: VaultNetworkView, subnet_id: str) -> str | None:
    """None when a node in ``subnet_id`` reaches the vault; else why not (what to add), in one sentence.

    A private endpoint serves its own virtual network only (peering and private DNS zones are not assumed).
    A virtual network rule admits the subnet only through its Microsoft.KeyVault service endpoint; IP rules
    never count for nodes (their outbound public address is not known here)."""
    vnet = virtual_network_of(subnet_id)
    if any(virtual_network_of(s) == vnet for s in network.private_endpoint_subnets):
        return None
    if network.public_disabled:
        return (f"public network access is disabled and no approved private endpoint of the vault is in the virtual "
                f"network {vnet.rsplit('/', 1)[-1]}: add a private endpoint to the vault in that virtual network "
                "(with its privatelink.vaultcore.azure.net DNS zone linked to it)")
    if network.default_action.lower() != "deny":
        return None
    ruled = subnet_id.lower() in (r.lower() for r in network.virtual_network_rules)
    subnet = network.subnets.get(subnet_id.lower())
    if ruled and subnet is not None and subnet.keyvault_endpoint:
        return None
    if ruled and (subnet is None or not subnet.readable):
        return ("the subnet is in networkAcls.virtualNetworkRules but its service endpoints could not be read: "
                "grant the credential Reader on the virtual network, and make sure the subnet has the "
                "Microsoft.KeyVault service endpoint")
    if ruled:
        return "the subnet is in networkAcls.virtualNetworkRules but has no Microsoft.KeyVault service endpoint: enable it on the subnet"
    return ("the vault's firewall (defaultAction Deny) has no rule for the subnet: enable the Microsoft.KeyVault service "
            "endpoint on the subnet and add it to the vault's networkAcls.virtualNetworkRules, or add a private endpoint "
            "in its virtual network")
