"""May an identity read a vault's secrets? One rule for the checks, the planner and the grant step.

The Key Vault VM extension fetches certificates through ``/secrets``: an access policy with secrets get and
list, or, on an RBAC vault, a role with ``secrets/getSecret`` at the vault or above (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).
"""

from __future__ import annotations

from typing import Any, Iterable

from .arm_ids import role_guid, scope_covers

SECRETS_USER_ROLE = "4633458b-17de-408a-b874-0445c86b69e6"
SECRET_READER_ROLES = {
    SECRETS_USER_ROLE: "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba": "Key Vault Certificate User",  # includes secrets/getSecret
}


def policy_secrets(access_policies: Iterable[dict[str, Any]], principal_id: str) -> set[str]:
    granted: set[str] = set()
    for policy in access_policies:
        if str(policy.get("objectId", "")).lower() == principal_id.lower():
            granted |= {str(p).lower() for p in (policy.get("permissions") or {}).get("secrets") or []}
    return granted


def reads_secrets(*, rbac: bool, vault_id: str, principal_id: str, access_policies: Iterable[dict[str, Any]],
                  assignments: Iterable[tuple[str, str, str]]) -> bool:
    """``assignments``: (scope, role definition id or guid, principal id) as Azure lists them for the vault."""
    if rbac:
        return any(
            principal.lower() == principal_id.lower()
            and role_guid(role) in SECRET_READER_ROLES
            and scope_covers(scope, vault_id)
            for scope, role, principal in assignments
        )
    granted = policy_secrets(access_policies, principal_id)
    return "all" in granted or {"get", "list"} <= granted
