"""Step: swap a node type's VMSS secret for the Key Vault extension: the identity on the VMSS, the
extension observing the goal's versionless /secrets/ URL with ``msiClientId``, the Service Fabric extension
by ``commonNames`` provisioning after it, and the goal's versioned secret removed (DESIGN §2).
"""

from __future__ import annotations

from typing import Any

from ..errors import StepFailed
from ..plan import Step
from ..spec import KeyVaultExtensionSpec
from ..transforms import swap_to_kv_extension
from .base import StepContext, change_scale_set


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.params
    identity = ctx.gateway.get_identity(p["identity_id"])
    client_id = (identity or {}).get("properties", {}).get("clientId")
    if not client_id:
        raise StepFailed(ctx.step_name, f"the identity {p['identity_id']} does not exist or has no client id")
    kv = KeyVaultExtensionSpec(**p["kv"])
    observed = change_scale_set(
        ctx, p["vmss_id"],
        lambda raw: swap_to_kv_extension(
            raw, identity_id=p["identity_id"], client_id=client_id, observed_url=p["observed_url"],
            common_name=p["common_name"], kv=kv, keep_goal_secret=bool(p.get("keep_goal_secret")),
        ),
    )
    observed["msi_client_id"] = client_id
    return observed
