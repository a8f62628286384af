"""Issue 10, pure parts: where a VMSS secret goes (Windows: the SF extension's x509StoreName; Linux: no store),
the Linux delivery transform (the goal's latest version added beside the older ones, the SF extension by common
name), and that an all-Linux plan needs no identity."""

from __future__ import annotations

import copy
from typing import Any

from migrate import transforms
from migrate.checks import run_checks
from snapshots import NOW, node_type, plan, world

VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
V1 = "https://kv.vault.azure.net/secrets/cluster-cert/v1"
V2 = "https://kv.vault.azure.net/secrets/cluster-cert/v2"


def scale_set(*, linux: bool, store: str = "My") -> dict[str, Any]:
    os_profile: dict[str, Any] = {"linuxConfiguration": {"disablePasswordAuthentication": True}} if linux else {"windowsConfiguration": {}}
    return {"name": "nt0", "properties": {"virtualMachineProfile": {
        "osProfile": os_profile,
        "extensionProfile": {"extensions": [{"name": "sf", "properties": {
            "type": "ServiceFabricLinuxNode" if linux else "ServiceFabricNode",
            "settings": {"certificate": {"thumbprint": "AA", "x509StoreName": store}}}}]},
    }}}


def secrets(vmss: dict[str, Any]) -> list[dict[str, Any]]:
    return list(vmss["properties"]["virtualMachineProfile"]["osProfile"]["secrets"][0]["vaultCertificates"])


def test_a_windows_secret_goes_to_the_sf_extensions_x509_store_name() -> None:
    after = transforms.stage_goal(scale_set(linux=False, store="TrustedPeople"), vault_id=VAULT, secret_url=V1, primary="AA", secondary=None)
    assert secrets(after) == [{"certificateUrl": V1, "certificateStore": "TrustedPeople"}]


def test_a_linux_secret_has_no_certificate_store() -> None:
    after = transforms.stage_goal(scale_set(linux=True), vault_id=VAULT, secret_url=V1, primary="AA", secondary=None)
    assert secrets(after) == [{"certificateUrl": V1}]


def test_linux_delivery_adds_the_latest_version_beside_the_old_one_and_declares_the_common_name() -> None:
    staged = transforms.stage_goal(scale_set(linux=True), vault_id=VAULT, secret_url=V1, primary="AA", secondary=None)
    after = transforms.deliver_by_secret(staged, vault_id=VAULT, secret_url=V2, common_name="sf.contoso.com")
    assert [s["certificateUrl"] for s in secrets(after)] == [V1, V2]
    settings = after["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"][0]["properties"]["settings"]
    assert settings["certificate"] == {"commonNames": ["sf.contoso.com"], "x509StoreName": "My"}
    again = transforms.deliver_by_secret(copy.deepcopy(after), vault_id=VAULT, secret_url=V2, common_name="sf.contoso.com")
    assert transforms.diff(after, again) == []  # converged: nothing left to do


def test_an_all_linux_plan_needs_no_identity_findings() -> None:
    snapshot = world(node_types=[node_type(os="linux")])
    snapshot.identity = None
    codes = {f.code for f in run_checks(snapshot, plan(), NOW)}
    assert "LINUX_DELIVERY_BY_VMSS_SECRET" in codes
    assert not codes & {"IDENTITY_WILL_BE_CREATED", "VAULT_ACCESS_WILL_BE_GRANTED", "MANAGED_IDENTITY_OPERATOR_NEEDED"}
