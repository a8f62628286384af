"""Step: a cluster upgrade that changes the thumbprint declaration (the doc table's upgrades).

SFRP accepts one change at a time (no 2->2, no add-and-remove, runbooks/steps/set-cluster-certificate.md); the planner orders them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import AzureRequestFailed, StepFailed
from ..readers import cluster_states, declared_thumbprints
from ..step_types import StepParams, register
from ..transforms import cluster_thumbprint_patch
from .base import StepContext, cluster_upgrade_failed, wait_cluster_ready

if TYPE_CHECKING:
    from ..plan import Step


def _declared(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    return declared_thumbprints(raw)

KIND = "set_cluster_certificate"


class Params(StepParams):
    cluster_id: str
    primary: str  # thumbprint
    secondary: str | None = None


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    cluster_id = p.cluster_id
    wanted = (p.primary.upper(), (p.secondary or "").upper() or None)
    ctx.reattach(cluster_id, cluster_upgrade=True)
    raw = wait_cluster_ready(ctx, cluster_id)
    if _declared(raw) != wanted:
        store = ((raw.get("properties") or {}).get("certificate") or {}).get("x509StoreName") or "My"
        ctx.emit("change", step=ctx.step_name, resource=cluster_id, properties=1)
        try:
            ctx.gateway.patch_cluster(cluster_id, cluster_thumbprint_patch(p.primary, p.secondary, store), ctx.operation_started)
        except AzureRequestFailed as exc:
            if not ctx.record.operation_url:  # refused up front (2 -> 2, add and remove at once): nothing started
                ctx.operation_finished()
                raise StepFailed(ctx.step_name, f"the cluster upgrade was refused: {exc}") from exc
            raise cluster_upgrade_failed(ctx, cluster_id, exc, lambda now: _declared(now) == wanted) from exc
        ctx.upgrade_ended()  # journaled with the operation's end (ARM reports the upgrade Succeeded)
        ctx.operation_finished()
        raw = wait_cluster_ready(ctx, cluster_id)
    else:
        ctx.change_found_in_place()
    if _declared(raw) != wanted:
        raise StepFailed(ctx.step_name, f"the cluster declares {_declared(raw)} after the upgrade, not {wanted}")
    return {"thumbprint": wanted[0], "thumbprintSecondary": wanted[1], "cluster_state": cluster_states(raw)[0], **ctx.upgrade_mark()}
