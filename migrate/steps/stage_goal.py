"""Step: install the goal certificate on a node type by versioned VMSS secret and declare it on the
Service Fabric extension by thumbprint — before the cluster declares it (install before declaring, DESIGN §2).
"""

from __future__ import annotations

from typing import Any

from ..plan import Step
from ..transforms import stage_goal
from .base import StepContext, change_scale_set


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.params
    return change_scale_set(
        ctx, p["vmss_id"],
        lambda raw: stage_goal(raw, vault_id=p["vault_id"], secret_url=p["secret_url"], primary=p["primary"], secondary=p["secondary"]),
    )
