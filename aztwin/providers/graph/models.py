"""Microsoft Graph v1.0, read-only: the tenant's directory objects as clients (the Azure CLI) look them up.

The directory is the world's principals (``world.identity``): the operator and scenario principals are
application service principals, user-assigned identities are ``ManagedIdentity`` service principals
(appId = clientId, id = principalId). Nothing here writes; Graph's rules cited in docs/twin.md ("Microsoft Graph").
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ...wire import TwinError
from ..identity.models import Principal

GRAPH_PREFIX = "/graph"  # served on the twin's main port: {base_url}/graph/v1.0/...
SERVICE_PRINCIPAL = "#microsoft.graph.servicePrincipal"
USER = "#microsoft.graph.user"
MAX_IDS = 1000  # directoryObject-getbyids: "You can specify up to 1000 IDs"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def graph_resource(base_url: str) -> str:
    """The twin's Microsoft Graph resource id: the endpoint clients call and the audience its tokens carry
    (``/metadata/endpoints`` advertises it as ``microsoftGraphResourceId``)."""
    return f"{base_url.rstrip('/')}{GRAPH_PREFIX}/"


def graph_error(status: int, code: str, message: str) -> TwinError:
    return TwinError(status, code, message)


def not_found(object_id: str) -> TwinError:
    # https://learn.microsoft.com/graph/errors: 404 Request_ResourceNotFound
    return graph_error(404, "Request_ResourceNotFound",
                       f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.")


def as_graph_auth_error(error: TwinError) -> TwinError:
    """The token check's 401 in Graph's words (``InvalidAuthenticationToken`` for every token fault)."""
    if error.status != 401:
        return error
    text = error.message.lower()
    if "missing" in text:
        message = "Access token is empty."
    elif "audience" in error.code.lower():
        message = "Access token validation failure. Invalid audience."
    elif "expired" in text:
        message = "Lifetime validation failed, the token is expired."
    else:
        message = "Access token validation failure."
    return TwinError(401, "InvalidAuthenticationToken", message, headers=error.headers)


def demand_directory_read(principal: Principal) -> None:
    """Reading directory objects takes ``Directory.Read.All`` (or ``Application.Read.All``) for an application
    (directoryobject-getbyids, serviceprincipal-list: Permissions). The twin models no app-role grants: the
    scenario's service principals (the operator's, a pipeline's) are taken to hold it (the runbooks' ``az ad``
    and ``--assignee`` lines need it); a managed identity holds no Graph permission until an administrator
    assigns one, so it is refused."""
    if principal.kind == "ManagedIdentity":
        raise graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def check_object_id(object_id: str) -> str:
    """Graph keys directory objects by GUID; anything else is a 400 before any lookup."""
    if not _GUID.match(object_id):
        raise graph_error(400, "Request_BadRequest", f"Invalid object identifier '{object_id}'.")
    return object_id.lower()


# -- bodies (servicePrincipal and user resource types, v1.0) --------------------------------------------
def service_principal_body(principal: Principal) -> dict[str, Any]:
    managed = principal.kind == "ManagedIdentity"
    return {
        "id": principal.object_id,
        "accountEnabled": True,
        "appDisplayName": None if managed else principal.display_name,
        "appId": principal.client_id,
        "displayName": principal.display_name,
        # managed identities: https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-view-managed-identity-service-principal
        "alternativeNames": ["isExplicit=True", principal.resource_id] if managed and principal.resource_id else [],
        "servicePrincipalNames": [principal.client_id],
        "servicePrincipalType": "ManagedIdentity" if managed else "Application",
        "signInAudience": None if managed else "AzureADMyOrg",
        "appOwnerOrganizationId": None if managed else principal.tenant_id,
        "tags": [],
    }


def user_body(principal: Principal) -> dict[str, Any]:
    return {"id": principal.object_id, "displayName": principal.display_name, "userPrincipalName": principal.display_name,
            "mail": None, "accountEnabled": True}


def is_user(principal: Principal) -> bool:
    return principal.kind == "User"


def typed_body(principal: Principal) -> dict[str, Any]:
    """A directory object as ``directoryObjects`` answers it: the concrete type named by ``@odata.type``."""
    if is_user(principal):
        return {"@odata.type": USER, **user_body(principal)}
    return {"@odata.type": SERVICE_PRINCIPAL, **service_principal_body(principal)}


def type_name(principal: Principal) -> str:
    return "user" if is_user(principal) else "servicePrincipal"


# -- $filter (https://learn.microsoft.com/graph/filter-query-parameter) ----------------------------------
_LITERAL = r"'((?:[^']|'')*)'"
_EQ = re.compile(rf"^\s*(\w+)\s+eq\s+{_LITERAL}\s*$", re.IGNORECASE)
_ANY = re.compile(rf"^\s*(\w+)/any\(\s*(\w+)\s*:\s*(\w+)\s+eq\s+{_LITERAL}\s*\)\s*$", re.IGNORECASE)
_STARTSWITH = re.compile(rf"^\s*startswith\(\s*(\w+)\s*,\s*{_LITERAL}\s*\)\s*$", re.IGNORECASE)
_OPERATOR = re.compile(r"\s(eq|ne|gt|ge|lt|le|in|and|or|not|has)\s|^\s*\w+\(|/any\(|/all\(", re.IGNORECASE)
# The properties each collection may be filtered on here (the resource types' documented filterable ones).
SCALARS = {"servicePrincipals": ("id", "appId", "displayName", "servicePrincipalType"),
           "users": ("id", "userPrincipalName", "displayName", "mail")}
COLLECTIONS = {"servicePrincipals": ("servicePrincipalNames", "alternativeNames"), "users": ()}
RESOURCE_TYPE = {"servicePrincipals": "microsoft.graph.servicePrincipal", "users": "microsoft.graph.user"}

Match = Callable[[dict[str, Any]], bool]


def parse_filter(text: str, collection: str) -> Match:
    """A predicate over ``collection``'s bodies for one ``$filter`` clause, or Graph's 400.

    Served: ``p eq 'v'``, ``c/any(x:x eq 'v')``, ``startswith(p,'v')`` (string compare without case, as the
    directory does). A well-formed expression beyond these is a twin gap (501), never a made-up rejection.
    """
    if text.count("'") % 2 or text.count("(") != text.count(")") or not text.strip():
        raise graph_error(400, "BadRequest", f"Invalid filter clause: {text}")
    if found := _EQ.match(text):
        name, value = _property(found.group(1), collection, scalar=True), _unquote(found.group(2))
        return lambda body: _same(body.get(name), value)
    if found := _ANY.match(text):
        name, variable, subject, value = found.group(1), found.group(2), found.group(3), _unquote(found.group(4))
        if variable != subject:
            raise graph_error(400, "BadRequest", f"Invalid filter clause: could not find a property named '{subject}'.")
        name = _property(name, collection, scalar=False)
        return lambda body: any(_same(item, value) for item in body.get(name) or [])
    if found := _STARTSWITH.match(text):
        name, value = _property(found.group(1), collection, scalar=True), _unquote(found.group(2)).casefold()
        return lambda body: isinstance(body.get(name), str) and str(body[name]).casefold().startswith(value)
    if not _OPERATOR.search(text):
        raise graph_error(400, "BadRequest", f"Invalid filter clause: {text}")
    raise TwinError(501, "TwinRouteNotImplemented",
                    f"The Azure twin's Microsoft Graph does not implement this $filter: {text}. Served: "
                    "p eq 'v', c/any(x:x eq 'v'), startswith(p,'v').")


def _property(name: str, collection: str, scalar: bool) -> str:
    known = {p.lower(): p for p in (*SCALARS[collection], *COLLECTIONS[collection])}
    canonical = known.get(name.lower())
    if canonical is None:
        raise graph_error(400, "BadRequest",
                          f"Could not find a property named '{name}' on type '{RESOURCE_TYPE[collection]}'.")
    if scalar == (canonical in COLLECTIONS[collection]):
        raise graph_error(400, "Request_UnsupportedQuery",
                          f"Unsupported or invalid query filter clause specified for property '{canonical}' of "
                          f"resource '{RESOURCE_TYPE[collection].split('.')[-1]}'.")
    return canonical


def _unquote(literal: str) -> str:
    return literal.replace("''", "'")


def _same(actual: Any, wanted: str) -> bool:
    return isinstance(actual, str) and actual.casefold() == wanted.casefold()


# -- queries ----------------------------------------------------------------------------------------------
def service_principals(principals: list[Principal], filter_text: str | None) -> list[dict[str, Any]]:
    bodies = [service_principal_body(p) for p in principals if not is_user(p)]
    return _filtered(bodies, filter_text, "servicePrincipals")


def users(principals: list[Principal], filter_text: str | None) -> list[dict[str, Any]]:
    return _filtered([user_body(p) for p in principals if is_user(p)], filter_text, "users")


def _filtered(bodies: list[dict[str, Any]], filter_text: str | None, collection: str) -> list[dict[str, Any]]:
    if filter_text is None:
        return bodies
    match = parse_filter(filter_text, collection)
    return [body for body in bodies if match(body)]


def by_ids(principals: dict[str, Principal], ids: Any, types: Any) -> list[dict[str, Any]]:
    """``POST /directoryObjects/getByIds``: the objects among ``ids`` (unknown ones are left out), of ``types``."""
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
        raise graph_error(400, "Request_BadRequest", "The 'ids' parameter must be a non-empty array of strings.")
    if len(ids) > MAX_IDS:
        raise graph_error(400, "Request_BadRequest", f"The 'ids' parameter holds more than {MAX_IDS} values.")
    if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
        raise graph_error(400, "Request_BadRequest", "The 'types' parameter must be an array of strings.")
    wanted = {t.lower() for t in types} if types else None
    found = []
    for object_id in ids:
        principal = principals.get(check_object_id(object_id))
        if principal and (wanted is None or type_name(principal).lower() in wanted):
            found.append(typed_body(principal))
    return found


def find(principals: dict[str, Principal], object_id: str) -> Principal:
    principal = principals.get(check_object_id(object_id))
    if principal is None:
        raise not_found(object_id)
    return principal
