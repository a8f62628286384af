"""Microsoft.Authorization roleAssignments and roleDefinitions at any scope."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ...wire import Request, Response, Router, TwinError, bad_request, check_shape, ok, require
from .models import BUILTIN_ROLES, ROLES_BY_GUID, role_definition_id, role_guid_from_id

if TYPE_CHECKING:
    from ...world import World

ASSIGNMENTS = "{scope*}/providers/Microsoft.Authorization/roleAssignments"
DEFINITIONS = "{scope*}/providers/Microsoft.Authorization/roleDefinitions"


ASSIGNMENT_SHAPE = {
    "properties": {
        "roleDefinitionId": str, "principalId": str, "principalType": str, "description": str, "condition": str,
        "conditionVersion": str, "delegatedManagedIdentityResourceId": str,
    }
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ROLE_ID = re.compile(r"^(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/([^/]+)$", re.IGNORECASE)


def register(router: Router) -> None:
    router.add("PUT", ASSIGNMENTS + "/{name}", put_assignment)
    router.add("GET", ASSIGNMENTS + "/{name}", get_assignment)
    router.add("DELETE", ASSIGNMENTS + "/{name}", delete_assignment)
    router.add("GET", ASSIGNMENTS, list_assignments)
    router.add("GET", DEFINITIONS + "/{guid}", get_definition)
    router.add("GET", DEFINITIONS, list_definitions)


def _scope(world: World, request: Request) -> str:
    scope = "/" + request.params["scope"].strip("/")
    if scope == "/":
        return scope
    parts = [p for p in scope.split("/") if p]
    if parts[0].lower() != "subscriptions" or len(parts) < 2:
        raise TwinError(400, "InvalidScope", f"The scope '{scope}' is not valid.")
    world.subscription(parts[1])  # 404 for unknown subscriptions
    return scope


def _subscription_of(scope: str, world: World) -> str:
    parts = [p for p in scope.split("/") if p]
    return parts[1] if len(parts) > 1 else world.default_subscription


def put_assignment(world: World, request: Request) -> Response:
    scope = _scope(world, request)
    world.authorization.demand(request.principal, "Microsoft.Authorization/roleAssignments/write", scope)
    body = request.json_object()
    check_shape(body, ASSIGNMENT_SHAPE)
    role_id = require(body, "properties.roleDefinitionId")
    principal_id = require(body, "properties.principalId")
    if not _GUID.match(request.params["name"]):
        raise bad_request(f"The role assignment ID '{request.params['name']}' is not valid. The role assignment ID must be a GUID.", "InvalidRoleAssignmentId")
    found = _ROLE_ID.match(role_id)
    if not found or not _GUID.match(found.group(2)):
        raise bad_request(f"The role definition ID '{role_id}' is not valid.", "InvalidRoleDefinitionId")
    if not _GUID.match(principal_id):
        raise bad_request("A valid principal ID must be provided for role assignment.", "InvalidPrincipalId")
    if principal_id not in world.identity.principals:
        raise TwinError(400, "PrincipalNotFound", f"Principal {principal_id.replace('-', '')} does not exist in the directory {world.identity.tenant_id}.")
    assignment, created = world.authorization.put(
        scope,
        request.params["name"],
        role_guid_from_id(role_id),
        principal_id,
        body["properties"].get("principalType") or world.identity.principals[principal_id].kind,
        world.iso_now(),
        _subscription_of(scope, world),
    )
    return ok(assignment.body(), 201 if created else 200)


def get_assignment(world: World, request: Request) -> Response:
    scope = _scope(world, request)
    world.authorization.demand(request.principal, "Microsoft.Authorization/roleAssignments/read", scope)
    assignment = world.authorization.find(scope, request.params["name"])
    if assignment is None:
        raise TwinError(404, "RoleAssignmentNotFound", "The role assignment does not exist.")
    return ok(assignment.body())


def delete_assignment(world: World, request: Request) -> Response:
    scope = _scope(world, request)
    world.authorization.demand(request.principal, "Microsoft.Authorization/roleAssignments/delete", scope)
    assignment = world.authorization.remove(scope, request.params["name"])
    return ok(assignment.body()) if assignment else Response(204)


_PRINCIPAL_FILTER = re.compile(r"principalId\s+eq\s+'([^']+)'", re.IGNORECASE)
_ROLE_NAME_FILTER = re.compile(r"roleName\s+eq\s+'([^']+)'", re.IGNORECASE)


def list_assignments(world: World, request: Request) -> Response:
    scope = _scope(world, request)
    world.authorization.demand(request.principal, "Microsoft.Authorization/roleAssignments/read", scope)
    query_filter = request.query.get("$filter", "")
    principal = _PRINCIPAL_FILTER.search(query_filter)
    found = world.authorization.for_scope(
        scope, at_scope_only="atscope()" in query_filter.lower(), principal_id=principal.group(1) if principal else None
    )
    return ok({"value": [a.body() for a in found]})


def _definition_body(subscription: str, guid: str) -> dict[str, Any]:
    role = ROLES_BY_GUID[guid]
    return {
        "id": role_definition_id(subscription, guid),
        "name": guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": list(role.data_actions),
                    "notDataActions": list(role.not_data_actions),
                }
            ],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-01-01T00:00:00.0000000Z",
        },
    }


def get_definition(world: World, request: Request) -> Response:
    scope = _scope(world, request)
    guid = request.params["guid"].lower()
    if guid not in ROLES_BY_GUID:
        raise TwinError(404, "RoleDefinitionDoesNotExist", f"The role definition '{guid}' could not be found.")
    return ok(_definition_body(_subscription_of(scope, world), guid))


def list_definitions(world: World, request: Request) -> Response:
    scope = _scope(world, request)
    wanted = _ROLE_NAME_FILTER.search(request.query.get("$filter", ""))
    roles = [r for r in BUILTIN_ROLES if not wanted or r.name.lower() == wanted.group(1).lower()]
    return ok({"value": [_definition_body(_subscription_of(scope, world), r.guid) for r in roles]})
