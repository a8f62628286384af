"""ARM itself: cloud discovery (``/metadata/endpoints``), subscriptions, tenants and resource groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...wire import Request, Response, Router, ok

if TYPE_CHECKING:
    from ...world import World

_NEW_FORMAT_FROM = "2022-09-01"  # from this api-version the endpoint answers a list of clouds


def register(router: Router) -> None:
    router.add("GET", "/metadata/endpoints", metadata_endpoints, authenticated=False, mutating=False)
    router.add("GET", "/subscriptions", list_subscriptions)
    router.add("GET", "/subscriptions/{sub}", get_subscription)
    router.add("GET", "/tenants", list_tenants)
    router.add("GET", "/subscriptions/{sub}/resourcegroups", list_groups)
    router.add("GET", "/subscriptions/{sub}/resourcegroups/{rg}", get_group)
    router.add("GET", "/_pki/{name}.cer", get_authority_certificate, authenticated=False, mutating=False)
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
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "gallery": "https://gallery.azure.com/",
    }


def metadata_endpoints(world: World, request: Request) -> Response:
    body = cloud_metadata(world, request.base_url)
    if (request.api_version or "") >= _NEW_FORMAT_FROM:
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

    authority = world.pki.authorities.get(request.params["name"])
    if authority is None:
        raise TwinError(404, "NotFound", f"No certificate authority '{request.params['name']}'.")
    return Response(200, authority.der, {"Content-Type": "application/pkix-cert"})


def get_authority_bundle(world: World, request: Request) -> Response:
    """A CA certificate and its published re-issues (same subject and key) as PKCS#7 certs-only, at its AIA."""
    from ...wire import TwinError

    if request.params["name"] not in world.pki.authorities:
        raise TwinError(404, "NotFound", f"No certificate authority '{request.params['name']}'.")
    return Response(200, world.pki.bundle(request.params["name"]), {"Content-Type": "application/pkcs7-mime"})
