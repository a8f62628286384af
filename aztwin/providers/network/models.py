"""Microsoft.Network, as far as Key Vault's firewall needs it: where a data-plane call comes from.

The twin serves subnets (with their service endpoints) and private endpoints read-only; the network rules
themselves live in the vault model (``KeyVaultState.network_refusal``). Virtual networks are not modelled
beyond the subnet ids scale sets name: a subnet's virtual network is its id's parent, and peering and private
DNS zones are not modelled (pessimistic: a private endpoint serves only its own virtual network).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...resources import ResourceId, resource_not_found

if TYPE_CHECKING:
    from ...world import World

DEFAULT_CALLER_ADDRESS = "203.0.113.10"  # the operator's and pipelines' public address (TEST-NET-3)
KEYVAULT_SERVICE = "Microsoft.KeyVault"
# The trusted service that fetches VMSS secrets (osProfile.secrets) for the Compute resource provider.
VM_DEPLOYMENT_SERVICE = "Azure Virtual Machines deployment service"


@dataclass(frozen=True)
class Origin:
    """Where a Key Vault data-plane call comes from: a public address, a subnet, or a trusted service."""

    address: str | None = None
    subnet_id: str | None = None
    trusted_service: str | None = None

    def describe(self) -> str:
        if self.trusted_service:
            return f"trusted service '{self.trusted_service}'"
        if self.subnet_id:
            return f"subnet {self.subnet_id}"
        return f"address {self.address}"


def virtual_network_of(subnet_id: str) -> str:
    """``.../virtualNetworks/{vnet}/subnets/{name}`` -> ``.../virtualNetworks/{vnet}`` (lower case)."""
    lowered = subnet_id.lower()
    marker = lowered.rfind("/subnets/")
    return lowered[:marker] if marker >= 0 else lowered


def subnet_name_parts(subnet_id: str) -> tuple[ResourceId, str]:
    """The virtual network's id and the subnet's name (404-style error for anything else)."""
    vnet_id, _, name = subnet_id.rstrip("/").rpartition("/subnets/")
    return ResourceId.parse(vnet_id), name


@dataclass
class Subnet:
    id: str
    service_endpoints: list[str] = field(default_factory=list)
    address_prefix: str = "10.0.0.0/24"

    def has_service_endpoint(self, service: str) -> bool:
        return any(s.lower() == service.lower() for s in self.service_endpoints)

    def body(self) -> dict[str, Any]:
        _, name = subnet_name_parts(self.id)
        return {
            "id": self.id,
            "name": name,
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": {
                "addressPrefix": self.address_prefix,
                "serviceEndpoints": [{"service": s, "locations": ["*"], "provisioningState": "Succeeded"} for s in self.service_endpoints],
                "privateEndpointNetworkPolicies": "Disabled",
                "provisioningState": "Succeeded",
            },
        }


@dataclass
class PrivateEndpoint:
    rid: ResourceId
    location: str
    subnet_id: str
    vault_id: str  # the private link resource (Microsoft.KeyVault/vaults), group 'vault'
    status: str = "Approved"  # the connection's state on the vault: Approved | Pending | Rejected | Disconnected

    @property
    def connection_id(self) -> str:
        return f"{self.vault_id}/privateEndpointConnections/{self.rid.name}"

    def body(self) -> dict[str, Any]:
        return {
            "id": self.rid.id,
            "name": self.rid.name,
            "type": "Microsoft.Network/privateEndpoints",
            "location": self.location,
            "properties": {
                "subnet": {"id": self.subnet_id},
                "privateLinkServiceConnections": [
                    {
                        "name": self.rid.name,
                        "properties": {
                            "privateLinkServiceId": self.vault_id,
                            "groupIds": ["vault"],
                            "privateLinkServiceConnectionState": {"status": self.status, "description": "", "actionsRequired": "None"},
                        },
                    }
                ],
                "provisioningState": "Succeeded",
            },
        }

    def connection_body(self) -> dict[str, Any]:
        """As the vault lists it in ``properties.privateEndpointConnections`` (keyvault.json PrivateEndpointConnectionItem)."""
        return {
            "id": self.connection_id,
            "properties": {
                "privateEndpoint": {"id": self.rid.id},
                "privateLinkServiceConnectionState": {"status": self.status, "description": "", "actionsRequired": "None"},
                "provisioningState": "Succeeded",
            },
        }


class NetworkState:
    def __init__(self, world: World) -> None:
        self.world = world
        self.caller_address = DEFAULT_CALLER_ADDRESS
        self.subnets: dict[str, Subnet] = {}  # key: lower-cased subnet id
        self.private_endpoints: dict[str, PrivateEndpoint] = {}  # key: lower-cased resource id

    def add_subnet(self, subnet_id: str, service_endpoints: list[str] | None = None) -> Subnet:
        subnet = self.subnets.get(subnet_id.lower())
        if subnet is None:
            subnet = self.subnets[subnet_id.lower()] = Subnet(subnet_id)
        if service_endpoints is not None:
            subnet.service_endpoints = list(service_endpoints)
        return subnet

    def subnet(self, subnet_id: str) -> Subnet:
        """A declared subnet, or one a scale set's network profile names (served with no service endpoints)."""
        found = self.subnets.get(subnet_id.lower())
        if found is not None:
            return found
        if any(subnet_id.lower() in (s.lower() for s in scale_set_subnets(ss.profile)) for ss in self.world.compute.all()):
            return Subnet(subnet_id)
        vnet, _ = subnet_name_parts(subnet_id)
        raise resource_not_found("Microsoft.Network/virtualNetworks", vnet.id)  # the twin knows no other subnets

    def add_private_endpoint(self, rid: ResourceId, location: str, subnet_id: str, vault_id: str, status: str = "Approved") -> PrivateEndpoint:
        self.add_subnet(subnet_id)
        endpoint = PrivateEndpoint(rid, location, subnet_id, vault_id, status)
        self.private_endpoints[rid.key] = endpoint
        return endpoint

    def private_endpoint(self, resource_id: str) -> PrivateEndpoint:
        found = self.private_endpoints.get(resource_id.lower())
        if found is None:
            raise resource_not_found("Microsoft.Network/privateEndpoints", resource_id)
        return found

    def endpoints_of(self, vault_id: str) -> list[PrivateEndpoint]:
        return [e for e in self.private_endpoints.values() if e.vault_id.lower() == vault_id.lower()]

    def snapshot(self) -> dict[str, Any]:
        return {
            "callerAddress": self.caller_address,
            "subnets": [{"id": s.id, "serviceEndpoints": s.service_endpoints} for s in self.subnets.values()],
            "privateEndpoints": [{"id": e.rid.id, "subnet": e.subnet_id, "vault": e.vault_id, "status": e.status}
                                 for e in self.private_endpoints.values()],
        }


def scale_set_subnets(profile: dict[str, Any]) -> list[str]:
    """The subnet ids of a VM profile's IP configurations (``networkProfile.networkInterfaceConfigurations``)."""
    out: list[str] = []
    for nic in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ip in (nic.get("properties") or {}).get("ipConfigurations") or []:
            subnet = ((ip.get("properties") or {}).get("subnet") or {}).get("id")
            if isinstance(subnet, str) and subnet and subnet not in out:
                out.append(subnet)
    return out
