"""Token endpoints: Entra-style authority (OIDC discovery, client credentials), the managed-identity
endpoint (``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` protocol) and an Azure Pipelines OIDC request endpoint.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ...wire import OAUTH, Request, Response, Router, TwinError, ok
from .models import Principal, normalise_audience

if TYPE_CHECKING:
    from ...world import World

MSI_PATH = "/_identity/msi/token"
PIPELINE_OIDC_PATH = "/_devops/oidctoken"


def register(router: Router) -> None:
    for pattern in ("/{tenant}/v2.0/.well-known/openid-configuration", "/{tenant}/.well-known/openid-configuration"):
        router.add("GET", pattern, openid_configuration, style=OAUTH, authenticated=False, mutating=False)
    router.add("POST", "/{tenant}/oauth2/v2.0/token", token, style=OAUTH, authenticated=False, mutating=False)
    router.add("POST", "/{tenant}/oauth2/token", token, style=OAUTH, authenticated=False, mutating=False)
    router.add("GET", MSI_PATH, managed_identity_token, style=OAUTH, authenticated=False, mutating=False)
    router.add("POST", PIPELINE_OIDC_PATH, pipeline_oidc_token, style=OAUTH, authenticated=False, mutating=False)


def _tenant(world: World, request: Request) -> str:
    tenant = request.params["tenant"]
    if tenant.lower() not in {world.identity.tenant_id.lower(), "organizations", "common"}:
        raise TwinError(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
    return world.identity.tenant_id


def openid_configuration(world: World, request: Request) -> Response:
    tenant = _tenant(world, request)
    base = f"{request.base_url}/{tenant}"
    return ok(
        {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "twin",
        }
    )


def _token_response(world: World, principal: Principal, resource: str) -> Response:
    access_token, expires_on = world.identity.issue(principal, resource)
    return ok(
        {
            "token_type": "Bearer",
            "expires_in": expires_on - int(time.time()),
            "ext_expires_in": expires_on - int(time.time()),
            "access_token": access_token,
        }
    )


def token(world: World, request: Request) -> Response:
    _tenant(world, request)
    form = request.form()
    if form.get("grant_type") != "client_credentials":
        raise TwinError(400, "unsupported_grant_type", "AADSTS70003: The twin supports client_credentials only.")
    principal = world.identity.client_credentials(form.get("client_id", ""), form.get("client_secret"), form.get("client_assertion"))
    scope = form.get("scope", "").split()
    resources = [s for s in scope if s.endswith("/.default")]
    if not resources:
        raise TwinError(400, "invalid_scope", "AADSTS1002012: The provided scope is not a '/.default' scope.")
    return _token_response(world, principal, normalise_audience(resources[0]))


def managed_identity_token(world: World, request: Request) -> Response:
    world.identity.check_identity_header(request.headers.get("x-identity-header"))
    resource = request.query.get("resource")
    if not resource:
        raise TwinError(400, "invalid_request", "The 'resource' query parameter is required.")
    principal = world.identity.managed_identity(request.query.get("client_id") or request.query.get("clientid"))
    access_token, expires_on = world.identity.issue(principal, resource)
    return ok(
        {
            "access_token": access_token,
            "expires_on": str(expires_on),
            "resource": normalise_audience(resource),
            "token_type": "Bearer",
            "client_id": principal.client_id,
        }
    )


def pipeline_oidc_token(world: World, request: Request) -> Response:
    """Azure Pipelines' OIDC request endpoint (``SYSTEM_OIDCREQUESTURI``) as AzurePipelinesCredential calls it."""
    authorization = request.headers.get("authorization") or ""
    access_token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    organisation = world.identity.pipeline_organisation(access_token)
    connection_id = request.query.get("serviceconnectionid")
    if not connection_id:
        raise TwinError(400, "BadRequest", "The 'serviceConnectionId' query parameter is required.")
    return ok({"oidcToken": world.identity.pipeline_assertion(organisation, connection_id)})
