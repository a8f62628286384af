"""Step (Linux node types): keep the goal a versioned VMSS secret and declare it on the Service Fabric extension
by common name, without the Key Vault extension: ServiceFabricLinuxNode reads waagent's <THUMBPRINT>.crt/.prv
files and /var/lib/sfcerts, not KeyVaultForLinux's (microsoft/service-fabric#1308). After a renewal the same
step is the rotation: it adds the new version's secret and rolls it out (runbooks/findings/LINUX_DELIVERY_BY_VMSS_SECRET.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..step_types import StepParams, register
from ..transforms import deliver_by_secret
from .base import StepContext, change_scale_set

if TYPE_CHECKING:
    from ..plan import Step

KIND = "deliver_by_secret"


class Params(StepParams):
    vmss_id: str
    vault_id: str
    secret_url: str  # the goal's latest versioned secret URL
    common_name: str


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    return change_scale_set(
        ctx, p.vmss_id,
        lambda raw: deliver_by_secret(raw, vault_id=p.vault_id, secret_url=p.secret_url, common_name=p.common_name),
    )
