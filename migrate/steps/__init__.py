"""One module per step; each exposes ``run(ctx, step) -> observed``. The runner finds them by ``Step.kind``."""

from __future__ import annotations

from typing import Any, Callable

from . import (
    cleanup_secrets, convert_cluster, enable_vault_deployment, ensure_identity, grant_vault_access,
    install_kv_extension, set_cluster_certificate, stage_goal,
)

STEP_KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    "ensure_identity": ensure_identity.run,
    "grant_vault_access": grant_vault_access.run,
    "enable_vault_deployment": enable_vault_deployment.run,
    "stage_goal": stage_goal.run,
    "set_cluster_certificate": set_cluster_certificate.run,
    "install_kv_extension": install_kv_extension.run,
    "convert_cluster": convert_cluster.run,
    "cleanup_secrets": cleanup_secrets.run,
}
CUTOVER_KIND = "convert_cluster"
