"""An Azure DevOps service connection on the twin: a principal federated with the twin's pipeline OIDC
issuer, a System.AccessToken, and the environment an ``AzureCLI@2`` step gives its script.

``POST /_emulator/pipelines`` (control API) returns ``{"env": {...}, "principal": {...}}``; with that env,
``AzurePipelinesCredential`` posts to ``SYSTEM_OIDCREQUESTURI`` and exchanges the assertion at the twin's
token endpoint (https://learn.microsoft.com/python/api/azure-identity/azure.identity.azurepipelinescredential).
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from .providers.authorization.models import ROLES_BY_NAME
from .providers.identity.models import PIPELINE_ISSUER_PREFIX, FederatedCredential
from .providers.identity.routes import PIPELINE_OIDC_PATH

if TYPE_CHECKING:
    from .world import World


def register_pipeline(world: World, body: dict[str, Any]) -> dict[str, Any]:
    connection_id = str(body.get("serviceConnectionId") or uuid.uuid4())
    organisation = str(body.get("organization") or "twin-organization")
    token = secrets.token_urlsafe(32)
    world.identity.pipeline_access_tokens[token] = organisation
    principal = world.identity.new_principal(
        f"sc-{connection_id[:8]}", "ServicePrincipal",
        federated=[FederatedCredential(PIPELINE_ISSUER_PREFIX + organisation, f"sc://twin/sfmigrate/{connection_id}")],
    )
    # What the service connection's principal is granted, as an operator would set it up
    # (runbooks/azure-devops/README.md): Owner on the subscription, certificate read on every vault.
    for subscription in world.subscriptions.values():
        world.authorization.assign(f"/subscriptions/{subscription.id}", ROLES_BY_NAME["owner"].guid, principal.object_id,
                                   "ServicePrincipal", world.iso_now(), subscription.id)
    for vault in world.keyvault.vaults.values():
        if vault.enable_rbac:
            world.authorization.assign(vault.rid.id, ROLES_BY_NAME["key vault reader"].guid, principal.object_id,
                                       "ServicePrincipal", world.iso_now(), vault.rid.subscription)
        else:
            vault.access_policies.append({"tenantId": world.identity.tenant_id, "objectId": principal.object_id,
                                          "permissions": {"certificates": ["get", "list"]}})
    env = {
        "TF_BUILD": "True",
        "SYSTEM_OIDCREQUESTURI": world.base_url + PIPELINE_OIDC_PATH,
        "SYSTEM_ACCESSTOKEN": token,
        "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": connection_id,
        "AZURESUBSCRIPTION_CLIENT_ID": principal.client_id,
        "AZURESUBSCRIPTION_TENANT_ID": world.identity.tenant_id,
        "SYSTEM_COLLECTIONURI": f"https://dev.azure.com/{organisation}/",
        "SYSTEM_TEAMPROJECT": "sfmigrate",
        "BUILD_BUILDID": "42",
    }
    return {"env": env, "principal": principal.public()}
