"""Step (optional): remove the old certificates' VMSS secrets after the conversion. This does not remove
the certificates from the VMs (research/sf_migration.md §4.1; runbooks/steps/cleanup-secrets.md)."""

from __future__ import annotations

from typing import Any

from ..plan import Step
from ..transforms import remove_secrets
from .base import StepContext, change_scale_set


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    p = step.params
    return change_scale_set(ctx, p["vmss_id"], lambda raw: remove_secrets(raw, p["urls"]))
