"""The Azure gateway: the only module that calls azure-mgmt-* and azure-keyvault-certificates.

Reads come back as the raw JSON ARM sent (what the planner diffs; scale sets are written by subtree, never by a
full PUT built from a GET, which would drop write-only protectedSettings: migrate.scale_set_writes);
writes send raw JSON bytes, so no SDK model drops a property it does not know. Every long-running
operation reports its status URL as soon as the first response arrives, so the journal can record it and a
resumed run can re-attach instead of re-sending (issue 5). Errors leave here as ``migrate.errors`` types
(:mod:`.azure_errors`); every client gets the per-call policies of :mod:`.policies`.

``transport`` (an azure-core ``HttpTransport``) is the seam under every client built here and under
``fetch_public``: given one, this module opens no connection of its own (httpx's ``transport=``).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest

from ..arm_ids import id_parts, subscription_of
from ..errors import AzureRequestFailed, NotFound, OperationalError, UsageError
from .azure_errors import azure_errors, retry_after
from .endpoints import CloudEndpoints, operation_url_refusal
from .http_log import HttpTrace
from .policies import AzureClock, BeforeWrite, BudgetGate, RequestStats, Accounting, WriteBudget, WriteGate

OperationCallback = Callable[[str], None]
Transport = HttpTransport[Any, Any]


#: the api-version azure-mgmt-compute 39 (pyproject: >=39,<40) sends for virtual_machine_scale_set_vms.list
_VMS_API_VERSION = "2026-04-01"


def _raw(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
    body = pipeline_response.http_response.text()
    return json.loads(body) if body else None


def _object(value: Any, resource_id: str) -> dict[str, Any]:
    """A raw ARM answer that must be a JSON object (an empty answer reads as ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OperationalError(f"{resource_id}: Azure answered {type(value).__name__} where a JSON object was expected")
    return value


def _as_raw(model: Any) -> dict[str, Any]:
    """SDK model -> REST JSON (compute 39 models are mappings; msrest models serialise)."""
    if hasattr(model, "as_dict") and not hasattr(model, "serialize"):
        return dict(model.as_dict())
    return dict(model.serialize(keep_readonly=True))


class Gateway:
    def __init__(
        self,
        cloud: CloudEndpoints,
        credential: Any,
        *,
        poll_interval: float = 10.0,
        retry_backoff: float | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.cloud = cloud
        self.credential = credential
        self.transport = transport
        self.poll_interval = poll_interval
        self.stats = RequestStats()
        self.clock = AzureClock()
        self._retry_backoff = retry_backoff
        self.before_write: BeforeWrite | None = None  # set by the runner for the length of a run (WriteGate)
        self.write_budget: WriteBudget | None = None  # a fleet's per-subscription write budget (BudgetGate)
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    # -- clients ------------------------------------------------------------------------------------
    def _common(self) -> dict[str, Any]:
        """Options every client gets: accounting, the CA bundle, the retry back-off and the transport."""
        # A fresh policy list per client: azure-mgmt-core appends to it in place (azure.mgmt.core.ARMPipelineClient.__init__).
        kwargs: dict[str, Any] = {"per_call_policies": [Accounting(self.stats, self.clock)],
                                  "per_retry_policies": [BudgetGate(self), WriteGate(self), HttpTrace()]}  # HttpTrace: --debug lines
        if self.cloud.ca_bundle:
            kwargs["connection_verify"] = self.cloud.ca_bundle
        if self._retry_backoff is not None:
            kwargs["retry_backoff_factor"] = self._retry_backoff
        if self.transport is not None:
            kwargs["transport"] = self.transport
        return kwargs

    def _kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.cloud.arm,
            "credential_scopes": [self.cloud.arm_scope],
            "polling_interval": self.poll_interval,
            **self._common(),
        }

    def _client(self, kind: str, subscription: str) -> Any:
        key = (kind, subscription.lower())
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._build(kind, subscription)
            return self._clients[key]

    def _build(self, kind: str, subscription: str) -> Any:
        return _client_class(kind)(self.credential, subscription, **self._kwargs())

    def certificates(self, vault_uri: str) -> Any:
        key = ("certificates", vault_uri.lower())
        with self._lock:
            if key not in self._clients:
                from azure.keyvault.certificates import CertificateClient

                kwargs = self._common()
                # A custom cloud's vaults are not *.vault.azure.net: the challenge resource cannot match
                # the host, so its verification is off there (and only there; docs/twin.md).
                self._clients[key] = CertificateClient(
                    vault_uri, self.credential, verify_challenge_resource=not self.cloud.custom, **kwargs
                )
            return self._clients[key]

    # -- reads (raw JSON) ---------------------------------------------------------------------------
    def get_cluster(self, cluster_id: str) -> dict[str, Any]:
        sub, group, name = id_parts(cluster_id)
        with azure_errors(cluster_id):
            return _object(self._client("servicefabric", sub).clusters.get(group, name, cls=_raw), cluster_id)

    def list_clusters(self, subscription: str, resource_group: str | None = None) -> list[dict[str, Any]]:
        """The classic clusters of a subscription (or one of its resource groups), as ARM lists them (a fleet's select)."""
        client = self._client("servicefabric", subscription)
        with azure_errors(f"/subscriptions/{subscription}" + (f"/resourceGroups/{resource_group}" if resource_group else "")):
            found = client.clusters.list_by_resource_group(resource_group) if resource_group else client.clusters.list()
            return [_as_raw(m) for m in found]

    def get_scale_set(self, vmss_id: str) -> dict[str, Any]:
        sub, group, name = id_parts(vmss_id)
        with azure_errors(vmss_id):
            return _object(self._client("compute", sub).virtual_machine_scale_sets.get(group, name, cls=_raw), vmss_id)

    def list_scale_sets(self, subscription: str) -> list[dict[str, Any]]:
        with azure_errors(f"/subscriptions/{subscription}"):
            return [_as_raw(m) for m in self._client("compute", subscription).virtual_machine_scale_sets.list_all()]

    def list_instances(self, vmss_id: str) -> list[dict[str, Any]]:
        """The scale set's VMs with their instance views, as ARM's raw JSON pages (nextLink followed): the SDK's
        models would be built and taken apart again for every VM on every poll (docs/twin.md, "Big worlds")."""
        sub = subscription_of(vmss_id)
        client = self._client("compute", sub)
        url: str | None = f"{vmss_id}/virtualMachines?$expand=instanceView&api-version={_VMS_API_VERSION}"
        found: list[dict[str, Any]] = []
        with azure_errors(vmss_id):
            while url:
                response = client.send_request(HttpRequest("GET", url))
                response.raise_for_status()
                page = _object(response.json() if response.text() else None, vmss_id)
                found.extend(item for item in page.get("value") or [] if isinstance(item, dict))
                url = page.get("nextLink") or None
        return found

    def get_vault(self, vault_id: str) -> dict[str, Any]:
        sub, group, name = id_parts(vault_id)
        with azure_errors(vault_id):
            return _object(self._client("keyvault", sub).vaults.get(group, name, cls=_raw), vault_id)

    def get_resource(self, resource_id: str, api_version: str) -> dict[str, Any]:
        """A generic ARM GET (resource types sfmigrate has no SDK for, e.g. Microsoft.Network subnets), through the
        management pipeline: same credential, retries, accounting and CA bundle as every other read."""
        sub = subscription_of(resource_id)
        with azure_errors(resource_id):
            response = self._client("keyvault", sub).send_request(HttpRequest("GET", f"{resource_id}?api-version={api_version}"))
            response.raise_for_status()
            return _object(response.json() if response.text() else None, resource_id)

    def get_identity(self, identity_id: str) -> dict[str, Any] | None:
        sub, group, name = id_parts(identity_id)
        try:
            with azure_errors(identity_id):
                return _object(self._client("msi", sub).user_assigned_identities.get(group, name, cls=_raw), identity_id)
        except NotFound:
            return None

    def list_role_assignments(self, scope: str, principal_id: str | None = None) -> list[dict[str, Any]]:
        sub = subscription_of(scope)
        query = f"principalId eq '{principal_id}'" if principal_id else None
        with azure_errors(scope):
            found = self._client("authorization", sub).role_assignments.list_for_scope(scope, filter=query)
            return [_as_raw(m) for m in found]

    def get_certificate(self, vault_uri: str, name: str) -> Any:
        with azure_errors(f"{vault_uri}certificates/{name}"):
            return self.certificates(vault_uri).get_certificate(name)

    def get_certificate_version(self, vault_uri: str, name: str, version: str) -> Any:
        with azure_errors(f"{vault_uri}certificates/{name}/{version}"):
            return self.certificates(vault_uri).get_certificate_version(name, version)

    def list_certificate_versions(self, vault_uri: str, name: str) -> list[Any]:
        with azure_errors(f"{vault_uri}certificates/{name}/versions"):
            return list(self.certificates(vault_uri).list_properties_of_certificate_versions(name))

    def list_certificates(self, vault_uri: str) -> list[Any]:
        with azure_errors(f"{vault_uri}certificates"):
            return list(self.certificates(vault_uri).list_properties_of_certificates())

    def fetch_public(self, url: str) -> bytes:
        """GET public material (an issuer certificate at its AIA URL, a CRL); no credentials are sent.

        http/https only, short timeouts, at most ``MAX_PUBLIC_BYTES``: a URL comes from a certificate."""
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise OperationalError(f"{url}: only http and https URLs are fetched")
        if self.transport is not None:  # shared with the clients: send on it, never close it here
            return _public_body(url, self.transport.send(HttpRequest("GET", url), connection_timeout=5, read_timeout=10))
        from azure.core.pipeline.transport import RequestsTransport

        with RequestsTransport(connection_verify=self.cloud.ca_bundle or True) as own:
            return _public_body(url, own.send(HttpRequest("GET", url), connection_timeout=5, read_timeout=10))

    # -- writes -------------------------------------------------------------------------------------
    def put_identity(self, identity_id: str, location: str) -> dict[str, Any]:
        sub, group, name = id_parts(identity_id)
        body = json.dumps({"location": location, "tags": {"createdBy": "sfmigrate"}}).encode()
        with azure_errors(identity_id):
            return _object(self._client("msi", sub).user_assigned_identities.create_or_update(
                group, name, body, content_type="application/json", cls=_raw
            ), identity_id)

    def add_access_policy(self, vault_id: str, tenant_id: str, object_id: str, secrets: list[str]) -> dict[str, Any]:
        sub, group, name = id_parts(vault_id)
        body = {"properties": {"accessPolicies": [{"tenantId": tenant_id, "objectId": object_id, "permissions": {"secrets": secrets}}]}}
        with azure_errors(vault_id):
            return _object(self._client("keyvault", sub).vaults.update_access_policy(
                group, name, "add", json.dumps(body).encode(), content_type="application/json", cls=_raw
            ), vault_id)

    def patch_vault(self, vault_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        sub, group, name = id_parts(vault_id)
        with azure_errors(vault_id):
            return _object(self._client("keyvault", sub).vaults.update(
                group, name, json.dumps({"properties": properties}).encode(), content_type="application/json", cls=_raw
            ), vault_id)

    def create_role_assignment(self, scope: str, name: str, role_definition_id: str, principal_id: str) -> dict[str, Any]:
        sub = subscription_of(scope)
        body = {"properties": {"roleDefinitionId": role_definition_id, "principalId": principal_id, "principalType": "ServicePrincipal"}}
        with azure_errors(scope):
            return _object(self._client("authorization", sub).role_assignments.create(
                scope, name, json.dumps(body).encode(), content_type="application/json", cls=_raw
            ), scope)

    def _long_running(self, kind: str, resource_id: str, operation: str, body: dict[str, Any],
                      on_operation: OperationCallback, *, raw: bool = True, etag: str | None = None,
                      child: str | None = None) -> Any:
        """Send a long-running write as raw JSON, report its status URL at once, wait with the SDK's poller.
        ``child``: the name of a scale set's extension (its child resource) instead of the scale set."""
        sub, group, name = id_parts(resource_id)
        client = self._client(kind, sub)
        if kind == "servicefabric":
            operations = client.clusters
        elif child is not None:
            operations = client.virtual_machine_scale_set_extensions
        else:
            operations = client.virtual_machine_scale_sets
        names = (group, name) if child is None else (group, name, child)
        extra: dict[str, Any] = {"cls": _raw} if raw else {}
        if etag:  # compute 39: etag + match_condition become If-Match
            from azure.core import MatchConditions

            extra.update(etag=etag, match_condition=MatchConditions.IfNotModified)
        with azure_errors(resource_id):
            poller = getattr(operations, operation)(
                *names, json.dumps(body).encode(), content_type="application/json",
                raw_response_hook=_first_operation_url(on_operation), **extra,
            )
            return poller.result()

    def patch_scale_set(self, vmss_id: str, body: dict[str, Any], on_operation: OperationCallback,
                        etag: str | None = None) -> dict[str, Any]:
        """VirtualMachineScaleSets_Update: a merge patch of just the subtrees the body names."""
        return _object(self._long_running("compute", vmss_id, "begin_update", body, on_operation, etag=etag), vmss_id)

    def put_scale_set_extension(self, vmss_id: str, name: str, body: dict[str, Any], on_operation: OperationCallback) -> dict[str, Any]:
        """VirtualMachineScaleSetExtensions_CreateOrUpdate: the extension child resource, whole."""
        return _object(self._long_running("compute", vmss_id, "begin_create_or_update", body, on_operation, child=name), vmss_id)

    def patch_scale_set_extension(self, vmss_id: str, name: str, body: dict[str, Any], on_operation: OperationCallback) -> dict[str, Any]:
        """VirtualMachineScaleSetExtensions_Update: only the properties the body names change (protectedSettings kept)."""
        return _object(self._long_running("compute", vmss_id, "begin_update", body, on_operation, child=name), vmss_id)

    def update_instances(self, vmss_id: str, instance_ids: list[str], on_operation: OperationCallback) -> None:
        self._long_running("compute", vmss_id, "begin_update_instances", {"instanceIds": instance_ids}, on_operation, raw=False)

    def patch_cluster(self, cluster_id: str, body: dict[str, Any], on_operation: OperationCallback) -> dict[str, Any]:
        return _object(self._long_running("servicefabric", cluster_id, "begin_update", body, on_operation), cluster_id)

    def put_cluster(self, cluster_id: str, body: dict[str, Any], on_operation: OperationCallback) -> dict[str, Any]:
        return _object(self._long_running("servicefabric", cluster_id, "begin_create_or_update", body, on_operation), cluster_id)

    # -- re-attaching to an operation a previous run started ----------------------------------------
    def wait_operation(self, url: str, resource_id: str, timeout: float = 6 * 3600) -> None:
        """Poll an ARM status URL (Azure-AsyncOperation or Location) until it is done; raise if it failed.

        The URL comes from the journal (input anyone who can write the state can edit): one that is not on
        this cloud's ARM endpoint is refused before any connection, since the client sends the token with it."""
        refusal = operation_url_refusal(url, self.cloud)
        if refusal is not None:
            raise UsageError(f"the journal's operation URL {url.split('?')[0][:200]} is refused: {refusal}; "
                             "sfmigrate sends its token only to the ARM endpoint (see docs/security.md)")
        sub = id_parts(resource_id)[0]
        client = self._client("compute", sub)
        deadline = time.monotonic() + timeout
        while True:
            with azure_errors(resource_id):
                response = client.send_request(HttpRequest("GET", url))
            status = response.status_code
            body: Any = None
            try:
                body = response.json() if response.text() else None
            except ValueError:
                body = None
            state = str(body.get("status", "")).lower() if isinstance(body, dict) else ""
            if status == 202 or (state and state not in {"succeeded", "failed", "canceled"}):  # any other status is not final
                if time.monotonic() > deadline:
                    raise OperationalError(f"{resource_id}: the operation at {url} did not finish in time")
                time.sleep(retry_after(response.headers, self.poll_interval))
                continue
            if status >= 400 or (isinstance(body, dict) and str(body.get("status", "")).lower() in {"failed", "canceled"}):
                error = (body or {}).get("error") if isinstance(body, dict) else None
                message = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else f"HTTP {status}"
                if status == 404:
                    raise NotFound(resource_id, f"the operation a previous run started is unknown ({url})")
                raise AzureRequestFailed(f"{resource_id}: operation failed: {message}", status, (error or {}).get("code") if isinstance(error, dict) else None)
            return


def _client_class(kind: str) -> Any:
    """The management client class for ``kind`` (imported on first use: each is a large package)."""
    if kind == "compute":
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient
    if kind == "servicefabric":
        from azure.mgmt.servicefabric import ServiceFabricManagementClient

        return ServiceFabricManagementClient
    if kind == "keyvault":
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return KeyVaultManagementClient
    if kind == "msi":
        from azure.mgmt.msi import ManagedServiceIdentityClient

        return ManagedServiceIdentityClient
    if kind == "authorization":
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient
    raise ValueError(kind)  # pragma: no cover - programming error


MAX_PUBLIC_BYTES = 4 * 1024 * 1024  # a large public CA's CRL fits; anything bigger is refused


def _public_body(url: str, response: Any) -> bytes:
    if response.status_code != 200:
        raise OperationalError(f"GET {url} answered {response.status_code}")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_PUBLIC_BYTES:
        raise OperationalError(f"GET {url}: {declared} bytes is more than {MAX_PUBLIC_BYTES}")
    body = bytes(response.read())
    if len(body) > MAX_PUBLIC_BYTES:
        raise OperationalError(f"GET {url}: more than {MAX_PUBLIC_BYTES} bytes")
    return body


def _first_operation_url(callback: OperationCallback) -> Callable[[Any], None]:
    """A raw_response_hook that reports the operation URL of the first (initial) response only."""
    seen = {"done": False}

    def hook(response: Any) -> None:
        if seen["done"] or response.http_response.status_code >= 400:
            return  # a throttled or failed attempt the retry policy will repeat
        seen["done"] = True
        headers = response.http_response.headers
        url = headers.get("Azure-AsyncOperation") or headers.get("Location")
        if url:
            callback(url)

    return hook
