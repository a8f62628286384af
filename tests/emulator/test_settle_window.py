"""Service Fabric keeps rolling an upgrade out for about 15 minutes after ARM reports Succeeded (issue 12): a
certificate upgrade or a roll-out's update domain started inside that window counts against ``health_worst``."""

from __future__ import annotations

import copy
from typing import Any

from test_model_world import advance, cluster, cn_body, snapshot, world_of

from aztwin.world import World


def _configuration_upgrade(world: World) -> Any:
    body = copy.deepcopy(cluster(world).body)
    body["properties"]["fabricSettings"].append({"name": "Setup", "parameters": [{"name": "FabricDataRoot", "value": "D:\\SF"}]})
    operation = world.servicefabric.update(cluster(world), body)
    while not operation.done:  # just until ARM reports it done: the settle window starts there
        advance(world, 10)
    assert operation.status == "Succeeded" and snapshot(world)["health_worst"] == "Healthy"
    return operation


def _settling_reasons(world: World) -> list[str]:
    return [r for h in snapshot(world)["health_history"] if h["phase"] == "settling" for r in h["reasons"]]


def test_a_certificate_upgrade_inside_the_settle_window_counts_against_health_worst() -> None:
    world = world_of("goal-primary")
    _configuration_upgrade(world)
    assert snapshot(world)["settling_until"]
    world.servicefabric.update(cluster(world), cn_body(world, [world.pki.authority("contoso-issuing-1").thumbprint]))
    state = snapshot(world)
    assert state["health_worst"] == "Broken"
    [reason] = _settling_reasons(world)
    assert reason.startswith("a certificate upgrade started") and "still rolling it out" in reason and "about 15 min" in reason


def test_after_the_window_a_certificate_upgrade_does_not_count() -> None:
    world = world_of("goal-primary")
    _configuration_upgrade(world)
    advance(world, 15 * 60 + 1)
    operation = world.servicefabric.update(cluster(world), cn_body(world, [world.pki.authority("contoso-issuing-1").thumbprint]))
    advance(world, 100 * world.settings.ud_walk_seconds)
    assert operation.status == "Succeeded" and snapshot(world)["declaration"] == "common_name"
    assert snapshot(world)["health_worst"] == "Healthy" and not _settling_reasons(world)


def test_a_roll_out_inside_the_window_counts_and_the_window_is_a_scenario_knob() -> None:
    world = world_of("goal-primary")
    _configuration_upgrade(world)
    scale_set = world.compute.all()[0]
    world.compute.reimage(scale_set, scale_set.instances[2])  # an update domain of a roll-out starts now
    assert any(r.startswith("a roll-out of nt0 to nt0_2") for r in _settling_reasons(world))

    quiet = world_of("goal-primary")
    cluster(quiet).settle_seconds = 0  # scenario settleWindow: 0s
    _configuration_upgrade(quiet)
    quiet.compute.reimage(quiet.compute.all()[0], quiet.compute.all()[0].instances[2])
    assert not _settling_reasons(quiet) and snapshot(quiet)["settling_until"] is None


def test_a_roll_out_counts_only_against_its_own_cluster_when_node_names_are_shared() -> None:
    world = world_of("two-clusters")  # sfcluster in rg-sf and in rg-sf-b, each with a scale set nt0 (nodes nt0_*)
    first, second = list(world.servicefabric.clusters.values())
    body = copy.deepcopy(first.body)
    body["properties"]["fabricSettings"].append({"name": "Setup", "parameters": [{"name": "FabricDataRoot", "value": "D:\\SF"}]})
    operation = world.servicefabric.update(first, body)
    while not operation.done:
        advance(world, 10)
    assert first.settling_until is not None and second.settling_until is None
    other = next(s for s in world.compute.all() if s.rid.resource_group.lower() == second.rid.resource_group.lower())
    world.compute.reimage(other, other.instances[0])  # nt0_0 of the second cluster, inside the first one's window
    assert first.health_worst == "Healthy" and not [h for h in first.history if h["phase"] == "settling"]
    mine = next(s for s in world.compute.all() if s.rid.resource_group.lower() == first.rid.resource_group.lower())
    world.compute.reimage(mine, mine.instances[0])
    assert [h for h in first.history if h["phase"] == "settling"]
