"""ARM itself: cloud discovery (``/metadata/endpoints``), subscriptions, tenants and resource groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...wire import Request, Response, Router, ok
from ..graph.models import graph_resource
from .namespaces import provider_bodies, provider_body

if TYPE_CHECKING:
    from ...world import World

# api-version 2019-05-01 (up to 2022-09-01) answers a list of every cloud; 2022-09-01 and later, and the older
# 2015-01-01, answer one object for the current cloud (hashicorp/go-azure-sdk's metadata client parses them so:
# getMetaDataFrom2019API reads an array, getMetaDataFrom2022API one object; msrestazure reads 2015-01-01 as one).
_LIST_FROM, _LIST_UNTIL = "2019-05-01", "2022-09-01"


def register(router: Router) -> None:
    router.add("GET", "/metadata/endpoints", metadata_endpoints, authenticated=False, mutating=False)
    router.add("GET", "/subscriptions", list_subscriptions)
    router.add("GET", "/subscriptions/{sub}", get_subscription)
    router.add("GET", "/tenants", list_tenants)
    router.add("GET", "/subscriptions/{sub}/providers", list_providers)
    router.add("GET", "/subscriptions/{sub}/providers/{namespace}", get_provider)
    router.add("GET", "/subscriptions/{sub}/resourcegroups", list_groups)
    router.add("GET", "/subscriptions/{sub}/resourcegroups/{rg}", get_group)
    router.add("GET", "/_pki/{name}.cer", get_authority_certificate, authenticated=False, mutating=False)
    router.add("GET", "/_pki/{name}.crl", get_authority_crl, authenticated=False, mutating=False)
    router.add("GET", "/_pki/{name}.p7c", get_authority_bundle, authenticated=False, mutating=False)


def cloud_metadata(world: World, base_url: str) -> dict[str, Any]:
    return {
        "name": "SfmigrateTwin",
        "portal": f"{base_url}/portal",
        "authentication": {
            "loginEndpoint": f"{base_url}/",
            "audiences": [f"{base_url}/", "https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": f"{base_url}/media",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "suffixes": {
            "keyVaultDns": "vault.azure.net",
            "storage": "core.windows.net",
            "acrLoginServer": "azurecr.io",
            "sqlServerHostname": "database.windows.net",
        },
        "batch": "https://batch.core.windows.net/",
        "resourceManager": f"{base_url}/",
        "microsoftGraphResourceId": graph_resource(base_url),  # the twin's Graph (aztwin/providers/graph)
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "gallery": "https://gallery.azure.com/",
    }


def metadata_endpoints(world: World, request: Request) -> Response:
    body = cloud_metadata(world, request.base_url)
    if _LIST_FROM <= (request.api_version or "") < _LIST_UNTIL:
        return ok([body])
    return ok(body)


def _subscription_body(world: World, subscription: Any) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription.id}",
        "authorizationSource": "RoleBased",
        "subscriptionId": subscription.id,
        "tenantId": world.identity.tenant_id,
        "displayName": subscription.display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def list_subscriptions(world: World, request: Request) -> Response:
    return ok({"value": [_subscription_body(world, s) for s in world.subscriptions.values()]})


def get_subscription(world: World, request: Request) -> Response:
    return ok(_subscription_body(world, world.subscription(request.params["sub"])))


def list_tenants(world: World, request: Request) -> Response:
    tenant = world.identity.tenant_id
    return ok({"value": [{"id": f"/tenants/{tenant}", "tenantId": tenant, "tenantCategory": "Home"}]})


def _locations(world: World, subscription_id: str) -> list[str]:
    return sorted({g.location for g in world.subscription(subscription_id).resource_groups.values()})


def list_providers(world: World, request: Request) -> Response:
    subscription = world.subscription(request.params["sub"])
    return ok({"value": provider_bodies(subscription.id, _locations(world, subscription.id))})


def get_provider(world: World, request: Request) -> Response:
    subscription = world.subscription(request.params["sub"])
    return ok(provider_body(subscription.id, request.params["namespace"], _locations(world, subscription.id)))


def _group_body(subscription: str, group: Any) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group.name}",
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.location,
        "tags": group.tags,
        "properties": {"provisioningState": "Succeeded"},
    }


def list_groups(world: World, request: Request) -> Response:
    subscription = world.subscription(request.params["sub"])
    return ok({"value": [_group_body(subscription.id, g) for g in subscription.resource_groups.values()]})


def get_group(world: World, request: Request) -> Response:
    subscription = world.subscription(request.params["sub"])
    group = world.resource_group(subscription.id, request.params["rg"])
    world.authorization.demand(
        request.principal, "Microsoft.Resources/subscriptions/resourceGroups/read", f"/subscriptions/{subscription.id}/resourceGroups/{group.name}"
    )
    return ok(_group_body(subscription.id, group))


def get_authority_certificate(world: World, request: Request) -> Response:
    """A CA certificate at its Authority Information Access URL (public material, no authentication)."""
    from ...wire import TwinError

    _pki_reachable(world, request)
    authority = world.pki.authorities.get(request.params["name"])
    if authority is None:
        raise TwinError(404, "NotFound", f"No certificate authority '{request.params['name']}'.")
    return Response(200, authority.der, {"Content-Type": "application/pkix-cert"})


def get_authority_crl(world: World, request: Request) -> Response:
    """A CA's CRL at its CRL Distribution Point (signed now by the CA; public, no authentication)."""
    from ...wire import TwinError

    _pki_reachable(world, request)
    if request.params["name"] not in world.pki.authorities:
        raise TwinError(404, "NotFound", f"No certificate authority '{request.params['name']}'.")
    return Response(200, world.pki.crl(request.params["name"], world.now()), {"Content-Type": "application/pkix-crl"})


def _pki_reachable(world: World, request: Request) -> None:
    """PKI endpoints made unreachable (scenario ``pkiEndpoints: unreachable``) answer no caller: 504, the twin's
    stand-in for a connection that times out (docs/twin.md, "Chain building and revocation")."""
    from ...wire import TwinError

    if not world.pki.reachable:
        raise TwinError(504, "PkiEndpointUnreachable", f"{request.path}: the PKI's endpoints are unreachable in this world.")
def get_authority_bundle(world: World, request: Request) -> Response:
    """A CA certificate and its published re-issues (same subject and key) as PKCS#7 certs-only, at its AIA."""
    from ...wire import TwinError

    _pki_reachable(world, request)
    if request.params["name"] not in world.pki.authorities:
        raise TwinError(404, "NotFound", f"No certificate authority '{request.params['name']}'.")
    return Response(200, world.pki.bundle(request.params["name"]), {"Content-Type": "application/pkcs7-mime"})
