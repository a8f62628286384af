"""Microsoft Graph v1.0 routes (read-only; ``{base_url}/graph/v1.0/...``): decode, call the model, encode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...wire import GRAPH, Request, Response, Router, ok
from . import models
from .models import GRAPH_PREFIX, graph_error, graph_resource

if TYPE_CHECKING:
    from ...world import World

V1 = GRAPH_PREFIX + "/v1.0"


def register(router: Router) -> None:
    def add(method: str, pattern: str, handler: Any) -> None:
        router.add(method, V1 + pattern, handler, style=GRAPH, audience=GRAPH, mutating=False)

    add("GET", "/me", get_me)
    add("GET", "/servicePrincipals", list_service_principals)
    add("GET", "/servicePrincipals(appId='{app_id}')", get_service_principal_by_app_id)
    add("GET", "/servicePrincipals/{id}", get_service_principal)
    add("GET", "/users", list_users)
    add("GET", "/users/{id}", get_user)
    add("GET", "/directoryObjects/{id}", get_directory_object)
    add("POST", "/directoryObjects/getByIds", get_by_ids)


def _context(request: Request, fragment: str) -> str:
    return f"{graph_resource(request.base_url)}v1.0/$metadata#{fragment}"


def _principals(world: World) -> list[Any]:
    return list(world.identity.principals.values())


def get_me(world: World, request: Request) -> Response:
    # user-get: /me names the signed-in user, so it needs a delegated (user) token; an application's token
    # (service principal, managed identity) gets Graph's 400.
    principal = request.caller
    if not models.is_user(principal):
        raise graph_error(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    return ok({"@odata.context": _context(request, "users/$entity"), **models.user_body(principal)})


def list_service_principals(world: World, request: Request) -> Response:
    models.demand_directory_read(request.caller)
    value = models.service_principals(_principals(world), request.query.get("$filter"))
    return ok({"@odata.context": _context(request, "servicePrincipals"), "value": value})


def get_service_principal(world: World, request: Request) -> Response:
    models.demand_directory_read(request.caller)
    principal = models.find(world.identity.principals, request.params["id"])
    if models.is_user(principal):
        raise models.not_found(request.params["id"])
    return ok({"@odata.context": _context(request, "servicePrincipals/$entity"), **models.service_principal_body(principal)})


def get_service_principal_by_app_id(world: World, request: Request) -> Response:
    models.demand_directory_read(request.caller)
    app_id = request.params["app_id"]
    found = models.service_principals(_principals(world), f"appId eq '{app_id.replace(chr(39), chr(39) * 2)}'")
    if not found:
        raise models.not_found(app_id)
    return ok({"@odata.context": _context(request, "servicePrincipals/$entity"), **found[0]})


def list_users(world: World, request: Request) -> Response:
    models.demand_directory_read(request.caller)
    return ok({"@odata.context": _context(request, "users"), "value": models.users(_principals(world), request.query.get("$filter"))})


def get_user(world: World, request: Request) -> Response:
    # user-get: /users/{id | userPrincipalName}
    models.demand_directory_read(request.caller)
    key = request.params["id"]
    if "@" in key:
        found = models.users(_principals(world), f"userPrincipalName eq '{key.replace(chr(39), chr(39) * 2)}'")
        if not found:
            raise models.not_found(key)
        return ok({"@odata.context": _context(request, "users/$entity"), **found[0]})
    principal = models.find(world.identity.principals, key)
    if not models.is_user(principal):
        raise models.not_found(key)
    return ok({"@odata.context": _context(request, "users/$entity"), **models.user_body(principal)})


def get_directory_object(world: World, request: Request) -> Response:
    models.demand_directory_read(request.caller)
    principal = models.find(world.identity.principals, request.params["id"])
    return ok({"@odata.context": _context(request, "directoryObjects/$entity"), **models.typed_body(principal)})


def get_by_ids(world: World, request: Request) -> Response:
    models.demand_directory_read(request.caller)
    body = request.json_object()
    value = models.by_ids(world.identity.principals, body.get("ids"), body.get("types"))
    return ok({"@odata.context": _context(request, "directoryObjects"), "value": value})
