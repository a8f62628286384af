"""Key Vault's network rules (firewall, virtual network rules, private endpoints, trusted services).

They apply to the data plane only ("Key Vault firewalls and virtual network rules only apply to the data plane
of Key Vault", overview-vnet-service-endpoints); ARM reads and writes of the vault are never refused by them.
The order follows the 403s Key Vault answers: a trusted service with ``bypass: AzureServices`` passes; an
approved private endpoint in the caller's virtual network passes; with ``publicNetworkAccess: Disabled``
everything else is ``ForbiddenByConnection``; with ``defaultAction: Deny`` a caller passes only through a
virtual network rule (its subnet with the Microsoft.KeyVault service endpoint) or an IP rule, else
``ForbiddenByFirewall``. Cited in docs/twin.md, "Vault network rules".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...wire import TwinError
from ..network.models import KEYVAULT_SERVICE, VM_DEPLOYMENT_SERVICE, Origin, virtual_network_of

if TYPE_CHECKING:
    from ...world import World
    from .models import Vault

FIREWALL = "ForbiddenByFirewall"
CONNECTION = "ForbiddenByConnection"
# The trusted services the twin knows (the documented list is longer; only this one touches a migration).
TRUSTED_SERVICES = (VM_DEPLOYMENT_SERVICE,)


@dataclass
class NetworkRules:
    """A vault's ``publicNetworkAccess`` and ``networkAcls`` (keyvault.json NetworkRuleSet)."""

    public_network_access: str = "Enabled"  # Enabled | Disabled
    default_action: str = "Allow"  # Allow | Deny
    bypass: str = "AzureServices"  # AzureServices | None ("If not specified the default is 'AzureServices'")
    ip_rules: list[str] = field(default_factory=list)  # addresses or CIDR ranges
    virtual_network_rules: list[str] = field(default_factory=list)  # subnet ids

    def acls_body(self) -> dict[str, Any]:
        return {
            "bypass": self.bypass,
            "defaultAction": self.default_action,
            "ipRules": [{"value": v} for v in self.ip_rules],
            "virtualNetworkRules": [{"id": s, "ignoreMissingVnetServiceEndpoint": False} for s in self.virtual_network_rules],
        }

    def public(self) -> dict[str, Any]:
        return {"publicNetworkAccess": self.public_network_access, **self.acls_body()}


class NetworkRefused(TwinError):
    """Key Vault's 403 for a caller its network rules refuse: code Forbidden with an inner error code."""

    def __init__(self, inner: str, message: str) -> None:
        super().__init__(403, "Forbidden", message)
        self.inner = inner

    def body(self, style: str) -> dict[str, Any]:
        body = super().body(style)
        body["error"]["innererror"] = {"code": self.inner}
        return body


def _address_allowed(address: str, rules: list[str]) -> bool:
    try:
        caller = ipaddress.ip_address(address)
    except ValueError:
        return False
    for rule in rules:
        try:
            if caller in ipaddress.ip_network(rule, strict=False):
                return True
        except ValueError:
            continue
    return False


_HEADLINES = {
    FIREWALL: "Client address is not authorized and caller is not a trusted service.",
    CONNECTION: "Public network access is disabled and request is not from a trusted service nor via an approved private link.",
}


def refusal(world: World, vault: Vault, origin: Origin) -> str | None:
    """The inner error code (ForbiddenByFirewall | ForbiddenByConnection) when ``vault``'s network rules refuse a
    call from ``origin``; None when they admit it."""
    rules = vault.network
    if origin.trusted_service in TRUSTED_SERVICES and rules.bypass.lower() == "azureservices":
        return None
    if origin.subnet_id:
        network = virtual_network_of(origin.subnet_id)
        # Pessimistic (undocumented for us): peering and private DNS zones are not modelled, so a private
        # endpoint serves callers in its own virtual network only.
        if any(e.status == "Approved" and virtual_network_of(e.subnet_id) == network for e in world.network.endpoints_of(vault.rid.id)):
            return None
    if rules.public_network_access.lower() == "disabled":
        return CONNECTION
    if rules.default_action.lower() == "allow":
        return None
    if origin.subnet_id:
        # A virtual network rule admits traffic that arrives through the subnet's Microsoft.KeyVault service
        # endpoint; without it the node's traffic leaves by a public address the twin does not know, which no
        # IP rule matches (pessimistic: undocumented).
        subnet = world.network.subnets.get(origin.subnet_id.lower())
        endpoint = subnet is not None and subnet.has_service_endpoint(KEYVAULT_SERVICE)
        if endpoint and origin.subnet_id.lower() in (s.lower() for s in rules.virtual_network_rules):
            return None
    elif origin.address and _address_allowed(origin.address, rules.ip_rules):
        return None
    return FIREWALL


def refusal_message(vault: Vault, origin: Origin, inner: str, caller: str | None = None) -> str:
    """Key Vault's words (CR/LF-separated lines in Azure, one line here), naming the inner error code."""
    client = f"Client address: {origin.address}" if origin.address else f"Caller origin: {origin.describe()}"
    who = f" Caller: {caller}." if caller else ""
    return f"{_HEADLINES[inner]} {client}.{who} Vault: {vault.name};location={vault.location} ({inner})"


def admit(world: World, vault: Vault, origin: Origin, caller: str) -> None:
    """Raise Key Vault's 403 when the network rules refuse ``origin`` (``caller``: appid=...;oid=...)."""
    inner = refusal(world, vault, origin)
    if inner is not None:
        raise NetworkRefused(inner, refusal_message(vault, origin, inner, caller))
