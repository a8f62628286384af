"""Step: create the user-assigned identity the Key Vault extension authenticates with."""

from __future__ import annotations

from typing import Any

from ..plan import Step
from .base import StepContext


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    identity_id = step.params["identity_id"]
    found = ctx.gateway.get_identity(identity_id)
    if found is None:
        ctx.emit("change", step=ctx.step_name, resource=identity_id, properties=1)
        found = ctx.gateway.put_identity(identity_id, step.params["location"])
    properties = found.get("properties") or {}
    return {"principal_id": properties.get("principalId"), "client_id": properties.get("clientId")}
