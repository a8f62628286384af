"""Step (optional): remove the old certificates' VMSS secrets after the conversion. This does not remove
the certificates from the VMs (research/sf_migration.md §4.1; runbooks/steps/cleanup-secrets.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..step_types import StepParams, register
from ..transforms import remove_secrets
from .base import StepContext, change_scale_set

if TYPE_CHECKING:
    from ..plan import Step

KIND = "cleanup_secrets"


class Params(StepParams):
    vmss_id: str
    urls: list[str]  # the old certificates' versioned secret URLs to drop


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    return change_scale_set(ctx, p.vmss_id, lambda raw: remove_secrets(raw, p.urls))
