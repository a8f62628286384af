"""The pure network rules of the product (migrate/network.py): reading a vault body, and whether a subnet reaches it."""

from __future__ import annotations

from migrate.network import SubnetView, VaultNetworkView, extension_reaches, subnet_ids, vault_network

VNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet-sf"
NT0 = f"{VNET}/subnets/nt0"


def _deny(**kwargs: object) -> VaultNetworkView:
    view = VaultNetworkView(default_action="Deny", ip_rules=["203.0.113.10"])
    for key, value in kwargs.items():
        setattr(view, key, value)
    return view


def test_a_vault_body_without_network_settings_is_open_with_trusted_services() -> None:
    view = vault_network({"properties": {"vaultUri": "https://kv/"}})
    assert view.open and view.trusted_services_pass
    assert extension_reaches(view, NT0) is None


def test_the_vault_body_is_read_with_approved_private_endpoints_only() -> None:
    view = vault_network({"properties": {
        "publicNetworkAccess": "Disabled",
        "networkAcls": {"defaultAction": "Deny", "bypass": "None", "ipRules": [{"value": "1.2.3.4"}], "virtualNetworkRules": [{"id": NT0}]},
        "privateEndpointConnections": [
            {"properties": {"privateEndpoint": {"id": "/pe/ok"}, "privateLinkServiceConnectionState": {"status": "Approved"}}},
            {"properties": {"privateEndpoint": {"id": "/pe/pending"}, "privateLinkServiceConnectionState": {"status": "Pending"}}},
        ],
    }})
    assert (view.public_disabled, view.open, view.trusted_services_pass) == (True, False, False)
    assert view.ip_rules == ["1.2.3.4"] and view.virtual_network_rules == [NT0] and view.private_endpoint_ids == ["/pe/ok"]


def test_deny_without_a_rule_for_the_subnet_refuses_and_says_what_to_add() -> None:
    why = extension_reaches(_deny(), NT0)
    assert why is not None and "virtualNetworkRules" in why and "Microsoft.KeyVault" in why


def test_a_virtual_network_rule_needs_the_subnets_service_endpoint() -> None:
    without = _deny(virtual_network_rules=[NT0], subnets={NT0.lower(): SubnetView(NT0, [])})
    assert "no Microsoft.KeyVault service endpoint" in (extension_reaches(without, NT0) or "")
    unread = _deny(virtual_network_rules=[NT0], subnets={NT0.lower(): SubnetView(NT0, readable=False)})
    assert "could not be read" in (extension_reaches(unread, NT0) or "")
    admitted = _deny(virtual_network_rules=[NT0.upper()], subnets={NT0.lower(): SubnetView(NT0, ["Microsoft.KeyVault"])})
    assert extension_reaches(admitted, NT0) is None


def test_a_private_endpoint_serves_its_own_virtual_network_only() -> None:
    same = _deny(public_network_access="Disabled", private_endpoint_subnets=[f"{VNET}/subnets/endpoints"])
    assert extension_reaches(same, NT0) is None
    other = _deny(public_network_access="Disabled", private_endpoint_subnets=[f"{VNET}-hub/subnets/endpoints"])
    assert "private endpoint" in (extension_reaches(other, NT0) or "")


def test_subnet_ids_come_from_the_scale_sets_ip_configurations() -> None:
    ip = {"properties": {"subnet": {"id": NT0}}}
    raw = {"properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": [
        {"properties": {"ipConfigurations": [ip, ip]}}]}}}}
    assert subnet_ids(raw) == [NT0]
    assert subnet_ids({}) == []
