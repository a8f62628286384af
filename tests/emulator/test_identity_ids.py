"""Identities (docs/twin.md, "Permission propagation and identities"): every created user-assigned identity gets new
random client and principal ids, so one deleted and created again under the same name has new ones, and a Key Vault
extension still naming the old client id fails at IMDS. The ids come from a generator seeded per world, so a world
built twice from one scenario is the same world.
"""

from __future__ import annotations

from typing import Any

from aztwin.clock import ManualClock
from aztwin.providers.compute.guest import apply_model
from aztwin.resources import ResourceId
from aztwin.scenario import build_world, load_scenario
from aztwin.world import World
from sfsteps import RG, Step
from twinkit import Clients, world_json


def world_of(name: str) -> World:
    spec, _ = load_scenario(name)
    return build_world(spec, "https://127.0.0.1:1", clock=ManualClock())


def test_delete_and_create_again_through_the_sdk_gives_new_ids(twin_factory: Any) -> None:
    twin = twin_factory("basic")
    step = Step(Clients(twin), "kv-sf")
    first = step.create_identity("sf-kv-reader")
    Clients(twin).msi.user_assigned_identities.delete(RG, "sf-kv-reader")
    second = step.create_identity("sf-kv-reader")
    assert second.id.lower() == first.id.lower()
    assert second.client_id != first.client_id and second.principal_id != first.principal_id
    principals = {p["objectId"] for p in world_json(twin)["principals"]}
    assert first.principal_id not in principals and second.principal_id in principals


def test_a_world_built_twice_from_one_scenario_has_the_same_ids() -> None:
    first, second = world_of("already-cn"), world_of("already-cn")
    assert [i.body() for i in first.msi.identities.values()] == [i.body() for i in second.msi.identities.values()]


def test_a_recreated_identity_leaves_the_extension_with_a_stale_client_id_which_fails_at_imds() -> None:
    world = world_of("already-cn")
    scale_set = world.compute.all()[0]
    old = next(iter(world.msi.identities.values()))
    rid = ResourceId.parse(old.rid.id)
    world.msi.delete(rid)
    new = world.msi.create(rid, old.location)
    assert new.client_id != old.client_id
    # The scale set still lists the identity's resource id; its extension still names the old client id.
    assert rid.id.lower() in [i.lower() for i in scale_set.user_assigned_identities()]
    instance = scale_set.instances[0]
    instance.store.clear()
    apply_model(world, scale_set, instance, scale_set.profile, initial=True)
    kv = instance.extensions["KVVMExtension"]
    assert kv.status == "failed" and f"client id '{old.client_id}' is not assigned" in kv.message, kv.message
    assert world.snapshot()["cluster"]["health"] == "Broken"
