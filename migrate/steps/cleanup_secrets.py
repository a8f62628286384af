"""Step (optional): after the conversion, remove the old certificates' VMSS secrets and the goal's versioned
ones (kept through the cut-over window; the Key Vault extension delivers the goal from then on). This does
not remove the certificates from the VMs (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq; runbooks/steps/cleanup-secrets.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..step_types import StepParams, register
from ..transforms import remove_secrets
from .base import StepContext, change_scale_set

if TYPE_CHECKING:
    from ..plan import Step

KIND = "cleanup_secrets"


class Params(StepParams):
    vmss_id: str
    urls: list[str]  # the versioned secret URLs to drop: old certificates', then the goal's


def widen(fresh: Step, kept: Step) -> Step:
    """A resumed run's cleanup: the fresh plan's step (the goal's secrets) plus the URLs the journal kept from
    the run's start (the old certificates', which a converted cluster no longer names)."""
    urls = list(fresh.typed(Params).urls)
    extra = [u for u in kept.typed(Params).urls if u.lower() not in {x.lower() for x in urls}]
    if not extra:
        return fresh
    return replace(fresh, params=Params(vmss_id=fresh.typed(Params).vmss_id, urls=urls + extra),
                   changes=fresh.changes + [c for c in kept.changes if c not in fresh.changes])


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.typed(Params)
    return change_scale_set(ctx, p.vmss_id, lambda raw: remove_secrets(raw, p.urls))
