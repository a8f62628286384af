"""One module per step kind; each declares ``KIND``, a typed ``Params`` class and registers
``run(ctx, step) -> observed`` in the registry (migrate.step_types). Importing this package registers them."""

from __future__ import annotations

from ..step_types import STEP_REGISTRY, RunStep
from . import (  # noqa: F401  (each module registers its kind on import)
    cleanup_secrets, convert_cluster, deliver_by_secret, enable_vault_deployment, ensure_identity, grant_vault_access,
    install_kv_extension, set_cluster_certificate, stage_goal,
)

STEP_KINDS: dict[str, RunStep] = {kind: STEP_REGISTRY.get(kind).run for kind in STEP_REGISTRY}
CUTOVER_KIND = convert_cluster.KIND
