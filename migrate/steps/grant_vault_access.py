"""Step: let the identity read the vault's secrets — an access policy (secrets get, list) or, on an RBAC
vault, the 'Key Vault Secrets User' role at vault scope (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows). Done before the
extension is deployed ("pre-ACL your key vaults").
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from pydantic import field_validator
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from ..arm_ids import role_definition_id, subscription_of
from ..errors import AzureRequestFailed, StepFailed
from ..step_types import StepParams, register
from ..vault_access import SECRETS_USER_ROLE, reads_secrets
from .base import StepContext

if TYPE_CHECKING:
    from ..plan import Step

_NAMESPACE = uuid.UUID("9a6f2f5e-41a3-4d1c-8e0b-5b2f7c4a9d31")


def _principal_not_replicated(exc: BaseException) -> bool:
    # A new identity's principal can take a while to reach the directory ARM checks (PrincipalNotFound).
    return isinstance(exc, AzureRequestFailed) and exc.code == "PrincipalNotFound"

KIND = "grant_vault_access"


class Params(StepParams):
    vault_id: str
    rbac: bool  # the vault's permission model: a role assignment (True) or an access policy
    identity_id: str
    role: str | None = None  # RBAC: the role definition's GUID
    tenant_id: str | None = None  # access policy: the vault's tenant

    @field_validator("role")
    @classmethod
    def _code_rule_role(cls, value: str | None) -> str | None:
        """Which role is granted is a rule in the code (Key Vault Secrets User), never a file's choice: a saved
        plan or journal naming another role is refused on reading (issue 13, defect 2)."""
        if value is not None and value.lower() != SECRETS_USER_ROLE:
            raise ValueError(f"only the Key Vault Secrets User role ({SECRETS_USER_ROLE}) is ever granted")
        return value


@register(KIND, Params)
def run(ctx: StepContext, step: Step) -> dict[str, Any]:
    params = step.typed(Params)
    identity = ctx.gateway.get_identity(params.identity_id)
    if identity is None:
        raise StepFailed(ctx.step_name, f"the identity {params.identity_id} does not exist (run ensure-identity first)")
    principal = str((identity.get("properties") or {}).get("principalId") or "")
    if not principal:  # nothing to grant to yet (and nothing to compare): a later attempt sees it
        raise StepFailed(ctx.step_name, f"the identity {params.identity_id} has no principal id yet")
    vault_id = params.vault_id
    rbac = params.rbac
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
        role = SECRETS_USER_ROLE  # the code's rule (Params refuses any other), never the file's
        definition = role_definition_id(subscription_of(vault_id), role)
        name = str(uuid.uuid5(_NAMESPACE, f"{vault_id.lower()}|{principal}|{role}"))  # deterministic: a repeat is idempotent

        @retry(retry=retry_if_exception(_principal_not_replicated), stop=stop_after_attempt(6),
               wait=wait_exponential(multiplier=max(ctx.poll_interval, 0.05), max=60), reraise=True)
        def assign() -> None:
            ctx.gateway.create_role_assignment(vault_id, name, definition, principal)

        assign()
        return {"principal_id": principal, "role": role, "changed": True}
    tenant_id = str(params.tenant_id or properties.get("tenantId") or "")
    ctx.gateway.add_access_policy(vault_id, tenant_id, principal, ["get", "list"])
    return {"principal_id": principal, "secrets": ["get", "list"], "changed": True}
