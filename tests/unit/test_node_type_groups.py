"""Node types in parallel (issue 15), the pure parts: which steps run together (runner.step_groups), the
Manual policy's walk over update domains across node types (steps.domain_walk), and the option's bounds."""

from __future__ import annotations

import threading
import time

import pytest

from migrate.errors import UsageError
from migrate.plan import Step
from migrate.runner import RunOptions, step_groups
from migrate.steps import cleanup_secrets, deliver_by_secret, enable_vault_deployment, set_cluster_certificate, stage_goal
from migrate.steps.domain_walk import Cancellation, RunCancelled, UpdateDomainWalk

VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/"


def _stage(nt: str) -> Step:
    params = stage_goal.Params(vmss_id=VMSS + nt, vault_id="v", secret_url="u", primary="A" * 40)
    return Step(f"stage-goal:{nt}", "stage_goal", "", [VMSS + nt], [], params)


def _deliver(nt: str) -> Step:
    params = deliver_by_secret.Params(vmss_id=VMSS + nt, vault_id="v", secret_url="u", common_name="cn")
    return Step(f"deliver-by-secret:{nt}", "deliver_by_secret", "", [VMSS + nt], [], params)


def _cleanup(nt: str) -> Step:
    return Step(f"cleanup-secrets:{nt}", "cleanup_secrets", "", [VMSS + nt], [], cleanup_secrets.Params(vmss_id=VMSS + nt, urls=["u"]))


def _cluster(name: str) -> Step:
    return Step(name, "set_cluster_certificate", "", ["c"], [], set_cluster_certificate.Params(cluster_id="c", primary="A" * 40), cluster_upgrade=True)


def _names(groups: list[list[Step]]) -> list[list[str]]:
    return [[s.name for s in g] for g in groups]


def test_consecutive_steps_of_one_phase_on_distinct_scale_sets_run_together() -> None:
    steps = [_stage("nt0"), _stage("nt1"), _cluster("declare"), _deliver("nt0"), _deliver("nt1"), _cleanup("nt0"), _cleanup("nt1")]
    assert _names(step_groups(steps, None)) == [
        ["stage-goal:nt0", "stage-goal:nt1"], ["declare"], ["deliver-by-secret:nt0", "deliver-by-secret:nt1"],
        ["cleanup-secrets:nt0", "cleanup-secrets:nt1"],  # a rotation's delivery and cleanup are two phases
    ]


def test_concurrency_one_is_todays_order_and_n_bounds_a_group() -> None:
    steps = [_stage("nt0"), _stage("nt1"), _stage("nt2")]
    assert _names(step_groups(steps, 1)) == [["stage-goal:nt0"], ["stage-goal:nt1"], ["stage-goal:nt2"]]
    assert _names(step_groups(steps, 2)) == [["stage-goal:nt0", "stage-goal:nt1"], ["stage-goal:nt2"]]


def test_a_step_between_cuts_the_group_and_until_starts_its_own() -> None:
    vault = Step("enable-vault-deployment", "enable_vault_deployment", "", ["v"], [], enable_vault_deployment.Params(vault_id="v"))
    assert _names(step_groups([_deliver("nt0"), vault, _deliver("nt1")], None)) == [
        ["deliver-by-secret:nt0"], ["enable-vault-deployment"], ["deliver-by-secret:nt1"]]
    assert _names(step_groups([_cleanup("nt0"), _cleanup("nt1"), _cleanup("nt2")], None, until="cleanup-secrets:nt1")) == [
        ["cleanup-secrets:nt0"], ["cleanup-secrets:nt1", "cleanup-secrets:nt2"]]  # the run stops before the second group


@pytest.mark.parametrize("value", [0, -3])
def test_node_type_concurrency_below_one_is_refused_naming_the_option(value: int) -> None:
    with pytest.raises(UsageError, match="--node-type-concurrency"):
        RunOptions(node_type_concurrency=value)


def test_the_walk_lets_domain_d_start_only_when_every_node_type_is_past_the_domains_below() -> None:
    walk = UpdateDomainWalk(["a", "b", "auto"])
    walk.plan("a", [0, 1, 2])
    assert not walk.may_start("a", 0)  # b has not said which domains it upgrades; auto has not left
    walk.leave("auto")  # an Automatic node type takes no part
    walk.plan("b", [0, 1])
    assert walk.may_start("a", 0) and walk.may_start("b", 0)
    walk.done("a", 0)
    assert not walk.may_start("a", 1)  # b is still on domain 0
    walk.done("b", 0)
    assert walk.may_start("a", 1) and walk.may_start("b", 1)


def test_threads_walk_the_domains_in_lockstep() -> None:
    walk, order, lock = UpdateDomainWalk(["a", "b"]), [], threading.Lock()

    def member(name: str, pause: float) -> None:
        walk.plan(name, [0, 1, 2])
        for domain in (0, 1, 2):
            walk.turn(name, domain, time.monotonic() + 10, lambda: None, poll=0.01)
            time.sleep(pause)  # one node type is slower than the other
            with lock:
                order.append(domain)
            walk.done(name, domain)

    threads = [threading.Thread(target=member, args=(n, p)) for n, p in (("a", 0.0), ("b", 0.05))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert order == [0, 0, 1, 1, 2, 2]


def test_a_stopped_run_wakes_a_member_waiting_its_turn() -> None:
    walk, cancellation = UpdateDomainWalk(["a", "b"]), Cancellation()
    walk.plan("a", [1])
    cancellation.stop("interrupted", waits=True)
    with pytest.raises(RunCancelled):
        walk.turn("a", 1, time.monotonic() + 10, cancellation.check, poll=0.01)
    with pytest.raises(RunCancelled):
        cancellation.sleep(5)


def test_a_failed_sibling_stops_writes_but_not_waits() -> None:
    cancellation = Cancellation()
    cancellation.stop("step x failed", waits=False)
    cancellation.check()  # waiting for what was sent goes on
    with pytest.raises(RunCancelled, match="step x failed"):
        cancellation.check(writing=True)
