"""The fleet's shared ARM write budget on the twin (issue 15): every mutating ARM request of every cluster takes a
slot of its subscription's budget, and a 429 pauses that subscription's writes (migrate.cloud.policies.BudgetGate).
The budget is the product's own object, observed, not a stub: the requests go to the twin over HTTPS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.cloud.policies import WriteBudget
from migrate.fleet.apply import FleetApplyOptions, fleet_apply
from migrate.fleet.session import load, open_fleet_session
from migrate.fleet.spec import load_fleet
from twinkit import requests_json, world_json


class ObservedBudget(WriteBudget):
    """The real budget, also recording the slots it granted and the pauses it was told of."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.granted: dict[str, int] = {}
        self.pauses: list[tuple[str, float]] = []

    def try_acquire(self, subscription: str) -> float:
        wait = super().try_acquire(subscription)
        if wait == 0:
            self.granted[subscription.lower()] = self.granted.get(subscription.lower(), 0) + 1
        return wait

    def pause(self, subscription: str, seconds: float) -> None:
        self.pauses.append((subscription.lower(), seconds))
        super().pause(subscription, seconds)


def _run(twin: Any, tmp_path: Path, budget: WriteBudget) -> Any:
    path = Path(twin.state_dir) / "fleet.yaml"
    session = open_fleet_session(load_fleet(path), poll_interval=0.02, retry_backoff=0.05)
    session.budget = budget
    fleet = load(path, session=session)
    return fleet_apply(fleet, FleetApplyOptions(str(tmp_path / "state"), concurrency=2))


def _arm_writes(twin: Any) -> list[dict[str, Any]]:
    """Every mutating-method ARM request the twin received (throttled attempts included)."""
    return [r for r in requests_json(twin)["requests"]
            if r["method"] in ("PUT", "PATCH", "POST", "DELETE") and r["path"].lower().startswith("/subscriptions/")]


def test_every_arm_write_of_every_cluster_takes_a_slot_of_the_subscriptions_budget(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    budget = ObservedBudget(1000)
    result = _run(twin, tmp_path, budget)
    assert result.exit_code == 0, result.to_report()
    subscription = twin.world.default_subscription.lower()
    writes = _arm_writes(twin)
    assert writes and budget.granted == {subscription: len(writes)}  # one slot per ARM write sent, both clusters'
    assert {c["declaration"] for c in world_json(twin)["clusters"]} == {"common_name"}


def test_a_429_storm_pauses_the_subscriptions_writes_and_the_fleet_still_converges(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters", faults=r"match=^(PUT|PATCH|POST|DELETE) /subscriptions/,kinds=429,rate=0.4,seed=5,retry_after_ms=300")
    budget = ObservedBudget(1000)
    result = _run(twin, tmp_path, budget)
    assert result.exit_code == 0, result.to_report()
    subscription = twin.world.default_subscription.lower()
    throttled = [r for r in _arm_writes(twin) if r["status"] == 429]
    assert throttled and len(budget.pauses) == len(throttled)
    assert {sub for sub, _ in budget.pauses} == {subscription} and all(seconds > 0 for _, seconds in budget.pauses)
    assert budget.granted[subscription] == len(_arm_writes(twin))  # retries too: every attempt took a slot
    for cluster in world_json(twin)["clusters"]:
        assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy"


def test_a_budget_smaller_than_the_fleets_writes_spaces_them_out(twin_factory, tmp_path: Path) -> None:
    """One write a minute, over a budget clock 120 times faster than the wall: a write every 0.5 s at most."""
    import time

    twin = twin_factory("two-clusters")
    start = time.monotonic()
    budget = ObservedBudget(1, clock=lambda: (time.monotonic() - start) * 120)
    budget.sleep = lambda seconds: time.sleep(seconds / 120)
    result = _run(twin, tmp_path, budget)
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.to_report()
    writes = len(_arm_writes(twin))
    assert writes > 4 and budget.granted[twin.world.default_subscription.lower()] == writes
    assert budget.waited[twin.world.default_subscription.lower()] > 0
    assert elapsed >= (writes - 1) * 0.5 * 0.95  # both clusters' writes shared the one budget


def test_a_20_percent_fault_run_of_the_fleet_converges(twin_factory, tmp_path: Path) -> None:
    """Every kind of fault (429, 500, 503, connection resets) on 20% of requests: each cluster converges, running
    fleet apply again on a cluster that failed (resumable), at most three runs."""
    twin = twin_factory("two-clusters", faults="rate=0.2,seed=11")
    runs = []
    for _ in range(3):
        result = _run(twin, tmp_path, WriteBudget())
        runs.append([c.outcome for c in result.clusters])
        if result.exit_code == 0:
            break
    assert result.exit_code == 0, runs
    assert twin.control().call("GET", "/_emulator/faults")["injected"] > 5, runs  # the faults did happen
    for cluster in world_json(twin)["clusters"]:
        assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy"
