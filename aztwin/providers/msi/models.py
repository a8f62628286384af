"""Microsoft.ManagedIdentity: user-assigned identities, each backed by a principal in the directory."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...resources import ResourceId
from ...wire import TwinError

if TYPE_CHECKING:
    from ...world import World



@dataclass
class UserAssignedIdentity:
    rid: ResourceId
    location: str
    principal_id: str
    client_id: str
    tenant_id: str
    tags: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            # ARM answers this id with a lower-case 'resourcegroups' (recordings/test_cli_mgmt_msi).
            "id": self.rid.id.replace("/resourceGroups/", "/resourcegroups/"),
            "name": self.rid.name,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "location": self.location,
            "tags": self.tags,
            "properties": {
                "tenantId": self.tenant_id,
                "principalId": self.principal_id,
                "clientId": self.client_id,
                "isolationScope": "None",
            },
        }


class MsiState:
    def __init__(self, world: World) -> None:
        self.world = world
        self.identities: dict[str, UserAssignedIdentity] = {}
        self._rng: random.Random | None = None

    def _new_id(self) -> str:
        """A new random GUID from the world's own generator (seeded by the scenario name, so a world built and
        driven the same way is the same world: rehearsals repeat)."""
        if self._rng is None:
            self._rng = random.Random(f"{self.world.scenario_name}:managed-identities")
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def create(self, rid: ResourceId, location: str, tags: dict[str, str] | None = None) -> UserAssignedIdentity:
        """Create: Entra ID gives every new identity new client and principal ids, so one deleted and created again
        under the same resource id has new ones (docs/twin.md, "Permission propagation and identities")."""
        from ..identity.models import Principal

        principal = Principal(
            object_id=self._new_id(),
            tenant_id=self.world.identity.tenant_id,
            display_name=rid.name,
            kind="ManagedIdentity",
            client_id=self._new_id(),
            resource_id=rid.id,
        )
        self.world.identity.add(principal)
        identity = UserAssignedIdentity(
            rid, location, principal.object_id, principal.client_id, principal.tenant_id, dict(tags or {})
        )
        self.identities[rid.key] = identity
        return identity

    def put(self, rid: ResourceId, location: str, tags: dict[str, str]) -> tuple[UserAssignedIdentity, bool]:
        """Create the identity or set the tags of the one there; True when it was created."""
        existing = self.find(rid.id)
        if existing:
            existing.tags = tags
            return existing, False
        return self.create(rid, location, tags), True

    def delete(self, rid: ResourceId) -> bool:
        """Remove the identity and its service principal; False if there was none."""
        identity = self.identities.pop(rid.key, None)
        if identity is None:
            return False
        self.world.identity.principals.pop(identity.principal_id, None)
        return True

    def get(self, resource_id: str) -> UserAssignedIdentity:
        found = self.identities.get(resource_id.lower().replace("/resourcegroups/", "/resourcegroups/"))
        if found is None:
            rid = ResourceId.parse(resource_id)
            raise TwinError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/{rid.name}' under resource group "
                f"'{rid.resource_group}' was not found.",
            )
        return found

    def find(self, resource_id: str) -> UserAssignedIdentity | None:
        return self.identities.get(resource_id.lower())

    def by_client_id(self, client_id: str) -> UserAssignedIdentity | None:
        for identity in self.identities.values():
            if identity.client_id.lower() == client_id.lower():
                return identity
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        return [i.body() for i in self.identities.values()]
