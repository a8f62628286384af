"""Pure rules behind resuming and naming steps (regressions from review)."""

from __future__ import annotations

from migrate.azure_devops import AzureDevOps, plain
from migrate.journal import JournalState
from migrate.plan import Plan, Step
from migrate.arm_ids import scope_covers as _scope_covers
from migrate.planner import _labels
from migrate.step_types import step_registry
from migrate.runner import carried_over, merge_journal, one_line
from snapshots import RG, node_type, vmss_id


def _plan(*steps: Step) -> Plan:
    return Plan("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceFabric/clusters/c", "X", [], list(steps), "t", "fp")


def _step(name: str, kind: str = "stage_goal", params: dict | None = None) -> Step:
    defaults = {"stage_goal": {"vmss_id": "x", "vault_id": "v", "secret_url": "u", "primary": "A"},
                "convert_cluster": {"cluster_id": "c", "common_name": "cn", "issuers": ["I"]}}
    return Step(name, kind, name, [], [], step_registry().get(kind).params.model_validate(params or defaults[kind]))


def test_a_resumed_run_runs_every_step_of_the_fresh_plan_even_one_done_before() -> None:
    first = merge_journal(None, _plan(_step("a"), _step("b"), _step("c")), "run-1")
    first.step("a").status = first.step("b").status = "done"
    first.status = "stopped"
    resumed = merge_journal(first, _plan(_step("b"), _step("c")), "run-2")
    assert resumed.step("a").status == "done"  # converged: no longer needed
    assert resumed.step("b").status == "pending"  # needed again (a rotation undid it)
    assert resumed.step("c").status == "pending"


def test_an_unfinished_cleanup_is_carried_over_when_the_fresh_plan_cannot_rediscover_it() -> None:
    cleanup = _step("cleanup-secrets:nt0", "cleanup_secrets", {"vmss_id": "x", "urls": ["u"]})
    first = merge_journal(None, _plan(_step("convert-cluster", "convert_cluster"), cleanup), "run-1")
    first.step("convert-cluster").status = "done"
    first.status = "stopped"
    resumed = merge_journal(first, _plan(), "run-2")
    step = carried_over(resumed.step("cleanup-secrets:nt0"))
    assert step is not None and step.kind == "cleanup_secrets" and step.params_dict() == {"vmss_id": "x", "urls": ["u"]}
    assert resumed.step("cleanup-secrets:nt0").status == "pending"
    again = JournalState.from_dict(resumed.to_dict())  # the intent survives the journal's JSON
    assert carried_over(again.step("cleanup-secrets:nt0")) is not None


def test_replan_adopts_the_new_plan_file() -> None:
    first = merge_journal(None, _plan(_step("a")), "run-1")
    first.status = "failed"
    changed = _plan(_step("a"))
    changed.spec_fingerprint = "new"
    resumed = merge_journal(first, changed, "run-2", replan=True)
    assert resumed.spec_fingerprint == "new"


def test_scale_sets_with_the_same_name_get_distinct_step_labels() -> None:
    a, b, c = node_type("nt0"), node_type("nt0"), node_type("nt1")
    b.vmss_id = vmss_id("nt0").replace(f"/resourceGroups/{RG}/", "/resourceGroups/rg-other/")
    labels = _labels([a, b, c])
    assert len(set(labels.values())) == 3
    assert labels[c.vmss_id] == "nt1"


def test_only_role_assignments_at_or_above_the_vault_count() -> None:
    vault = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
    assert _scope_covers("/subscriptions/s", vault)
    assert _scope_covers(vault, vault)
    assert not _scope_covers(vault + "/secrets/app", vault)


def test_errors_become_one_line_without_credentials() -> None:
    text = one_line("failed:\r\n##vso[task.complete result=Succeeded]\nsee https://x.blob.core.windows.net/c/s.ps1?sv=1&sig=abcdefghijklmnopqrstu")
    assert "\n" not in text and "\r" not in text
    assert "sig=abcdef" not in text
    # the agent executes ##vso[ anywhere in a line (issue 13): plain() also neutralizes it
    assert plain("a\r\n##vso[task.setvariable variable=x]y") == "a **vso[task.setvariable variable=x]y"


def test_pipeline_lines_never_start_an_injected_command() -> None:
    import io

    stream = io.StringIO()
    AzureDevOps(stream)({"type": "step-failed", "step": "s", "time": "2026-01-01T00:00:00Z",
                         "detail": {"error": "bad\r\n##vso[task.complete result=Succeeded]"}})
    assert [line for line in stream.getvalue().splitlines() if line.startswith("##vso")] == []
