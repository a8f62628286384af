"""Big worlds (docs/twin.md, "Big worlds"): the cost of an event is proportional to the nodes it touches.

Counted, never timed: one Key Vault extension poll on one node judges O(distinct validation lists x distinct
presented certificates) (validation list, certificate) pairs, the same number in a world of 10 nodes as in one
of 100, and takes the verdict of its own cluster only; the grouped verdict names the same rejections, in the
same order, as the pairwise walk it replaces; a world of 50 clusters builds and serves ``GET /_emulator/world``.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from aztwin import start_twin
from aztwin.clock import ManualClock
from aztwin.providers.servicefabric import verdict as verdict_module
from aztwin.providers.servicefabric.declaration import ValidationList
from aztwin.providers.servicefabric.models import ServiceFabricState
from aztwin.providers.servicefabric.verdict import NodeView, Verdict, accepts, evaluate, present
from aztwin.scenario import build_world, load_scenario
from aztwin.scenario_load import builtin_path
from aztwin.world import World
from twinkit import world_json


def already_cn(instances: int, clusters: int = 1) -> dict[str, Any]:
    """The built-in ``already-cn`` world (Key Vault extension polling on every node) with ``instances`` nodes in
    each of ``clusters`` clusters (each cluster its own node type name, so its own scale set)."""
    data: dict[str, Any] = yaml.safe_load(builtin_path("already-cn").read_text(encoding="utf-8"))
    data["name"] = "big-world-cost"
    first = data["clusters"][0]
    first["nodeTypes"][0]["instances"] = instances
    for index in range(1, clusters):
        other = copy.deepcopy(first)
        other["name"] = f"sfcluster-{index:02d}"
        other["nodeTypes"][0]["name"] = f"nt{index:02d}"
        data["clusters"].append(other)
    return data


def world_of(tmp_path: Path, data: dict[str, Any]) -> World:
    path = tmp_path / f"{data['name']}-{len(data['clusters'])}-{data['clusters'][0]['nodeTypes'][0]['instances']}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    spec, _ = load_scenario(path=path)
    return build_world(spec, "https://127.0.0.1:1", clock=ManualClock())


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """Count (without changing) the verdict's acceptance judgements and the clusters whose verdict is taken."""
    calls: dict[str, list[Any]] = {"accepts": [], "clusters": [], "lookups": []}
    real_accepts, real_evaluate, real_hash = verdict_module.accepts, ServiceFabricState.evaluate, ValidationList.__hash__

    def counting_hash(self: ValidationList) -> int:  # a validation list looked up in a dict (a pairwise walk: per pair)
        calls["lookups"].append(None)
        return real_hash(self)

    def counting_accepts(validation: ValidationList, cert: Any, *args: Any, **kwargs: Any) -> tuple[bool, str]:
        calls["accepts"].append((validation, cert.thumbprint))
        return real_accepts(validation, cert, *args, **kwargs)

    def counting_evaluate(self: ServiceFabricState, cluster: Any, phase: str) -> Verdict:
        calls["clusters"].append(cluster.rid.name)
        return real_evaluate(self, cluster, phase)

    monkeypatch.setattr(verdict_module, "accepts", counting_accepts)
    monkeypatch.setattr(ServiceFabricState, "evaluate", counting_evaluate)
    monkeypatch.setattr(ValidationList, "__hash__", counting_hash)
    yield calls


def poll_one_node(world: World, cluster_name: str = "sfcluster") -> None:
    """Run the next Key Vault extension poll of one node of ``cluster_name`` (as the event queue would)."""
    cluster = next(c for c in world.servicefabric.clusters.values() if c.rid.name == cluster_name)
    _, instance, _ = world.servicefabric.members(cluster)[0]
    event = next(iter(instance.poll_events.values()))
    event.cancelled = True
    event.action()


def test_one_poll_judges_the_same_pairs_in_a_small_and_a_big_world(tmp_path: Path, counted: dict[str, list[Any]]) -> None:
    judged, lookups = {}, {}
    for instances in (10, 100):
        world = world_of(tmp_path, already_cn(instances))
        assert world.snapshot()["cluster"]["health"] == "Healthy"
        counted["accepts"].clear()
        counted["lookups"].clear()
        poll_one_node(world)
        judged[instances], lookups[instances] = list(counted["accepts"]), len(counted["lookups"])
        assert world.snapshot()["cluster"]["health"] == "Healthy"
    # every node validates with one list and presents one certificate: one judgement, whatever the size
    assert len(judged[10]) == len(judged[100]) == 1, judged
    # and the work around it grows with the nodes (10x), not with the pairs (100x)
    assert 0 < lookups[100] <= 12 * lookups[10], lookups


def test_one_poll_takes_the_verdict_of_its_own_cluster_only(tmp_path: Path, counted: dict[str, list[Any]]) -> None:
    world = world_of(tmp_path, already_cn(5, clusters=3))
    assert [c["health"] for c in world.snapshot()["clusters"]] == ["Healthy"] * 3
    counted["clusters"].clear()
    poll_one_node(world, "sfcluster-02")
    assert counted["clusters"] == ["sfcluster-02"]


def pairwise(nodes: list[NodeView], now: dt.datetime, trusted_roots: set[str]) -> Verdict:
    """The verdict as a walk over every (sender, receiver) pair: what the grouped verdict must reproduce."""
    verdict = Verdict(True)
    shown = {node.name: present(node, now, False) for node in nodes}
    for node in nodes:
        verdict.presented[node.name] = shown[node.name].cert.thumbprint if shown[node.name].cert else None  # type: ignore[union-attr]
        if shown[node.name].cert is None:
            verdict.healthy = False
            verdict.reasons.append(shown[node.name].reason)
    for sender in nodes:
        cert = shown[sender.name].cert
        for receiver in nodes:
            if cert is None or receiver is sender:
                continue
            accepted, why = accepts(receiver.validation, cert, now, trusted_roots)
            if not accepted:
                verdict.healthy = False
                if len(verdict.reasons) < 12:
                    verdict.reasons.append(f"node {receiver.name} rejects {cert.thumbprint} presented by node {sender.name}: {why}")
    return verdict


@pytest.mark.parametrize("rejecting", [[3], [0, 7], [1, 2, 4, 6, 8, 9], [9]])
def test_grouped_verdict_names_what_the_pairwise_walk_names(tmp_path: Path, rejecting: list[int]) -> None:
    world = world_of(tmp_path, already_cn(10))
    cluster = next(iter(world.servicefabric.clusters.values()))
    nodes = world.servicefabric.node_views(cluster)
    narrow = ValidationList(frozenset({"0" * 40}))  # accepts nobody else's certificate
    for index in rejecting:
        nodes[index].validation = narrow
    now, roots = world.now(), world.servicefabric.trusted_roots
    expected = pairwise(nodes, now, roots)
    got = evaluate(nodes, now, False, roots)
    assert (got.healthy, got.reasons, got.presented) == (expected.healthy, expected.reasons, expected.presented)
    assert not got.healthy and len(got.reasons) == min(12, 9 * len(rejecting) if len(rejecting) < 10 else 12)


def test_a_world_of_50_clusters_builds_and_serves(tmp_path: Path) -> None:
    data = already_cn(2, clusters=50)
    path = tmp_path / "fifty.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    running = start_twin(scenario_file=path, state_dir=tmp_path / "state")
    try:
        world = world_json(running)
        assert len(world["clusters"]) == 50
        assert {c["health"] for c in world["clusters"]} == {"Healthy"}
        assert sum(len(t["nodes"]) for c in world["clusters"] for t in c["node_types"]) == 100
    finally:
        running.stop()
