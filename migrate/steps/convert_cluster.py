"""Step: the cutover — declare the cluster certificate by common name with pinned issuers.

A full PUT of the cluster without ``certificate`` (a PATCH cannot delete it: the SDK omits None, runbooks/steps/convert-cluster.md),
with ``certificateCommonNames``. SFRP splits it into phases (add to validation list, switch presentation,
trim), so mixed nodes keep authenticating each other (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import AzureRequestFailed, StepFailed
from ..readers import declares_common_name
from ..step_types import StepParams, register
from ..transforms import cluster_to_common_name
from .base import StepContext, cluster_upgrade_failed, wait_cluster_ready

if TYPE_CHECKING:
    from ..plan import Step


def _converted(raw: dict[str, Any], common_name: str, issuers: list[str]) -> bool:
    return declares_common_name(raw, common_name, issuers)

KIND = "convert_cluster"


class Params(StepParams):
    cluster_id: str
    common_name: str
    issuers: list[str]  # pinned issuer thumbprints


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    cluster_id = p.cluster_id
    ctx.reattach(cluster_id, cluster_upgrade=True)
    raw = wait_cluster_ready(ctx, cluster_id)
    if not _converted(raw, p.common_name, p.issuers):
        ctx.emit("change", step=ctx.step_name, resource=cluster_id, properties=2)
        try:
            ctx.gateway.put_cluster(cluster_id, cluster_to_common_name(raw, p.common_name, p.issuers), ctx.operation_started)
        except AzureRequestFailed as exc:
            if not ctx.record.operation_url:  # refused up front (an invalid issuer list, no intersection): nothing started
                ctx.operation_finished()
                raise StepFailed(ctx.step_name, f"the conversion upgrade was refused: {exc} (runbooks/failures/issuer-rekey.md)") from exc
            raise cluster_upgrade_failed(ctx, cluster_id, exc, lambda now: _converted(now, p.common_name, p.issuers)) from exc
        ctx.upgrade_ended()  # journaled with the operation's end (ARM reports the upgrade Succeeded)
        ctx.operation_finished()
        raw = wait_cluster_ready(ctx, cluster_id)
    else:
        ctx.change_found_in_place()
    if not _converted(raw, p.common_name, p.issuers):
        raise StepFailed(ctx.step_name, "the cluster is not declared by the expected common name after the upgrade")
    return {"declaration": "common_name", "common_name": p.common_name, "issuers": p.issuers, **ctx.upgrade_mark()}
