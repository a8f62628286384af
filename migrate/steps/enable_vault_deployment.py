"""Step: enable the vault for deployment, so CRP can deliver the goal as a VMSS secret
(runbooks/steps/enable-vault-deployment.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..step_types import StepParams, register
from .base import StepContext

if TYPE_CHECKING:
    from ..plan import Step

KIND = "enable_vault_deployment"


class Params(StepParams):
    vault_id: str


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    vault_id = step.typed(Params).vault_id
    vault = ctx.gateway.get_vault(vault_id)
    if (vault.get("properties") or {}).get("enabledForDeployment"):
        return {"enabled_for_deployment": True, "changed": False}
    ctx.emit("change", step=ctx.step_name, resource=vault_id, properties=1)
    ctx.gateway.patch_vault(vault_id, {"enabledForDeployment": True})
    return {"enabled_for_deployment": True, "changed": True}
