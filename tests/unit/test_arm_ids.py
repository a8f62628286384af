"""ARM ids through one parser (migrate.arm_ids over azure.mgmt.core.tools), on ids as Azure and tools print them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrate import arm_ids
from migrate.vault_access import SECRETS_USER_ROLE, reads_secrets

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "recorded_arm_bodies.json").read_text())
SUB = "7c0e1f0a-5b8d-4d2e-9f3a-2a6b1c4d8e90"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-sf/providers/Microsoft.KeyVault/vaults/kv-sf"


def test_ids_as_azure_returns_them() -> None:
    cluster_id = RECORDED["cluster_created"]["id"]  # SFRP answers with "resourcegroups" in lower case
    assert "/resourcegroups/" in cluster_id
    assert arm_ids.id_parts(cluster_id) == ("00000000-0000-0000-0000-000000000000", "test_cli_mgmt_servicefabric_test_servicefabricbc4212c8", "cluster")
    parsed = arm_ids.parse(RECORDED["vmss_succeeded"]["id"])
    assert (parsed.namespace, parsed.type, parsed.name) == ("Microsoft.Compute", "virtualMachineScaleSets", "virtualmachinescaleset16842a5e")
    assert arm_ids.is_type(RECORDED["vmss_succeeded"]["id"], "microsoft.compute/VIRTUALMACHINESCALESETS")
    assert not arm_ids.is_type(cluster_id, "Microsoft.Compute/virtualMachineScaleSets")


def test_parts_of_resources_children_and_scopes() -> None:
    assert arm_ids.id_parts(VAULT) == (SUB, "rg-sf", "kv-sf")
    assert arm_ids.id_parts(VAULT + "/") == (SUB, "rg-sf", "kv-sf")  # a trailing slash is ignored, as before
    assert arm_ids.subscription_of(f"/subscriptions/{SUB}") == SUB
    assert arm_ids.subscription_of(f"{VAULT}/secrets/goal") == SUB
    assert arm_ids.resource_group_of(VAULT) == "rg-sf"
    child = arm_ids.parse(f"{VAULT}/secrets/goal")
    assert (child.namespace, child.type, child.name) == ("Microsoft.KeyVault", "secrets", "goal")
    assert arm_ids.name_of(f"{VAULT}/secrets/goal") == "goal"


@pytest.mark.parametrize("text", [
    "", "https://kv-sf.vault.azure.net/secrets/goal", f"/subscriptions/{SUB}/resourceGroups/rg-sf",
    f"/subscriptions/{SUB}/resourceGroups/rg-sf/providers/Microsoft.KeyVault/vaults",
])
def test_what_is_not_a_resource_id_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        arm_ids.id_parts(text)


def test_role_definitions_at_every_scope() -> None:
    built = arm_ids.role_definition_id(SUB, SECRETS_USER_ROLE)
    assert built == f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER_ROLE}"
    assert arm_ids.parse(built).name == SECRETS_USER_ROLE
    tenant_level = f"/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER_ROLE.upper()}"  # not an id parse_resource_id reads
    for form in (built, tenant_level, SECRETS_USER_ROLE, built + "/"):
        assert arm_ids.role_guid(form) == SECRETS_USER_ROLE


def test_scope_comparison_stays_case_insensitive_and_by_segment() -> None:
    assert arm_ids.scope_covers(f"/subscriptions/{SUB}/resourcegroups/RG-SF", VAULT)
    assert arm_ids.scope_covers(VAULT.upper(), VAULT)
    assert not arm_ids.scope_covers(f"{VAULT}/secrets/goal", VAULT)  # one secret below the vault does not cover it
    assert not arm_ids.scope_covers(f"/subscriptions/{SUB}/resourceGroups/rg-s", VAULT)  # not a string prefix
    principal = "3b9d6a52-8f1e-4c7a-b0d4-5e2f9a1c6b73"
    assignment = (f"/subscriptions/{SUB}", f"/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER_ROLE}", principal)
    assert reads_secrets(rbac=True, vault_id=VAULT, principal_id=principal.upper(), access_policies=[], assignments=[assignment])
