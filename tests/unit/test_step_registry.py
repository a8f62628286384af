"""Typed steps (issue 9 §2): one registry of kinds, each with its parameter class; one JSON form of a step
that reads back validated; duplicate kinds and duplicate step names refused."""

from __future__ import annotations

import io

import pytest

from migrate.azure_devops import AzureDevOps, finish_apply
from migrate.commands import ApplyResult
from migrate.errors import StoppedAtRequest, UsageError
from migrate.plan import Plan, Step
from migrate.step_types import StepParams, StepRegistry, step_registry
from migrate.steps import STEP_KINDS, cleanup_secrets, grant_vault_access, stage_goal
from migrate.vault_access import SECRETS_USER_ROLE

VMSS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/nt0"


def cleanup(name: str = "cleanup-secrets:nt0") -> Step:
    return Step(name, cleanup_secrets.KIND, "Remove old secrets", [VMSS], [], cleanup_secrets.Params(vmss_id=VMSS, urls=["u"]))


def test_every_step_module_registers_its_kind_with_a_params_class() -> None:
    registry = step_registry()
    assert set(registry) == set(STEP_KINDS) and len(registry) == 9
    for kind in registry:
        assert issubclass(registry.get(kind).params, StepParams)


def test_registering_a_kind_twice_is_refused() -> None:
    registry = StepRegistry()

    class Params(StepParams):
        x: int

    registry.register("k", Params)(lambda ctx, step: {})
    with pytest.raises(ValueError, match="step kind 'k' is registered twice"):
        registry.register("k", Params)(lambda ctx, step: {})
    with pytest.raises(ValueError, match="registered twice"):
        step_registry().register(stage_goal.KIND, stage_goal.Params)(stage_goal.run)


def test_a_step_name_is_used_once_per_plan() -> None:
    plan = Plan("/c", "X", [], [], "t", "fp")
    plan.add_step(cleanup())
    with pytest.raises(ValueError, match="used twice"):
        plan.add_step(cleanup())


def test_a_step_refuses_params_of_another_kind() -> None:
    with pytest.raises(TypeError, match="must be Params"):
        Step("x", stage_goal.KIND, "t", [], [], cleanup_secrets.Params(vmss_id=VMSS, urls=[]))


def test_the_json_form_reads_back_to_the_same_typed_step() -> None:
    step = Step("grant-vault-access", grant_vault_access.KIND, "Grant", ["/v"], [],
                grant_vault_access.Params(vault_id="/v", rbac=True, identity_id="/i", role=SECRETS_USER_ROLE), why="rule")
    again = Step.from_dict(step.to_dict())
    assert again == step and isinstance(again.params, grant_vault_access.Params) and again.params.role == SECRETS_USER_ROLE


def test_a_role_other_than_the_codes_rule_does_not_read_back() -> None:
    """Issue 13: the role granted is Key Vault Secrets User, a rule of the code; a file naming another is refused."""
    step = Step("grant-vault-access", grant_vault_access.KIND, "Grant", ["/v"], [],
                grant_vault_access.Params(vault_id="/v", rbac=True, identity_id="/i", role=SECRETS_USER_ROLE)).to_dict()
    step["params"]["role"] = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"  # Owner
    with pytest.raises(UsageError, match="params.role"):
        Step.from_dict(step)


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "a", "kind": "nope"}, "step.kind: unknown step kind 'nope'"),
    ({"name": "a", "kind": "cleanup_secrets", "params": {"vmss_id": 3, "urls": []}}, "step.params.vmss_id: Input should be a valid string"),
    ({"kind": "cleanup_secrets", "params": {"vmss_id": "v", "urls": []}}, "step.name: a step needs a name"),
    ({"name": "a", "kind": "cleanup_secrets", "params": {"vmss_id": "v", "urls": []}, "changes": "x"}, "step.changes"),
    ([], "step: not a JSON object"),
])
def test_a_malformed_step_is_a_usage_error_naming_the_field(data: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        Step.from_dict(data)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_finish_apply_reports_a_requested_stop_as_success_with_issues_and_a_completion_as_success() -> None:
    out = io.StringIO()
    finish_apply(AzureDevOps(out), error=StoppedAtRequest("stopped before step 'convert-cluster'"))
    plan = Plan("/c", "X", [], [cleanup()], "t", "fp")
    finish_apply(AzureDevOps(out), ApplyResult(plan, None))
    assert out.getvalue().splitlines() == [
        "##vso[task.setvariable variable=migrationStatus;isOutput=true]StoppedAtRequest",
        "##vso[task.complete result=SucceededWithIssues]stopped before step 'convert-cluster'",
        "##vso[task.setvariable variable=migrationStatus;isOutput=true]complete",
        "##vso[task.complete result=Succeeded]1 steps applied",
    ]
