"""The built-in ``fleet`` world (issue 15, the twin's side): thirteen small clusters in three subscriptions, each
with its own goal and starting state; each cluster's ``busy_seconds`` counts only the work on its own resources; a
429 storm can be scoped to one subscription; the world loads and serves fast, to many readers at once, and one
cluster's events cost the same as in a world of that cluster alone.

Read through ``GET /_emulator/world`` and Microsoft's SDK clients, as any outside observer would; the cost test
counts (never times, never changes) calls inside an in-process world.
"""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from azure.core.exceptions import HttpResponseError
from azure.mgmt.servicefabric.models import ClusterUpdateParameters

from aztwin.clock import ManualClock
from aztwin.faults import FaultPlan, FaultSpecError
from aztwin.providers.compute.models import ScaleSet
from aztwin.providers.servicefabric.models import ServiceFabricState
from aztwin.scenario import build_world, load_scenario
from aztwin.scenario_load import builtin_path
from aztwin.world import World
from twinkit import Clients, requests_json, world_json

# cluster -> (subscription, resource group, node types (name, os, instances, upgrade mode)); the header of fleet.yaml
LAYOUT = {
    "sf-orders": ("Production", "rg-prod-weu", [("ord0", "windows", 3, "Automatic")]),
    "sf-catalog": ("Production", "rg-prod-weu", [("cat0", "windows", 3, "Automatic")]),
    "sf-search": ("Production", "rg-prod-weu", [("srch0", "windows", 3, "Automatic")]),
    "sf-inventory": ("Production", "rg-prod-weu", [("inv0", "windows", 3, "Automatic"), ("inv1", "windows", 3, "Manual")]),
    "sf-shipping": ("Production", "rg-prod-neu", [("shp0", "windows", 4, "Automatic")]),
    "sf-returns": ("Production", "rg-prod-neu", [("ret0", "linux", 3, "Automatic")]),
    "sf-kvready": ("Production", "rg-prod-neu", [("kvr0", "windows", 3, "Automatic")]),
    "sf-payments": ("Payments", "rg-pay", [("pay0", "windows", 4, "Automatic")]),
    "sf-ledger": ("Payments", "rg-pay", [("led0", "windows", 3, "Manual")]),
    "sf-payments-dr": ("Payments", "rg-pay-dr", [("pdr0", "windows", 3, "Automatic")]),
    "sf-fraud": ("Payments", "rg-pay-dr", [("frd0", "windows", 3, "Automatic")]),
    "sf-telemetry": ("Platform", "rg-plat", [("tel0", "windows", 5, "Automatic")]),
    "sf-gateway": ("Platform", "rg-plat", [("gw0", "linux", 3, "Automatic")]),
}


@pytest.fixture
def fleet(twin_factory: Any) -> Any:
    return twin_factory("fleet")


def _subscriptions(world: dict[str, Any]) -> dict[str, str]:
    return {s["displayName"]: s["id"] for s in world["subscriptions"]}


def _clusters(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in world["clusters"]}


def _version(world: dict[str, Any], vault_id: str, certificate: str) -> dict[str, Any]:
    vault = next(v for v in world["vaults"] if v["id"] == vault_id)
    version: dict[str, Any] = next(c for c in vault["certificates"] if c["name"] == certificate)["versions"][-1]
    return version


def _nodes(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for nt in cluster["node_types"] for n in nt["nodes"]]


# -- the world it says it is ------------------------------------------------------------------------------
def test_the_fleet_spans_three_subscriptions_with_a_goal_per_cluster(fleet: Any) -> None:
    world = world_json(fleet)
    subscriptions = _subscriptions(world)
    assert sorted(subscriptions) == ["Payments", "Platform", "Production"]
    assert sum(len(s["resourceGroups"]) for s in world["subscriptions"]) == 5
    clusters = _clusters(world)
    assert list(clusters) == list(LAYOUT) and len(clusters) >= 12
    goals = {g["cluster"]: g for g in world["goals"]}
    for name, (subscription, group, node_types) in LAYOUT.items():
        cluster = clusters[name]
        assert cluster["id"].startswith(f"/subscriptions/{subscriptions[subscription]}/resourceGroups/{group}/"), name
        assert cluster["health"] == cluster["health_worst"] == "Healthy" and cluster["cluster_state"] == "Ready", name
        assert cluster["busy_seconds"] == 0.0, name  # nothing in flight yet
        assert [(nt["name"], nt["os"], len(nt["nodes"])) for nt in cluster["node_types"]] == [n[:3] for n in node_types]
        modes = {s["name"]: s["upgradeMode"] for s in world["scale_sets"] if s["id"].split("/")[4] == group}
        assert [modes[nt[0]] for nt in node_types] == [nt[3] for nt in node_types], name
        goal = goals[cluster["id"]]  # its own goal, with a vault of its own resource group
        assert goal["vault"].split("/")[2:5] == cluster["id"].split("/")[2:5] and goal["commonName"].startswith(name[3:] + ".")
    assert len(world["goals"]) == len(clusters) and world["time_scale"] == 3000


def test_the_starting_states_are_the_designed_ones(fleet: Any) -> None:
    world = world_json(fleet)
    clusters, goals = _clusters(world), {g["cluster"]: g for g in world["goals"]}

    def goal_thumbprint(name: str) -> str:
        goal = goals[clusters[name]["id"]]
        return str(_version(world, goal["vault"], goal["certificate"])["thumbprint"])

    def declared(name: str) -> list[str]:
        certificate = clusters[name]["certificate"] or {}
        return [t for t in (certificate.get("thumbprint"), certificate.get("thumbprintSecondary")) if t]

    def sources(name: str, thumbprint: str) -> set[str]:
        return {c["source"] for n in _nodes(clusters[name]) for c in n["certificates"] if c["thumbprint"] == thumbprint}

    for name in ("sf-orders", "sf-inventory", "sf-payments", "sf-ledger", "sf-fraud", "sf-telemetry", "sf-gateway"):
        assert len(declared(name)) == 1 and goal_thumbprint(name) not in declared(name) and not sources(name, goal_thumbprint(name)), name
    assert declared("sf-catalog")[1] == goal_thumbprint("sf-catalog")  # the goal already added by thumbprint as secondary
    assert len(declared("sf-payments-dr")) == 2 and goal_thumbprint("sf-payments-dr") not in declared("sf-payments-dr")
    for name in ("sf-shipping", "sf-returns"):  # Thumbprint: Goal, by versioned VMSS secret
        assert declared(name) == [goal_thumbprint(name)] and sources(name, goal_thumbprint(name)) == {"vmss-secret"}
    assert clusters["sf-search"]["declaration"] == "common_name" and clusters["sf-search"]["certificate"] is None
    assert sources("sf-search", goal_thumbprint("sf-search")) == {"kv-extension"}
    assert clusters["sf-kvready"]["declaration"] == "thumbprint" and sources("sf-kvready", goal_thumbprint("sf-kvready")) == {"kv-extension"}
    extensions = {s["name"]: {e["type"] for e in s["extensions"]} for s in world["scale_sets"]}
    assert "KeyVaultForWindows" in extensions["kvr0"] and "KeyVaultForWindows" in extensions["srch0"]
    assert not any(t.startswith("KeyVaultFor") for name, types in extensions.items() if name not in ("kvr0", "srch0") for t in types)
    assert "ServiceFabricLinuxNode" in extensions["ret0"] and "ServiceFabricLinuxNode" in extensions["gw0"]
    vaults = {v["name"]: v for v in world["vaults"]}
    assert vaults["kv-fleet-pay"]["rbac"] is True and not vaults["kv-fleet-pay"]["accessPolicies"]
    assert all(v["rbac"] is False and v["accessPolicies"] for n, v in vaults.items() if n != "kv-fleet-pay")
    # sf-fraud is blocked: its goal pins only the root, not the goal's direct issuer
    authorities = {a["name"]: a["thumbprint"] for a in world["pki"]}
    fraud = goals[clusters["sf-fraud"]["id"]]
    assert fraud["pinnedIssuers"] == [authorities["contoso-root"]]
    assert _version(world, fraud["vault"], fraud["certificate"])["issuer"] == "contoso-issuing-1"
    pinned_elsewhere = [g["pinnedIssuers"] for cid, g in goals.items() if cid != clusters["sf-fraud"]["id"]]
    assert all(p == [authorities["contoso-issuing-1"]] for p in pinned_elsewhere)


# -- busy time per cluster --------------------------------------------------------------------------------
def test_busy_seconds_grow_only_for_the_cluster_whose_resources_are_worked_on(fleet: Any) -> None:
    subscriptions = _subscriptions(world_json(fleet))
    production, payments = Clients(fleet), Clients(fleet)
    production.subscription, payments.subscription = subscriptions["Production"], subscriptions["Payments"]
    production.compute.virtual_machine_scale_set_vms.begin_reimage("rg-prod-weu", "ord0", "1").result()  # a roll-out
    payments.servicefabric.clusters.begin_update("rg-pay", "sf-ledger", ClusterUpdateParameters(tags={"team": "ledger"})).result()
    world = world_json(fleet)
    busy = {name: cluster["busy_seconds"] for name, cluster in _clusters(world).items()}
    settings = fleet.world.settings
    assert busy["sf-orders"] >= settings.instance_update_seconds  # the reimage: the instance's update and provisioning
    assert busy["sf-ledger"] >= settings.model_update_seconds  # the cluster's update (and its settle window, if any)
    assert max(busy.values()) <= world["simulated_seconds"]
    assert {name for name, seconds in busy.items() if seconds} == {"sf-orders", "sf-ledger"}, busy
    ops = {op["resourceId"].split("/")[-1]: op for op in world["operations"]}
    assert ops["ord0"]["status"] == ops["sf-ledger"]["status"] == "Succeeded"
    assert world["busy_seconds"] > 0 and world["time_scale"] == 3000  # the global (wall) busy time counts both


def test_busy_time_is_attributed_by_resource_without_a_walk_over_the_clusters() -> None:
    """The same resource ids map to their clusters in the model: a scale set by its extension's clusterEndpoint,
    a cluster by its own id, anything else to none; overlapping work on one cluster counts once."""
    world = _world("fleet")
    orders = next(c for c in world.servicefabric.clusters.values() if c.rid.name == "sf-orders")
    ord0 = next(s for s in world.compute.all() if s.rid.name == "ord0")
    membership = world.servicefabric.membership
    assert membership.cluster_key_of(ord0.rid.id) == membership.cluster_key_of(orders.rid.id.upper()) == orders.rid.key
    vault = next(iter(world.keyvault.vaults.values()))
    assert membership.cluster_key_of(vault.rid.id) is None
    first = world.operations.start("vmss-update", ord0.rid.id)
    _advance(world, 30)
    second = world.operations.start("sf-update", orders.rid.id)  # overlaps the first for 20 s
    _advance(world, 20)
    world.operations.finish(first)
    _advance(world, 10)
    world.operations.finish(second)
    _advance(world, 100)
    assert world.cluster_busy.seconds(orders.rid.key) == pytest.approx(60.0)
    assert all(world.cluster_busy.seconds(c.rid.key) == 0.0 for c in world.servicefabric.clusters.values() if c is not orders)


# -- a 429 storm on one subscription ----------------------------------------------------------------------
PAYMENTS = "5f3c9a10-0000-4000-8000-000000000002"  # fixed in fleet.yaml, so a spec can name it before the start


@pytest.mark.parametrize("given", ["at start", "through the control API"])
def test_a_429_storm_on_one_subscription_leaves_the_others_alone(twin_factory: Any, given: str) -> None:
    storm = f"subscription={PAYMENTS.upper()},kinds=429,rate=1"
    fleet = twin_factory("fleet", faults=storm if given == "at start" else None)
    subscriptions = _subscriptions(world_json(fleet))
    assert subscriptions["Payments"] == PAYMENTS
    if given != "at start":
        assert fleet.control().set_faults(storm)["spec"] == storm
    since = requests_json(fleet)["total"]
    readers = {name: Clients(fleet) for name in subscriptions}
    for name, clients in readers.items():
        clients.subscription = subscriptions[name]
        clients.kwargs["retry_total"] = 0  # see the throttled answer itself, not the SDK's retries
    for name, (subscription, group, _) in LAYOUT.items():
        client = readers[subscription].servicefabric.clusters
        if subscription == "Payments":
            with pytest.raises(HttpResponseError) as caught:
                client.get(group, name)
            headers: Any = getattr(caught.value.response, "headers", {})
            assert caught.value.status_code == 429 and headers["Retry-After"].isdigit() and int(headers["retry-after-ms"]) > 0
        else:
            assert client.get(group, name).name == name
    log = requests_json(fleet, since)["requests"]
    faulted = [r for r in log if r["fault"]]
    assert faulted and all(r["fault"] == "429" and r["path"].lower().startswith(f"/subscriptions/{subscriptions['Payments']}/") for r in faulted)
    others = [r for r in log if not r["path"].lower().startswith(f"/subscriptions/{subscriptions['Payments']}/")]
    assert len([r for r in others if "/clusters/" in r["path"]]) == 9 and all(r["status"] == 200 and r["fault"] is None for r in others)
    fleet.control().set_faults(None)
    assert readers["Payments"].servicefabric.clusters.get("rg-pay", "sf-ledger").name == "sf-ledger"  # the storm is over


def test_the_subscription_fault_key_takes_an_id_and_scopes_by_path() -> None:
    plan = FaultPlan.parse("subscription=0B1F6471-1BF0-4DDA-AEC3-CB9272F09590,kinds=429,rate=1")
    assert plan.decide("GET", "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg")[0] is not None
    assert plan.decide("GET", "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590")[0] is not None
    assert plan.decide("GET", "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09591/resourceGroups/rg")[0] is None
    assert plan.decide("GET", "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f095901/x")[0] is None
    assert plan.decide("GET", "/kv/kv-fleet-pay/certificates/x")[0] is None  # a vault's data plane has no subscription
    with pytest.raises(FaultSpecError, match="subscription must be a subscription id"):
        FaultPlan.parse("subscription=Payments,kinds=429")


# -- scale: load, serve, many readers, the cost of one cluster's events ------------------------------------
def test_the_fleet_loads_and_its_world_is_served_in_under_a_second(fleet: Any) -> None:
    spec, _ = load_scenario("fleet")
    build_world(spec, "https://127.0.0.1:1")  # RSA keys come from a per-process pool: time a load, not key generation
    loads, reads = [], []
    for _ in range(3):
        started = time.monotonic()
        build_world(load_scenario("fleet")[0], "https://127.0.0.1:1")
        loads.append(time.monotonic() - started)
        started = time.monotonic()
        assert len(world_json(fleet)["clusters"]) == 13
        reads.append(time.monotonic() - started)
    assert min(loads) < 1.0 and min(reads) < 1.0, (loads, reads)


def test_twelve_clients_read_their_clusters_and_the_world_at_once(fleet: Any) -> None:
    subscriptions = _subscriptions(world_json(fleet))
    errors: list[str] = []
    seen: dict[str, int] = {}
    start = threading.Barrier(12)

    def reader(name: str) -> None:
        subscription, group, node_types = LAYOUT[name]
        clients = Clients(fleet)
        clients.subscription = subscriptions[subscription]
        try:
            start.wait(timeout=60)
            for _ in range(3):
                assert clients.servicefabric.clusters.get(group, name).name == name
                vms = list(clients.compute.virtual_machine_scale_set_vms.list(group, node_types[0][0]))
                assert len(vms) == node_types[0][2]
                assert name in _clusters(world_json(fleet))
                seen[name] = seen.get(name, 0) + 1
        except Exception as exc:  # reported below, with the cluster it happened on
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader, args=(name,)) for name in list(LAYOUT)[:12]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors and seen == {name: 3 for name in list(LAYOUT)[:12]}, errors
    assert all(r["status"] == 200 for r in requests_json(fleet)["requests"])


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """Count (without changing) the verdicts taken, the nodes they judge and the scale sets' extension scans."""
    calls: dict[str, list[Any]] = {"verdicts": [], "nodes": [], "scans": []}
    real_evaluate, real_views, real_scan = ServiceFabricState.evaluate, ServiceFabricState.node_views, ScaleSet.extensions_of_type

    def evaluate(self: ServiceFabricState, cluster: Any, phase: str) -> Any:
        calls["verdicts"].append(cluster.rid.name)
        return real_evaluate(self, cluster, phase)

    def node_views(self: ServiceFabricState, cluster: Any, members: Any = None) -> Any:
        views = real_views(self, cluster, members)
        calls["nodes"].append(len(views))
        return views

    def scan(self: ScaleSet, *types: str) -> Any:
        calls["scans"].append(self.rid.name)
        return real_scan(self, *types)

    monkeypatch.setattr(ServiceFabricState, "evaluate", evaluate)
    monkeypatch.setattr(ServiceFabricState, "node_views", node_views)
    monkeypatch.setattr(ScaleSet, "extensions_of_type", scan)
    yield calls


def test_one_clusters_roll_out_costs_the_same_in_the_fleet_as_alone(tmp_path: Path, counted: dict[str, list[Any]]) -> None:
    """A reimage roll-out and a model roll-out on sf-orders take the verdicts of sf-orders only, judge the same nodes
    and scan the same scale sets' extensions as in a world holding sf-orders alone (docs/twin.md, "Fleets")."""
    data = yaml.safe_load(builtin_path("fleet").read_text(encoding="utf-8"))
    alone = copy.deepcopy(data)
    alone["name"], alone["clusters"] = "fleet-orders-alone", [c for c in data["clusters"] if c["name"] == "sf-orders"]
    path = tmp_path / "alone.yaml"
    path.write_text(yaml.safe_dump(alone), encoding="utf-8")
    figures = []
    for world in (_world("fleet"), build_world(load_scenario(path=path)[0], "https://127.0.0.1:1", clock=ManualClock())):
        ord0 = next(s for s in world.compute.all() if s.rid.name == "ord0")
        body = copy.deepcopy(ord0.body)
        body["tags"] = {"changed": "yes"}  # a model write: the membership index is rebuilt once, before the roll-out
        body["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"] = "ord1"
        for values in counted.values():
            values.clear()
        operations = [world.compute.reimage(ord0, ord0.instances[1]), world.compute.update(ord0, body)]
        _advance(world, 600)  # the roll-outs end; no Key Vault extension poll elsewhere falls due (hourly)
        assert all(op.status == "Succeeded" for op in operations)
        rebuild = len(world.compute.all())  # the one index rebuild after the model write scans every scale set once
        figures.append((sorted(set(counted["verdicts"])), len(counted["verdicts"]), sum(counted["nodes"]), len(counted["scans"]) - rebuild))
    in_fleet, on_its_own = figures
    assert in_fleet[0] == ["sf-orders"] and in_fleet == on_its_own, figures


def _world(name: str) -> World:
    return build_world(load_scenario(name)[0], "https://127.0.0.1:1", clock=ManualClock())


def _advance(world: World, seconds: float) -> None:
    world.clock.advance(seconds)
    world.events.run_due()
