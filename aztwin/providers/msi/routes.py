"""Microsoft.ManagedIdentity/userAssignedIdentities: PUT (synchronous), PATCH, GET, list, DELETE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...resources import list_tracked, location_of, tags_of, tracked_id
from ...wire import OBJECT, MapOf, Request, Response, Router, check_shape, ok

if TYPE_CHECKING:
    from ...world import World

NS, TYPE = "Microsoft.ManagedIdentity", "userAssignedIdentities"
ONE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"


IDENTITY_SHAPE = {"location": str, "tags": MapOf(str), "properties": OBJECT}  # ManagedIdentity.json: properties are read-only


def register(router: Router) -> None:
    router.add("PUT", ONE, put_identity)
    router.add("PATCH", ONE, patch_identity)
    router.add("GET", ONE, get_identity)
    router.add("DELETE", ONE, delete_identity)
    router.add("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities", list_identities)
    router.add("GET", "/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities", list_identities)


def put_identity(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.ManagedIdentity/userAssignedIdentities/write", rid.id)
    body = request.json_object()
    check_shape(body, IDENTITY_SHAPE)
    location = location_of(body)
    identity, created = world.msi.put(rid, location, tags_of(body))
    if created:
        return ok(identity.body(), 201, location=identity.rid.id)
    return ok(identity.body(), 200)


def patch_identity(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.ManagedIdentity/userAssignedIdentities/write", rid.id)
    identity = world.msi.get(rid.id)
    body = request.json_object()
    check_shape(body, IDENTITY_SHAPE)
    if "tags" in body:
        identity.tags = tags_of(body)
    return ok(identity.body())


def get_identity(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.ManagedIdentity/userAssignedIdentities/read", rid.id)
    return ok(world.msi.get(rid.id).body())


def delete_identity(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.ManagedIdentity/userAssignedIdentities/delete", rid.id)
    return Response(200) if world.msi.delete(rid) else Response(204)


def list_identities(world: World, request: Request) -> Response:
    return list_tracked(world, request, "Microsoft.ManagedIdentity/userAssignedIdentities/read", world.msi.identities, lambda i: i.body())
