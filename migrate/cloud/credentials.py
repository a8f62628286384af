"""Credential choice: AzurePipelinesCredential inside an Azure DevOps service-connection step, otherwise
DefaultAzureCredential. CLI-based tokens expire during long upgrades in pipelines, while the pipelines credential
fetches a fresh federated assertion whenever it needs a token (runbooks/azure-devops/README.md).
A session's azure-core transport, when given, carries the credential's token requests too.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from azure.core.pipeline.transport import HttpTransport

from .endpoints import CloudEndpoints

log = logging.getLogger("sfmigrate")

PIPELINE_VARIABLES = (
    "SYSTEM_OIDCREQUESTURI",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "AZURESUBSCRIPTION_CLIENT_ID",
    "AZURESUBSCRIPTION_TENANT_ID",
)


def choose_credential(cloud: CloudEndpoints, env: Mapping[str, str] | None = None,
                      transport: HttpTransport[Any, Any] | None = None) -> tuple[Any, str]:
    """The credential to use and a description of the choice (never a secret)."""
    env = os.environ if env is None else env
    common: dict[str, Any] = {}
    if transport is not None:
        common["transport"] = transport
    if cloud.ca_bundle:
        common["connection_verify"] = cloud.ca_bundle
    if cloud.name != "AzureCloud" and not env.get("AZURE_AUTHORITY_HOST"):
        common["authority"] = cloud.authority  # sovereign and custom clouds sign in elsewhere
    if all(env.get(v) for v in PIPELINE_VARIABLES):
        from azure.identity import AzurePipelinesCredential

        token = env.get("SYSTEM_ACCESSTOKEN")
        if not token:
            from ..errors import UsageError

            raise UsageError(
                "SYSTEM_ACCESSTOKEN: the pipeline step must map it (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)) "
                "so AzurePipelinesCredential can request federated tokens"
            )
        if env.get("AZURE_AUTHORITY_HOST"):
            common["authority"] = env["AZURE_AUTHORITY_HOST"]
        credential = AzurePipelinesCredential(
            tenant_id=env["AZURESUBSCRIPTION_TENANT_ID"],
            client_id=env["AZURESUBSCRIPTION_CLIENT_ID"],
            service_connection_id=env["AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"],
            system_access_token=token,
            **common,
        )
        return credential, f"AzurePipelinesCredential (service connection {env['AZURESUBSCRIPTION_SERVICE_CONNECTION_ID']})"
    from azure.identity import DefaultAzureCredential

    pinned = env.get("AZURE_TOKEN_CREDENTIALS")
    return DefaultAzureCredential(**common), "DefaultAzureCredential" + (f" (AZURE_TOKEN_CREDENTIALS={pinned})" if pinned else "")


def caller_tenant(env: Mapping[str, str] | None = None) -> str:
    """Which tenant the credential signs in to, as far as the environment says (never a secret)."""
    env = os.environ if env is None else env
    tenant = env.get("AZURESUBSCRIPTION_TENANT_ID") if all(env.get(v) for v in PIPELINE_VARIABLES) else env.get("AZURE_TENANT_ID")
    return f" in tenant {tenant}" if tenant else " in its default tenant (az account show)"
