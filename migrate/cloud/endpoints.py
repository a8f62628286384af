"""Which cloud: ARM endpoint, token audience, authority and Key Vault scope.

Public clouds are known; a Custom cloud (Azure Stack Hub, or the Azure twin) is discovered from
``{armEndpoint}/metadata/endpoints``, trusting the plan's CA bundle when one is given, or through the
session's azure-core transport when one is given (then nothing else opens a connection).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest

from ..errors import OperationalError
from ..spec import CloudSpec


@dataclass(frozen=True)
class CloudEndpoints:
    name: str
    arm: str  # no trailing slash
    arm_scope: str
    authority: str  # https://login.microsoftonline.com
    keyvault_scope: str
    ca_bundle: str | None = None

    @property
    def custom(self) -> bool:
        return self.name == "Custom"


PUBLIC = {
    "AzureCloud": CloudEndpoints(
        "AzureCloud", "https://management.azure.com", "https://management.azure.com/.default",
        "https://login.microsoftonline.com", "https://vault.azure.net/.default",
    ),
    "AzureChinaCloud": CloudEndpoints(
        "AzureChinaCloud", "https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default",
        "https://login.chinacloudapi.cn", "https://vault.azure.cn/.default",
    ),
    "AzureUSGovernment": CloudEndpoints(
        "AzureUSGovernment", "https://management.usgovcloudapi.net", "https://management.usgovcloudapi.net/.default",
        "https://login.microsoftonline.us", "https://vault.usgovcloudapi.net/.default",
    ),
}


def resolve_cloud(spec: CloudSpec, transport: HttpTransport[Any, Any] | None = None) -> CloudEndpoints:
    if spec.name != "Custom":
        known = PUBLIC[spec.name]
        return CloudEndpoints(known.name, known.arm, known.arm_scope, known.authority, known.keyvault_scope, spec.caBundle)
    assert spec.armEndpoint
    arm = spec.armEndpoint.rstrip("/")
    # 2022-09-01 answers one object, the cloud this ARM endpoint belongs to (2019-05-01 lists every cloud).
    url = f"{arm}/metadata/endpoints?api-version=2022-09-01"
    metadata = _current_cloud(_read_metadata(url, spec.caBundle, transport), arm)
    authentication = metadata.get("authentication") or {}
    audiences = authentication.get("audiences") or [arm + "/"]
    login = str(authentication.get("loginEndpoint") or "https://login.microsoftonline.com/").rstrip("/")
    vault_dns = str((metadata.get("suffixes") or {}).get("keyVaultDns") or "vault.azure.net").lstrip(".")
    return CloudEndpoints("Custom", arm, audiences[0].rstrip("/") + "/.default", login, f"https://{vault_dns}/.default", spec.caBundle)


def _current_cloud(metadata: Any, arm: str) -> dict[str, Any]:
    """The document of this ARM endpoint's cloud: the object itself, or from a list the entry whose
    ``resourceManager`` is this endpoint (never simply the first cloud listed)."""
    if isinstance(metadata, dict):
        return metadata
    if isinstance(metadata, list):
        for entry in metadata:
            if isinstance(entry, dict) and str(entry.get("resourceManager") or "").rstrip("/").lower() == arm.lower():
                return entry
    raise OperationalError(f"cloud.armEndpoint: {arm}/metadata/endpoints does not describe the cloud of {arm}")


def _read_metadata(url: str, ca_bundle: str | None, transport: HttpTransport[Any, Any] | None) -> Any:
    """The cloud's metadata document (JSON), over the given transport or a plain HTTPS request."""
    if transport is not None:
        from azure.core.exceptions import AzureError

        try:
            response = transport.send(HttpRequest("GET", url), connection_timeout=30, read_timeout=30)
            if response.status_code != 200:
                raise OperationalError(f"cloud.armEndpoint: cannot read {url}: HTTP {response.status_code}")
            return json.loads(response.read())
        except (AzureError, ValueError) as exc:
            raise OperationalError(f"cloud.armEndpoint: cannot read {url}: {exc}") from None
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as response:  # noqa: S310 - https only (spec check)
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OperationalError(f"cloud.armEndpoint: cannot read {url}: {getattr(exc, 'reason', exc)}") from None


def operation_url_refusal(url: str, cloud: CloudEndpoints) -> str | None:
    """Why a status URL read from the journal must not be polled, or None when it may be (issue 13, defect 1).

    The management client attaches the bearer token to every request it sends, so a resumed run follows an
    ``operation_url`` only to this cloud's ARM endpoint (https, same host and port): Azure-AsyncOperation and
    Location URLs of ARM operations are served there (https://learn.microsoft.com/azure/azure-resource-manager/
    management/async-operations). Anything else is refused before a connection is made."""
    from urllib.parse import urlsplit

    arm = urlsplit(cloud.arm)
    try:
        parts = urlsplit(url)
        port, arm_port = parts.port or 443, arm.port or 443
    except ValueError:
        return "it is not a URL"
    if parts.scheme.lower() != "https":
        return f"its scheme is {parts.scheme or '(none)'!r}, not https"
    if parts.username or parts.password:
        return "it carries credentials"
    host, arm_host = (parts.hostname or "").lower(), (arm.hostname or "").lower()
    if host != arm_host or port != arm_port:
        return f"its host {host or '(none)'}:{port} is not this cloud's ARM endpoint {arm_host}:{arm_port}"
    return None
