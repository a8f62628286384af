"""Step: swap a node type's VMSS secret for the Key Vault extension: the identity on the VMSS, the
extension observing the goal's versionless /secrets/ URL with ``msiClientId``, the Service Fabric extension
by ``commonNames`` provisioning after it (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn). The goal's versioned secret stays until the cleanup
phase: the cluster still declares the goal by thumbprint (runbooks/steps/install-kv-extension.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import OperationalError, StepFailed
from ..step_types import StepParams, register
from ..spec import KeyVaultExtensionSpec
from ..transforms import swap_to_kv_extension
from .base import StepContext, change_scale_set
from .grant_propagation import JOURNAL_KEY, wait_for_grant

if TYPE_CHECKING:
    from ..plan import Step

KIND = "install_kv_extension"


class Params(StepParams):
    vmss_id: str
    identity_id: str
    observed_url: str  # the goal's versionless /secrets/ URL
    common_name: str
    kv: KeyVaultExtensionSpec
    # The goal's versioned VMSS secret stays until the cleanup phase (the cut-over window); plans written
    # before that carry false (they removed it here), and run as they were shown.
    keep_goal_secret: bool = True


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    identity = ctx.gateway.get_identity(p.identity_id)
    client_id = (identity or {}).get("properties", {}).get("clientId")
    if not client_id:
        raise StepFailed(ctx.step_name, f"the identity {p.identity_id} does not exist or has no client id")

    def swap(raw: dict[str, Any]) -> dict[str, Any]:
        return swap_to_kv_extension(
            raw, identity_id=p.identity_id, client_id=client_id, observed_url=p.observed_url,
            common_name=p.common_name, kv=p.kv, keep_goal_secret=p.keep_goal_secret,
        )

    try:
        observed = change_scale_set(ctx, p.vmss_id, swap)
    except OperationalError as failure:
        # A fresh vault grant still propagating: wait and run the extension again, then make the writes the
        # failed rollout kept back (under Automatic/Rolling each write rolls out before the next).
        ctx.operation_finished()  # the failed operation is over and handled here: a resumed run must not re-attach to it
        waited = wait_for_grant(ctx, p.vmss_id, p.identity_id, failure)
        observed = change_scale_set(ctx, p.vmss_id, swap)
        observed[JOURNAL_KEY] = waited[JOURNAL_KEY]
    observed["msi_client_id"] = client_id
    return observed
