"""Step: let the identity read the vault's secrets — an access policy (secrets get, list) or, on an RBAC
vault, the 'Key Vault Secrets User' role at vault scope (research/sf_migration.md §3.2). Done before the
extension is deployed ("pre-ACL your key vaults").
"""

from __future__ import annotations

import uuid
from typing import Any

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from ..arm_ids import role_definition_id, subscription_of
from ..errors import AzureRequestFailed, StepFailed
from ..plan import Step
from ..vault_access import reads_secrets
from .base import StepContext

_NAMESPACE = uuid.UUID("9a6f2f5e-41a3-4d1c-8e0b-5b2f7c4a9d31")


def _principal_not_replicated(exc: BaseException) -> bool:
    # A new identity's principal can take a while to reach the directory ARM checks (PrincipalNotFound).
    return isinstance(exc, AzureRequestFailed) and exc.code == "PrincipalNotFound"


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    params = step.params
    identity = ctx.gateway.get_identity(params["identity_id"])
    if identity is None:
        raise StepFailed(ctx.step_name, f"the identity {params['identity_id']} does not exist (run ensure-identity first)")
    principal = (identity.get("properties") or {}).get("principalId")
    vault_id = params["vault_id"]
    rbac = bool(params.get("rbac"))
    # Read only what the vault's permission model uses: its role assignments, or its access policies.
    assignments = ctx.gateway.list_role_assignments(vault_id, principal) if rbac else []
    properties = {} if rbac else (ctx.gateway.get_vault(vault_id).get("properties") or {})
    if reads_secrets(
        rbac=rbac, vault_id=vault_id, principal_id=principal, access_policies=properties.get("accessPolicies") or [],
        assignments=[((a.get("properties") or {}).get("scope") or "", (a.get("properties") or {}).get("roleDefinitionId") or "",
                      (a.get("properties") or {}).get("principalId") or "") for a in assignments],
    ):
        return {"principal_id": principal, "changed": False}
    ctx.emit("change", step=ctx.step_name, resource=vault_id, properties=1)
    if rbac:
        role = params["role"]
        definition = role_definition_id(subscription_of(vault_id), role)
        name = str(uuid.uuid5(_NAMESPACE, f"{vault_id.lower()}|{principal}|{role}"))  # deterministic: a repeat is idempotent

        @retry(retry=retry_if_exception(_principal_not_replicated), stop=stop_after_attempt(6),
               wait=wait_exponential(multiplier=max(ctx.poll_interval, 0.05), max=60), reraise=True)
        def assign() -> None:
            ctx.gateway.create_role_assignment(vault_id, name, definition, principal)

        assign()
        return {"principal_id": principal, "role": role, "changed": True}
    ctx.gateway.add_access_policy(vault_id, params.get("tenant_id") or properties.get("tenantId"), principal, ["get", "list"])
    return {"principal_id": principal, "secrets": ["get", "list"], "changed": True}
