"""Issue 15's fleet acceptance on the twin's ``fleet`` scenario (13 clusters, 3 subscriptions, sf-fraud blocked).

One twin for the module (plan, then apply, then the rerun: each test leaves the world as the next expects); the
429 storm has its own twin. Outcomes asserted: exit codes, the fleet report, the twin's world and request log,
and the product's own write budget (its pause records), never wall-time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from aztwin import start_twin
from migrate.cloud.policies import WriteBudget
from migrate.fleet.apply import FleetApplyOptions, fleet_apply
from migrate.fleet.session import load, open_fleet_session
from migrate.fleet.spec import load_fleet
from migrate.runner import RunOptions
from twinkit import PlannedTwin, requests_json, with_plan, world_json

REPO = Path(__file__).resolve().parents[2]
FAST = 3000.0
PRODUCTION, PAYMENTS, PLATFORM = (f"5f3c9a10-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))
# the fleet's starting states, as its scenario file describes them (aztwin/scenarios/fleet.yaml)
EXPECTED = {
    "sf-orders": ("changes", "GOAL_ABSENT_GOAL_NEWER"), "sf-catalog": ("changes", "VALID_GOAL_NEWEST"),
    "sf-search": ("ok", "ALREADY_COMMON_NAME"), "sf-inventory": ("changes", "GOAL_ABSENT_GOAL_NEWER"),
    "sf-shipping": ("changes", "VALID_GOAL_ONLY"), "sf-returns": ("changes", "VALID_GOAL_ONLY"),
    "sf-kvready": ("changes", "GOAL_ABSENT_GOAL_NEWER"), "sf-payments": ("changes", "GOAL_ABSENT_GOAL_NEWER"),
    "sf-ledger": ("changes", "GOAL_ABSENT_GOAL_NEWER"), "sf-payments-dr": ("changes", "TWO_OLD"),
    "sf-fraud": ("blocked", "GOAL_ABSENT_GOAL_NEWER"), "sf-telemetry": ("changes", "GOAL_ABSENT_OLD_NEWER"),
    "sf-gateway": ("changes", "GOAL_ABSENT_GOAL_NEWER"),
}
FRAUD = f"/subscriptions/{PAYMENTS}/resourcegroups/rg-pay-dr/providers/microsoft.servicefabric/clusters/sf-fraud"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlannedTwin]:
    twin = with_plan(start_twin("fleet", time_scale=FAST, state_dir=tmp_path_factory.mktemp("fleet-twin")))
    yield twin
    twin.stop()


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("fleet-state"))


def sfmigrate(twin: PlannedTwin, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A fresh process, as an operator runs it (the SDK's models are built anew in each)."""
    return subprocess.run([sys.executable, "-m", "migrate", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **twin.env})


def fleet_path(twin: PlannedTwin) -> str:
    return str(Path(twin.state_dir) / "fleet.yaml")


def subset_fleet(twin: Any, names: set[str], target: Path) -> Path:
    """The twin's fleet file with only the named clusters."""
    document = yaml.safe_load((Path(twin.state_dir) / "fleet.yaml").read_text())
    document["clusters"] = [c for c in document["clusters"] if name(c["id"]) in names]
    assert len(document["clusters"]) == len(names)
    target.write_text(yaml.safe_dump(document))
    return target


def last_event(stdout: str) -> dict[str, Any]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")][-1]


def name(cluster_id: str) -> str:
    return cluster_id.rstrip("/").split("/")[-1]


def test_fleet_plan_in_a_fresh_process_observes_every_cluster_and_exits_3_for_sf_fraud(fleet: PlannedTwin) -> None:
    """Also the regression test of the SDK model race (migrate.fleet.sdk_warmup): 13 discoveries at once in a new
    process, and not one cluster reported as not observed."""
    done = sfmigrate(fleet, "fleet", "plan", fleet_path(fleet), "--format", "json")
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    rows = {name(row["cluster"]): row for row in report["clusters"]}
    assert {n: (row["status"], row["starting_state"]) for n, row in rows.items()} == EXPECTED, [r["error"] for r in rows.values()]
    assert report["summary"] == {"clusters": 13, "changes": 11, "ok": 1, "blocked": 1}
    assert rows["sf-fraud"]["blocking_findings"] == ["ISSUER_NOT_PINNED"]
    assert all(row["error"] is None and not row["blocking_findings"] for n, row in rows.items() if n != "sf-fraud")
    assert rows["sf-search"]["steps"] == 0 and all(rows[n]["steps"] > 0 for n, (s, _) in EXPECTED.items() if s == "changes")
    assert requests_json(fleet)["mutating"] == 0


def test_the_sdk_model_warm_up_builds_the_certificate_models_tables_in_a_new_process() -> None:
    """The warm-up fleet plan/apply run before fanning out prepares the model classes the race hit (LifetimeAction's
    Action: "'dict' object has no attribute 'action_type'"), and a second call prepares nothing."""
    code = ("from migrate.fleet.sdk_warmup import warm_up_sdk_models\n"
            "from azure.keyvault.certificates._generated._utils.model_base import Model\n"
            "first, again = warm_up_sdk_models(), warm_up_sdk_models()\n"
            "print(first, again, sorted(n.rsplit('.', 1)[1] for n in Model._calculated))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    first, again, names = done.stdout.split(" ", 2)
    assert int(first) > 0 and int(again) == 0, done.stderr
    assert "'Action'" in names and "'LifetimeAction'" in names and "'CertificateBundle'" in names


def test_sf_kvready_declares_the_goal_by_thumbprint_first_and_its_extension_step_touches_only_the_sf_extension(fleet: PlannedTwin) -> None:
    """The Key Vault extension already observes the goal on kvr0, but the cluster does not declare it: the doc's
    table still needs the goal as secondary by thumbprint first (GOAL_ABSENT_GOAL_NEWER), with its versioned VMSS
    secret for the cut-over window (a node created before the conversion must present the declared thumbprint, not
    a renewed version the extension would fetch); the extension step then changes the SF extension only."""
    done = sfmigrate(fleet, "plan", str(Path(fleet.state_dir) / "plan-sf-kvready.yaml"), "--format", "json")
    assert done.returncode == 2, done.stderr
    plan = json.loads(done.stdout)
    assert plan["starting_state"] == "GOAL_ABSENT_GOAL_NEWER"
    steps = {step["name"]: step for step in plan["steps"]}
    assert list(steps) == ["stage-goal:kvr0", "declare-goal-secondary", "install-kv-extension:kvr0", "convert-cluster"]
    extension_paths = [change["path"] for change in steps["install-kv-extension:kvr0"]["changes"]]
    assert extension_paths and all("kvr0_ServiceFabricNode" in path for path in extension_paths), extension_paths
    assert not any(step["kind"] in ("ensure_identity", "grant_vault_access") for step in plan["steps"])  # in place already


def test_fleet_apply_at_concurrency_12_converts_every_unblocked_cluster_and_never_writes_to_sf_fraud(fleet: PlannedTwin, state: str) -> None:
    done = sfmigrate(fleet, "fleet", "apply", fleet_path(fleet), "--state", state, "--yes", "--concurrency", "12", "--output", "json")
    assert done.returncode == 3, done.stderr[-3000:]
    result = last_event(done.stdout)
    outcomes = {name(c["cluster"]): c["outcome"] for c in result["clusters"]}
    assert outcomes == {n: {"changes": "done", "ok": "nothing-to-do", "blocked": "skipped-blocked"}[s] for n, (s, _) in EXPECTED.items()}
    for cluster in world_json(fleet)["clusters"]:
        if name(cluster["id"]) == "sf-fraud":
            assert cluster["declaration"] == "thumbprint"
            continue
        assert cluster["declaration"] == "common_name", cluster["id"]
        assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    log = requests_json(fleet)["requests"]
    to_fraud = [r for r in log if r["mutating"] and r["path"].lower().startswith(FRAUD)]
    assert to_fraud == [] and any(r["path"].lower().startswith(FRAUD) for r in log)  # read, never written


def test_the_rerun_sends_no_write_and_still_skips_sf_fraud(fleet: PlannedTwin, state: str) -> None:
    before = requests_json(fleet)["mutating"]
    done = sfmigrate(fleet, "fleet", "apply", fleet_path(fleet), "--state", state, "--yes", "--concurrency", "12", "--output", "json")
    assert done.returncode == 3, done.stderr[-3000:]
    outcomes = {name(c["cluster"]): c["outcome"] for c in last_event(done.stdout)["clusters"]}
    assert outcomes.pop("sf-fraud") == "skipped-blocked" and set(outcomes.values()) == {"nothing-to-do"}
    assert requests_json(fleet)["mutating"] == before


class RecordingBudget(WriteBudget):
    """The product's write budget, also recording the pauses it was told of (as test_fleet_write_budget)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pauses: list[tuple[str, float]] = []

    def pause(self, subscription: str, seconds: float) -> None:
        self.pauses.append((subscription.lower(), seconds))
        super().pause(subscription, seconds)


def test_a_429_storm_on_payments_slows_payments_only(twin_factory: Any, tmp_path: Path) -> None:
    """Half of Payments' requests answer 429 with a Retry-After, on five of the fleet's clusters (two in Payments,
    three elsewhere; the whole fleet would only repeat the same evidence at twice the cost): every pause of the
    fleet's budget is Payments', no other subscription's writer ever waited, every other write went once (no 429,
    no retry), and every cluster still converges (the fleet's gateways keep honouring Retry-After)."""
    twin = twin_factory("fleet", faults=f"subscription={PAYMENTS},kinds=429,rate=0.5,seed=11,retry_after_ms=50")
    path = subset_fleet(twin, {"sf-payments", "sf-ledger", "sf-catalog", "sf-returns", "sf-gateway"}, tmp_path / "fleet.yaml")
    session = open_fleet_session(load_fleet(path), poll_interval=0.02, retry_backoff=0.05)
    budget = session.budget = RecordingBudget()
    run = RunOptions(backoff=0.05)  # a step's own retries, paced for the twin's fast clock (as retry_backoff)
    result = fleet_apply(load(path, session=session), FleetApplyOptions(str(tmp_path / "state"), concurrency=12, run=run))
    assert int(result.exit_code) == 0, [(c.label, c.outcome, c.detail[:300]) for c in result.clusters if c.outcome != "done"]
    log = requests_json(twin)["requests"]
    throttled = [r for r in log if r["status"] == 429]
    assert throttled and all(r["path"].lower().startswith(f"/subscriptions/{PAYMENTS}/") for r in throttled)
    throttled_writes = [r for r in throttled if r["method"] in ("PUT", "PATCH", "POST", "DELETE")]  # refused: not applied
    assert {sub for sub, _ in budget.pauses} == {PAYMENTS} and len(budget.pauses) == len(throttled_writes) > 0
    assert set(budget.waited) <= {PAYMENTS}  # the budget never held back a Production or Platform write
    elsewhere = [r for r in log if r["mutating"] and not r["path"].lower().startswith(f"/subscriptions/{PAYMENTS}/")]
    assert elsewhere and all(r["status"] < 400 for r in elsewhere)  # every other write went once, never retried
    converted = {name(c["id"]) for c in world_json(twin)["clusters"] if c["declaration"] == "common_name" and c["health_worst"] == "Healthy"}
    assert {c.label for c in result.clusters} <= converted
