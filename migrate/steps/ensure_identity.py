"""Step: create the user-assigned identity the Key Vault extension authenticates with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..step_types import StepParams, register
from .base import StepContext

if TYPE_CHECKING:
    from ..plan import Step

KIND = "ensure_identity"


class Params(StepParams):
    identity_id: str
    location: str


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    identity_id = p.identity_id
    found = ctx.gateway.get_identity(identity_id)
    if found is None:
        ctx.emit("change", step=ctx.step_name, resource=identity_id, properties=1)
        found = ctx.gateway.put_identity(identity_id, p.location)
    properties = found.get("properties") or {}
    return {"principal_id": properties.get("principalId"), "client_id": properties.get("clientId")}
