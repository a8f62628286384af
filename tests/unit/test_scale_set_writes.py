"""How a scale-set step's change becomes writes (migrate.scale_set_writes): never a full PUT (a GET never returns
protectedSettings, so it would drop them), one write per changed subtree, in a safe order."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from migrate import transforms
from migrate.scale_set_writes import SCALE_SET, scale_set_writes, settings_patch, write_targets
from migrate.spec import KeyVaultExtensionSpec
from migrate.transforms import diff

VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reader"
OLD_URL = "https://kv.vault.azure.net/secrets/old/1"
GOAL_URL = "https://kv.vault.azure.net/secrets/goal/2"


def scale_set() -> dict[str, Any]:
    """As a GET returns it: the SF extension without its protectedSettings."""
    return {
        "name": "nt0", "etag": '"1"', "location": "westeurope",
        "properties": {"upgradePolicy": {"mode": "Manual"}, "virtualMachineProfile": {
            "osProfile": {"secrets": [{"sourceVault": {"id": VAULT}, "vaultCertificates": [{"certificateUrl": OLD_URL, "certificateStore": "My"}]}],
                          "windowsConfiguration": {}},
            "extensionProfile": {"extensions": [{"name": "nt0_ServiceFabricNode", "properties": {
                "publisher": "Microsoft.Azure.ServiceFabric", "type": "ServiceFabricNode", "typeHandlerVersion": "1.1",
                "settings": {"clusterEndpoint": "https://x", "nodeTypeRef": "nt0",
                             "certificate": {"thumbprint": "AA", "x509StoreName": "My"},
                             "certificateSecondary": {"thumbprint": "BB", "x509StoreName": "My"}}}}]},
        }},
    }


def writes(before: dict[str, Any], after: dict[str, Any]) -> list[Any]:
    return scale_set_writes(before, after, diff(before, after))


def test_stage_goal_patches_the_secrets_first_then_the_sf_extension_settings() -> None:
    before = scale_set()
    after = transforms.stage_goal(before, vault_id=VAULT, secret_url=GOAL_URL, primary="AA", secondary="CC")
    first, second = writes(before, after)
    assert first.route == "scale-set-patch" and set(first.body) == {"properties"}
    assert [c["certificateUrl"] for c in first.body["properties"]["virtualMachineProfile"]["osProfile"]["secrets"][0]["vaultCertificates"]] == [OLD_URL, GOAL_URL]
    assert second.route == "extension-patch" and second.extension == "nt0_ServiceFabricNode"
    assert list(second.body["properties"]) == ["settings"]  # protectedSettings never named: kept
    assert second.body["properties"]["settings"]["certificateSecondary"]["thumbprint"] == "CC"
    assert second.body["properties"]["settings"]["clusterEndpoint"] == "https://x"  # settings whole


def test_a_removed_setting_is_sent_as_null_so_a_merge_patch_removes_it() -> None:
    before = scale_set()
    after = transforms.stage_goal(before, vault_id=VAULT, secret_url=OLD_URL, primary="AA", secondary=None)
    [only] = writes(before, after)
    assert only.route == "extension-patch" and only.body["properties"]["settings"]["certificateSecondary"] is None


def test_settings_patch_tombstones_nested_keys() -> None:
    patch = settings_patch({"certificate": {"thumbprint": "AA", "x509StoreName": "My"}, "keep": 1},
                           {"certificate": {"commonNames": ["cn"], "x509StoreName": "My"}, "keep": 1})
    assert patch == {"certificate": {"commonNames": ["cn"], "x509StoreName": "My", "thumbprint": None}, "keep": 1}


def test_swap_to_kv_extension_patches_identity_first_then_puts_the_kv_extension_then_patches_sf() -> None:
    before = scale_set()
    after = transforms.swap_to_kv_extension(before, identity_id=IDENTITY, client_id="cid", observed_url="https://kv.vault.azure.net/secrets/goal",
                                            common_name="sf.contoso.com", kv=KeyVaultExtensionSpec(), keep_goal_secret=True)
    routes = [(w.route, w.extension) for w in writes(before, after)]
    assert routes == [("scale-set-patch", None), ("extension-put", "KVVMExtension"), ("extension-patch", "nt0_ServiceFabricNode")]
    identity_patch, kv, sf = writes(before, after)
    assert identity_patch.body == {"identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}}
    assert kv.body["properties"]["settings"]["authenticationSettings"]["msiClientId"] == "cid"
    assert "protectedSettings" not in sf.body["properties"]
    assert sf.body["properties"]["provisionAfterExtensions"] == ["KVVMExtension"]
    assert sf.body["properties"]["settings"]["certificate"]["thumbprint"] is None


def test_removing_secrets_only_is_one_scale_set_patch_and_comes_last() -> None:
    before = scale_set()
    after = transforms.remove_secrets(before, [OLD_URL])
    [only] = writes(before, after)
    assert only.route == "scale-set-patch" and only.body == {"properties": {"virtualMachineProfile": {"osProfile": {"secrets": []}}}}


def test_the_plan_counts_one_write_per_subtree_and_nothing_for_the_rollout_line() -> None:
    before = scale_set()
    after = transforms.stage_goal(before, vault_id=VAULT, secret_url=GOAL_URL, primary="AA", secondary="CC")
    changes = diff(before, after)
    from migrate.plan import Change

    targets = write_targets([*changes, Change("instances.latestModelApplied", "0/5", "5/5")])
    assert targets == [SCALE_SET, "extension:nt0_ServiceFabricNode"]
    assert write_targets(diff(before, copy.deepcopy(before))) == []


def test_a_change_outside_the_written_subtrees_is_refused() -> None:
    before = scale_set()
    after = copy.deepcopy(before)
    after["sku"] = {"capacity": 9}
    with pytest.raises(ValueError, match="no write route"):
        writes(before, after)
