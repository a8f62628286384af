"""Permission propagation (docs/twin.md, "Permission propagation and identities"): a grant made through the API
shows in ARM at once but is honoured by the vault's data plane only after a delay; the Key Vault extension's
initial sync retries 25 times with back-off, then fails the instance naming the rule.

Worlds are built in-process on a manual clock (time moves only when the test says), and the hand-made steps go
through the models the routes call; one test performs them through Microsoft's SDK against a running twin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from aztwin.providers.authorization.models import ROLES_BY_NAME
from aztwin.providers.compute.guest import INITIAL_SYNC_RETRIES, INITIAL_SYNC_RULE, apply_model, initial_sync_backoff
from aztwin.world import World
from sfsteps import Step
from test_doc_table import derived
from test_model_world import advance, world_of
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"
SECRETS_USER = ROLES_BY_NAME["key vault secrets user"].guid
RETRY_WINDOW = sum(initial_sync_backoff(a) for a in range(INITIAL_SYNC_RETRIES))


def identity_policy(world: World) -> dict[str, Any]:
    identity = next(iter(world.msi.identities.values()))
    return {"tenantId": world.identity.tenant_id, "objectId": identity.principal_id, "permissions": {"secrets": ["get", "list"]}}


def revoke_identity(world: World) -> Any:
    """already-cn's vault without the identity's access policy (a world where the grant is still to be made)."""
    vault = next(iter(world.keyvault.vaults.values()))
    principal = identity_policy(world)["objectId"]
    vault.access_policies = [p for p in vault.access_policies if p["objectId"] != principal]
    return vault


def rerun_extensions(world: World) -> list[Any]:
    """Every instance runs its model's extensions again (what a forceUpdateTag bump or a reimage does)."""
    scale_set = world.compute.all()[0]
    for instance in scale_set.instances:
        instance.store.clear()
        apply_model(world, scale_set, instance, scale_set.profile)
    return scale_set.instances


def test_the_documented_defaults_and_a_short_retry_window() -> None:
    world = world_of("already-cn")
    assert world.authorization.role_assignment_delay == 300 and world.keyvault.access_policy_delay == 60
    assert INITIAL_SYNC_RETRIES == 25
    # Pessimistic: the whole retry window is shorter than a role assignment's propagation, longer than a policy's.
    assert world.keyvault.access_policy_delay < RETRY_WINDOW < world.authorization.role_assignment_delay


def test_a_fresh_role_assignment_is_not_honoured_by_the_vault_before_the_delay() -> None:
    world = world_of("already-cn")
    vault = next(iter(world.keyvault.vaults.values()))
    vault.enable_rbac = True
    principal = identity_policy(world)["objectId"]
    world.authorization.put(vault.rid.id, "7a0c4d7e-1f0e-4a57-9d55-0c3a5b1d2e3f", SECRETS_USER, principal,
                            "ServicePrincipal", world.iso_now(), world.default_subscription)
    assert [a for a in world.snapshot()["role_assignments"] if a["principalId"] == principal]  # ARM shows it at once
    assert not world.keyvault.may(principal, vault, "secrets", "get")
    advance(world, 299)
    assert not world.keyvault.may(principal, vault, "secrets", "get")
    advance(world, 1)
    assert world.keyvault.may(principal, vault, "secrets", "get")


def test_a_fresh_access_policy_is_not_honoured_before_the_delay_and_arm_shows_it_at_once() -> None:
    world = world_of("already-cn")
    vault = revoke_identity(world)
    principal = identity_policy(world)["objectId"]
    vault.change_access_policies("add", [identity_policy(world)])
    assert principal in [p["objectId"] for p in vault.body()["properties"]["accessPolicies"]]
    assert not world.keyvault.may(principal, vault, "secrets", "get")
    advance(world, 60)
    assert world.keyvault.may(principal, vault, "secrets", "get")


def test_grants_in_the_scenario_are_in_force_at_once() -> None:
    world = world_of("already-cn")
    vault = next(iter(world.keyvault.vaults.values()))
    assert world.keyvault.may(identity_policy(world)["objectId"], vault, "secrets", "get")


def test_the_extension_retries_and_succeeds_when_the_grant_lands_within_its_retries() -> None:
    world = world_of("already-cn")
    vault = revoke_identity(world)
    vault.change_access_policies("add", [identity_policy(world)])  # effective in 60 s
    instances = rerun_extensions(world)
    kv = instances[0].extensions["KVVMExtension"]
    assert kv.status == "transitioning" and "retry 1 of 25" in kv.message and "secrets get permission" in kv.message
    advance(world, RETRY_WINDOW)
    assert all(i.extensions["KVVMExtension"].status == "succeeded" for i in instances)
    assert all(i.extensions["nt0_ServiceFabricNode"].status == "succeeded" for i in instances)
    assert world.snapshot()["cluster"]["health"] == "Healthy"


def test_the_extension_fails_the_instance_naming_the_rule_when_the_grant_lands_after_its_retries() -> None:
    world = world_of("already-cn")
    vault = revoke_identity(world)
    world.keyvault.access_policy_delay = RETRY_WINDOW + 60
    vault.change_access_policies("add", [identity_policy(world)])
    instances = rerun_extensions(world)
    advance(world, RETRY_WINDOW)
    kv = instances[0].extensions["KVVMExtension"]
    assert kv.status == "failed" and INITIAL_SYNC_RULE in kv.message and "after 25 retries" in kv.message, kv.message
    assert instances[0].extensions["nt0_ServiceFabricNode"].status == "failed"
    cluster = world.snapshot()["cluster"]
    assert cluster["health"] == "Broken"
    # Once propagated, running the extension again (a new model, forceUpdateTag) converges.
    advance(world, 60)
    rerun_extensions(world)
    assert all(i.extensions["KVVMExtension"].status == "succeeded" for i in instances)
    assert world.snapshot()["cluster"]["health"] == "Healthy"


def _propagation(seconds: str) -> Any:
    def edit(document: dict[str, Any]) -> None:
        document["propagation"] = {"roleAssignments": seconds, "accessPolicies": seconds}
    return edit


@pytest.mark.parametrize("delay, converges", [("0s", True), ("1d", False)])
def test_by_hand_through_the_sdk_a_fresh_grant_fails_the_extension_until_it_propagates(
    twin_factory: Any, tmp_path: Path, delay: str, converges: bool,
) -> None:
    """rbac-vault by hand: identity, 'Key Vault Secrets User', the extension at once. With no delay the rollout
    succeeds; with a long one the scale set's operation fails naming the rule, and ARM shows the grant all along."""
    twin = twin_factory(scenario_file=derived(tmp_path, "rbac-vault", f"rbac-{delay}", _propagation(delay)))
    clients = Clients(twin)
    step = Step(clients, "kv-sf-rbac")
    old, goal = step.thumbprint("cluster-old"), step.thumbprint("cluster-cert")
    step.add_secret("cluster-cert")
    step.sf_extension_thumbprints(old, goal)
    step.patch_thumbprints(old, goal)
    identity = step.create_identity()
    step.grant_secrets_role(identity)
    granted = [a for a in clients.authorization.role_assignments.list_for_scope(step.vault().id) if a.principal_id == identity.principal_id]
    assert granted  # ARM shows the grant at once
    if converges:
        step.install_kv_extension(identity, ["cluster-cert"], CN, remove_secrets=False)
        assert world_json(twin)["cluster"]["health"] == "Healthy"
        return
    with pytest.raises(HttpResponseError) as failed:
        step.install_kv_extension(identity, ["cluster-cert"], CN, remove_secrets=False)
    assert INITIAL_SYNC_RULE in str(failed.value) and "secrets get permission" in str(failed.value)
