"""The scenario file's network part: vault firewalls, subnets' service endpoints, private endpoints, the caller's address.

Node types sit in ``vnet-sf/subnets/<node type>`` in their cluster's resource group (the scale set body the
builder writes); a scenario names a subnet by that node type name or by a full subnet id. Checked by
:func:`check_network` (called from scenario_load) and built by :func:`build_network` right after the vaults,
so the rules hold from the first model application on.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Callable, Protocol

from .resources import ResourceId
from .scenario_model import ScenarioSpec

if TYPE_CHECKING:
    from .world import World


class _Placement(Protocol):
    def subscription_id(self, name: str | None) -> str: ...
    def group(self, subscription: str, name: str | None) -> str: ...


def _is_subnet_id(text: str) -> bool:
    parts = [p.lower() for p in text.split("/") if p]
    return len(parts) == 10 and parts[0] == "subscriptions" and parts[6] == "virtualnetworks" and parts[8] == "subnets"


def _node_type_names(spec: ScenarioSpec) -> set[str]:
    return {n.name for c in spec.clusters for n in c.nodeTypes}


def check_network(spec: ScenarioSpec, fail: Callable[[str, str], None]) -> None:
    """Every subnet reference is a node type of a cluster or a subnet id; IP rules parse."""
    names = _node_type_names(spec)

    def subnet(reference: str, where: str) -> None:
        if reference not in names and not _is_subnet_id(reference):
            fail(where, f"'{reference}' is neither a node type name ({', '.join(sorted(names)) or 'none'}) nor a subnet id "
                        "(/subscriptions/.../virtualNetworks/<vnet>/subnets/<name>)")

    for index, item in enumerate(spec.network.subnets):
        subnet(item.name, f"network.subnets[{index}].name")
    for v_index, vault in enumerate(spec.vaults):
        where = f"vaults[{v_index}]"
        if vault.networkAcls:
            for index, rule in enumerate(vault.networkAcls.ipRules):
                try:
                    ipaddress.ip_network(rule, strict=False)
                except ValueError:
                    fail(f"{where}.networkAcls.ipRules[{index}]", f"'{rule}' is not an IPv4 address or CIDR range")
            for index, reference in enumerate(vault.networkAcls.virtualNetworkRules):
                subnet(reference, f"{where}.networkAcls.virtualNetworkRules[{index}]")
        seen: set[str] = set()
        for index, endpoint in enumerate(vault.privateEndpoints):
            subnet(endpoint.subnet, f"{where}.privateEndpoints[{index}].subnet")
            if endpoint.name.lower() in seen:
                fail(f"{where}.privateEndpoints[{index}].name", f"'{endpoint.name}' is listed twice")
            seen.add(endpoint.name.lower())


def subnet_id_of(spec: ScenarioSpec, placement: _Placement, reference: str) -> str:
    """A node type name -> its scale set's subnet id (as the builder writes it); a subnet id -> itself."""
    if _is_subnet_id(reference):
        return reference
    for cluster in spec.clusters:
        if any(n.name == reference for n in cluster.nodeTypes):
            sub = placement.subscription_id(cluster.subscription)
            group = placement.group(sub, cluster.resourceGroup)
            return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/vnet-sf/subnets/{reference}"
    raise KeyError(f"unknown node type '{reference}'")  # check_network has ruled this out


def build_network(spec: ScenarioSpec, world: World, placement: _Placement) -> None:
    """The caller's address, subnets, and each vault's network rules and private endpoints (vaults exist already)."""
    from .providers.keyvault.network import NetworkRules

    world.network.caller_address = spec.network.callerAddress
    for cluster in spec.clusters:  # every node type's subnet exists (no service endpoints unless declared)
        for node_type in cluster.nodeTypes:
            world.network.add_subnet(subnet_id_of(spec, placement, node_type.name))
    for item in spec.network.subnets:
        world.network.add_subnet(subnet_id_of(spec, placement, item.name), item.serviceEndpoints)
    for vault_spec in spec.vaults:
        vault = world.keyvault.named(vault_spec.name)
        acls = vault_spec.networkAcls
        vault.network = NetworkRules(vault_spec.publicNetworkAccess)
        if acls:
            vault.network = NetworkRules(
                vault_spec.publicNetworkAccess, acls.defaultAction, acls.bypass, list(acls.ipRules),
                [subnet_id_of(spec, placement, r) for r in acls.virtualNetworkRules],
            )
        for endpoint in vault_spec.privateEndpoints:
            rid = ResourceId(vault.rid.subscription, vault.rid.resource_group, "Microsoft.Network", "privateEndpoints", endpoint.name)
            world.network.add_private_endpoint(rid, vault.location, subnet_id_of(spec, placement, endpoint.subnet), vault.rid.id, endpoint.status)
