"""Microsoft.Authorization: built-in role definitions, role assignments and permission checks.

ARM checks ``actions`` for every management request; an RBAC-authorised Key Vault checks ``dataActions``
for data-plane requests (Owner grants no data actions, as in Azure).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...resources import new_guid, scope_contains
from ...wire import TwinError

if TYPE_CHECKING:
    from ..identity.models import Principal


@dataclass(frozen=True)
class RoleDefinition:
    guid: str
    name: str
    description: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def permits(self, operation: str, data: bool) -> bool:
        allow, deny = (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        op = operation.lower()
        return any(fnmatch.fnmatchcase(op, a.lower()) for a in allow) and not any(
            fnmatch.fnmatchcase(op, d.lower()) for d in deny
        )


_AUTHZ_WRITES = ("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action")

BUILTIN_ROLES: tuple[RoleDefinition, ...] = (
    RoleDefinition("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", "Grants full access to manage all resources.", ("*",)),
    RoleDefinition(
        "b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles.", ("*",), _AUTHZ_WRITES,
    ),
    RoleDefinition("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources.", ("*/read",)),
    RoleDefinition(
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator",
        "Lets you manage user access to Azure resources.", ("*/read", "Microsoft.Authorization/*"),
    ),
    RoleDefinition(
        "f1a07417-d97a-45cb-824c-7a7467783830", "Managed Identity Operator", "Read and Assign User Assigned Identity",
        ("Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
         "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
         "Microsoft.Authorization/*/read", "Microsoft.Resources/subscriptions/resourceGroups/read"),
    ),
    RoleDefinition(
        "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59", "Managed Identity Contributor",
        "Create, Read, Update, and Delete User Assigned Identity",
        ("Microsoft.ManagedIdentity/userAssignedIdentities/read", "Microsoft.ManagedIdentity/userAssignedIdentities/write",
         "Microsoft.ManagedIdentity/userAssignedIdentities/delete", "Microsoft.Authorization/*/read",
         "Microsoft.Resources/subscriptions/resourceGroups/read"),
    ),
    RoleDefinition(
        "00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator",
        "Perform all data plane operations on a key vault and all objects in it.",
        ("Microsoft.Authorization/*/read", "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/vaults/*/read"),
        (), ("Microsoft.KeyVault/vaults/*",),
    ),
    RoleDefinition(
        "21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader", "Read metadata of key vaults and its certificates, keys, and secrets.",
        ("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/read"),
        (), ("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    ),
    RoleDefinition(
        "4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User", "Read secret contents.",
        (), (), ("Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
    ),
    RoleDefinition(
        "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Key Vault Certificate User", "Read certificate contents.",
        (), (), ("Microsoft.KeyVault/vaults/certificates/read", "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                 "Microsoft.KeyVault/vaults/secrets/readMetadata/action", "Microsoft.KeyVault/vaults/keys/read"),
    ),
    RoleDefinition(
        "a4417e6f-fecd-4de8-b567-7b0420556985", "Key Vault Certificates Officer",
        "Perform any action on the certificates of a key vault, except manage permissions.",
        ("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read"),
        (), ("Microsoft.KeyVault/vaults/certificatecas/*", "Microsoft.KeyVault/vaults/certificates/*",
             "Microsoft.KeyVault/vaults/certificatecontacts/write"),
    ),
    RoleDefinition(
        "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer",
        "Perform any action on the secrets of a key vault, except manage permissions.",
        ("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read"), (), ("Microsoft.KeyVault/vaults/secrets/*",),
    ),
    # The pipeline's state container (runbooks/azure-devops/README.md); the twin serves no storage, only the role.
    # https://learn.microsoft.com/en-us/azure/role-based-access-control/built-in-roles/storage#storage-blob-data-contributor
    RoleDefinition(
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "Storage Blob Data Contributor",
        "Allows for read, write and delete access to Azure Storage blob containers and data",
        ("Microsoft.Storage/storageAccounts/blobServices/containers/delete",
         "Microsoft.Storage/storageAccounts/blobServices/containers/read",
         "Microsoft.Storage/storageAccounts/blobServices/containers/write",
         "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        (), ("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
             "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
             "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
             "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
             "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"),
    ),
)

ROLES_BY_GUID = {r.guid: r for r in BUILTIN_ROLES}
ROLES_BY_NAME = {r.name.lower(): r for r in BUILTIN_ROLES}


def role_definition_id(subscription: str, guid: str) -> str:
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def role_guid_from_id(role_definition_id_value: str) -> str:
    return role_definition_id_value.rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass
class RoleAssignment:
    name: str
    scope: str
    role_guid: str
    principal_id: str
    principal_type: str
    created_on: str
    subscription: str
    # Data-plane enforcement starts here (None: at once); ARM shows the assignment from creation. Propagation
    # (docs/twin.md, "Permission propagation and identities").
    effective_at: dt.datetime | None = None

    def effective(self, at: dt.datetime | None) -> bool:
        return at is None or self.effective_at is None or at >= self.effective_at

    @property
    def id(self) -> str:
        scope = self.scope.rstrip("/")
        return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{self.name}"

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": role_definition_id(self.subscription, self.role_guid),
                "principalId": self.principal_id,
                "principalType": self.principal_type,
                "scope": self.scope,
                "createdOn": self.created_on,
                "updatedOn": self.created_on,
                "createdBy": None,
                "updatedBy": None,
                "condition": None,
                "conditionVersion": None,
                "delegatedManagedIdentityResourceId": None,
                "description": None,
            },
        }


class AuthorizationState:
    def __init__(self) -> None:
        self.assignments: dict[str, RoleAssignment] = {}  # key: lower-cased id
        # Simulated seconds before an assignment made through the API is enforced by data planes (RBAC
        # troubleshooting: changes take minutes); the scenario's ``propagation.roleAssignments`` sets it.
        self.role_assignment_delay = 0.0

    def assign(
        self, scope: str, role_guid: str, principal_id: str, principal_type: str, created_on: str,
        subscription: str, name: str | None = None,
    ) -> RoleAssignment:
        if role_guid.lower() not in ROLES_BY_GUID:
            raise TwinError(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{role_guid}' does not exist.")
        for existing in self.assignments.values():
            if (
                existing.principal_id == principal_id
                and existing.role_guid == role_guid.lower()
                and existing.scope.lower().rstrip("/") == scope.lower().rstrip("/")
                and existing.name != name
            ):
                raise TwinError(409, "RoleAssignmentExists", "The role assignment already exists.")
        assignment = RoleAssignment(
            name or new_guid(), scope, role_guid.lower(), principal_id, principal_type, created_on, subscription
        )
        self.assignments[assignment.id.lower()] = assignment
        return assignment

    @staticmethod
    def _key(scope: str, name: str) -> str:
        return f"{scope.rstrip('/')}/providers/microsoft.authorization/roleassignments/{name}".lower()

    def find(self, scope: str, name: str) -> RoleAssignment | None:
        return self.assignments.get(self._key(scope, name))

    def put(
        self, scope: str, name: str, role_guid: str, principal_id: str, principal_type: str, created_on: str, subscription: str,
    ) -> tuple[RoleAssignment, bool]:
        """A PUT of assignment ``name`` at ``scope``: the one there is kept as it is (ARM answers 200); True when created.
        A new one is enforced by data planes only ``role_assignment_delay`` seconds after ``created_on``."""
        existing = self.find(scope, name)
        if existing:
            return existing, False
        assignment = self.assign(scope, role_guid, principal_id, principal_type, created_on, subscription, name=name)
        if self.role_assignment_delay > 0:
            created = dt.datetime.fromisoformat(created_on.replace("Z", "+00:00"))
            assignment.effective_at = created + dt.timedelta(seconds=self.role_assignment_delay)
        return assignment, True

    def remove(self, scope: str, name: str) -> RoleAssignment | None:
        return self.assignments.pop(self._key(scope, name), None)

    def for_scope(self, scope: str, at_scope_only: bool = False, principal_id: str | None = None) -> list[RoleAssignment]:
        """Assignments at or above ``scope`` (and below it unless ``atScope()``), like ARM's list-for-scope."""
        found = []
        for assignment in self.assignments.values():
            above = scope_contains(assignment.scope, scope)
            below = scope_contains(scope, assignment.scope)
            if not (above or (below and not at_scope_only)):
                continue
            if principal_id and assignment.principal_id != principal_id:
                continue
            found.append(assignment)
        return sorted(found, key=lambda a: (a.scope.lower(), a.name))

    def allowed(self, principal_id: str, operation: str, scope: str, data: bool = False, at: dt.datetime | None = None) -> bool:
        """``at``: a data plane's check at that moment, which ignores assignments not yet propagated."""
        for assignment in self.assignments.values():
            if assignment.principal_id != principal_id or not scope_contains(assignment.scope, scope):
                continue
            if not assignment.effective(at):
                continue
            if ROLES_BY_GUID[assignment.role_guid].permits(operation, data):
                return True
        return False

    def demand(self, principal: Principal | None, operation: str, scope: str) -> None:
        """A 403 in ARM's words unless ``principal`` may perform ``operation`` at ``scope``."""
        if principal is None or self.allowed(principal.object_id, operation, scope):
            return
        raise TwinError(
            403,
            "AuthorizationFailed",
            f"The client '{principal.client_id}' with object id '{principal.object_id}' does not have authorization "
            f"to perform action '{operation}' over scope '{scope}' or the scope is invalid. If access was recently "
            "granted, please refresh your credentials.",
        )

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {
                "id": a.id,
                "scope": a.scope,
                "role": ROLES_BY_GUID[a.role_guid].name,
                "principalId": a.principal_id,
                **({"effectiveAt": a.effective_at.isoformat()} if a.effective_at else {}),
            }
            for a in sorted(self.assignments.values(), key=lambda a: a.id.lower())
        ]
