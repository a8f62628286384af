"""Step: install the goal certificate on a node type by versioned VMSS secret and declare it on the
Service Fabric extension by thumbprint — before the cluster declares it (install before declaring, https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..step_types import StepParams, register
from ..transforms import stage_goal
from .base import StepContext, change_scale_set

if TYPE_CHECKING:
    from ..plan import Step

KIND = "stage_goal"


class Params(StepParams):
    vmss_id: str
    vault_id: str
    secret_url: str  # the goal's versioned secret URL
    primary: str  # thumbprints the SF extension declares
    secondary: str | None = None


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    return change_scale_set(
        ctx, p.vmss_id,
        lambda raw: stage_goal(raw, vault_id=p.vault_id, secret_url=p.secret_url, primary=p.primary, secondary=p.secondary),
    )
