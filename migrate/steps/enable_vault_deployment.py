"""Step: enable the vault for deployment, so CRP can deliver the goal as a VMSS secret (research §4.1)."""

from __future__ import annotations

from typing import Any

from ..plan import Step
from .base import StepContext


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    vault_id = step.params["vault_id"]
    vault = ctx.gateway.get_vault(vault_id)
    if (vault.get("properties") or {}).get("enabledForDeployment"):
        return {"enabled_for_deployment": True, "changed": False}
    ctx.emit("change", step=ctx.step_name, resource=vault_id, properties=1)
    ctx.gateway.patch_vault(vault_id, {"enabledForDeployment": True})
    return {"enabled_for_deployment": True, "changed": True}
