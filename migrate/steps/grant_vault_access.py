"""Step: let the identity read the vault's secrets — an access policy (secrets get, list) or, on an RBAC
vault, the 'Key Vault Secrets User' role at vault scope (research/sf_migration.md §3.2). Done before the
extension is deployed ("pre-ACL your key vaults").
"""

from __future__ import annotations

import uuid
from typing import Any

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from ..checks.access import SECRET_READER_ROLES
from ..errors import AzureRequestFailed, StepFailed
from ..plan import Step
from .base import StepContext

_NAMESPACE = uuid.UUID("9a6f2f5e-41a3-4d1c-8e0b-5b2f7c4a9d31")


def _principal_not_replicated(exc: BaseException) -> bool:
    # A new identity's principal can take a while to reach the directory ARM checks (PrincipalNotFound).
    return isinstance(exc, AzureRequestFailed) and exc.code == "PrincipalNotFound"


def _covers(scope: str, vault_id: str) -> bool:
    outer = [p.lower() for p in scope.split("/") if p]
    return bool(outer) and [p.lower() for p in vault_id.split("/") if p][: len(outer)] == outer


def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    params = step.params
    identity = ctx.gateway.get_identity(params["identity_id"])
    if identity is None:
        raise StepFailed(ctx.step_name, f"the identity {params['identity_id']} does not exist (run ensure-identity first)")
    principal = (identity.get("properties") or {}).get("principalId")
    vault_id = params["vault_id"]
    if params.get("rbac"):
        role = params["role"]
        existing = ctx.gateway.list_role_assignments(vault_id, principal)
        held = {  # list-for-scope also returns assignments *below* the vault (one secret): those do not count
            ((a.get("properties") or {}).get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
            for a in existing if _covers(str((a.get("properties") or {}).get("scope") or ""), vault_id)
        }
        if held & set(SECRET_READER_ROLES):  # any role that can read secrets will do
            return {"principal_id": principal, "role": role, "changed": False}
        subscription = [p for p in vault_id.split("/") if p][1]
        definition = f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        name = str(uuid.uuid5(_NAMESPACE, f"{vault_id.lower()}|{principal}|{role}"))  # deterministic: a repeat is idempotent

        @retry(retry=retry_if_exception(_principal_not_replicated), stop=stop_after_attempt(6),
               wait=wait_exponential(multiplier=max(ctx.poll_interval, 0.05), max=60), reraise=True)
        def assign() -> None:
            ctx.gateway.create_role_assignment(vault_id, name, definition, principal)

        ctx.emit("change", step=ctx.step_name, resource=vault_id, properties=1)
        assign()
        return {"principal_id": principal, "role": role, "changed": True}
    vault = ctx.gateway.get_vault(vault_id)
    policies = (vault.get("properties") or {}).get("accessPolicies") or []
    granted = set()
    for policy in policies:
        if policy.get("objectId") == principal:
            granted |= {p.lower() for p in (policy.get("permissions") or {}).get("secrets") or []}
    if {"get", "list"} <= granted or "all" in granted:
        return {"principal_id": principal, "secrets": sorted(granted), "changed": False}
    ctx.emit("change", step=ctx.step_name, resource=vault_id, properties=1)
    tenant = params.get("tenant_id") or (vault.get("properties") or {}).get("tenantId")
    ctx.gateway.add_access_policy(vault_id, tenant, principal, ["get", "list"])
    return {"principal_id": principal, "secrets": ["get", "list"], "changed": True}
