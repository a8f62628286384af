"""Microsoft.KeyVault: vaults (management plane) and their certificates, versions and policies.

A certificate's versions are what VMSS secrets (versioned URLs) and the Key Vault VM extension
(versionless URLs, always the latest version) deliver to nodes (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows; https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ...pki import Issued
from ...resources import ResourceId, resource_not_found
from ...wire import TwinError
from .network import NetworkRules

if TYPE_CHECKING:
    from ..identity.models import Principal
    from ...world import World

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
_NAMESPACE = uuid.UUID("0b7b7c2e-8a4b-4bb1-9a37-3f0e64a1f6a2")


def _epoch(moment: Any) -> int:
    return int(moment.timestamp())


@dataclass
class CertificateVersion:
    version: str
    issued: Issued
    created: int  # epoch seconds (simulated)
    enabled: bool = True
    exportable: bool | None = None  # its key's export (None: the certificate's); set by writes (cert_writes.py)
    attribute_overrides: dict[str, int] = field(default_factory=dict)  # nbf/exp a client set (cert_writes.py)


@dataclass
class VaultCertificate:
    name: str
    versions: list[CertificateVersion]
    exportable: bool = True
    content_type: str = PKCS12
    issuer_name: str = "Unknown"  # the policy's issuer: Self, a CA provider name, or Unknown
    key_provider: str = "CAPI1"  # the PFX's provider name attribute: CAPI1 | CNG (scenario knob keyProvider)
    tags: dict[str, str] = field(default_factory=dict)

    def latest(self) -> CertificateVersion:
        enabled = [v for v in self.versions if v.enabled]
        if not enabled:
            raise TwinError(403, "Forbidden", f"Operation get is not allowed on a disabled certificate '{self.name}'.")
        return enabled[-1]

    def key_exportable(self, version: CertificateVersion) -> bool:
        """Is this version's key in its secret? Key properties stay with the version they were made with."""
        return self.exportable if version.exportable is None else version.exportable

    def version(self, version: str) -> CertificateVersion:
        for candidate in self.versions:
            if candidate.version.lower() == version.lower():
                return candidate
        raise TwinError(404, "CertificateNotFound", f"A certificate with (name/id) {self.name}/{version} was not found in this key vault.")


@dataclass
class Vault:
    rid: ResourceId
    location: str
    tenant_id: str
    uri: str
    access_policies: list[dict[str, Any]] = field(default_factory=list)
    enable_rbac: bool = False
    enabled_for_deployment: bool = True
    enabled_for_template_deployment: bool = False
    enabled_for_disk_encryption: bool = False
    enable_soft_delete: bool = True
    sku: str = "standard"
    tags: dict[str, str] = field(default_factory=dict)
    certificates: dict[str, VaultCertificate] = field(default_factory=dict)
    network: NetworkRules = field(default_factory=NetworkRules)  # publicNetworkAccess, networkAcls (network.py)
    # Access-policy propagation (docs/twin.md, "Permission propagation and identities"): the data plane enforces
    # ``enforced_policies`` (None: the access policies as they are) until each pending change falls due.
    # ``propagate_at`` says when a change made now takes effect (None: at once); KeyVaultState sets it.
    propagate_at: Callable[[], dt.datetime | None] = field(default=lambda: None, repr=False, compare=False)
    enforced_policies: list[dict[str, Any]] | None = field(default=None, repr=False)
    pending_policies: list[tuple[dt.datetime, list[dict[str, Any]]]] = field(default_factory=list, repr=False)
    pending_certificates: dict[str, Any] = field(default_factory=dict, repr=False)  # name -> cert_writes.PendingCertificate

    @property
    def name(self) -> str:
        return self.rid.name

    def update(self, settings: dict[str, Any]) -> None:
        """Set vault settings by attribute name (what a PUT or PATCH carried, decoded)."""
        before = self.policies_in_force(None) if "access_policies" in settings else None
        for attribute, value in settings.items():
            setattr(self, attribute, value)
        if before is not None:
            self._policies_changed(before)

    def change_access_policies(self, kind: str, changes: list[dict[str, Any]]) -> None:
        """``accessPolicies/{add|replace|remove}``."""
        before = self.policies_in_force(None)
        self.access_policies = merge_access_policies(self.access_policies, kind, changes)
        self._policies_changed(before)

    def _policies_changed(self, before: list[dict[str, Any]]) -> None:
        """ARM shows the new access policies at once; the data plane enforces them from ``propagate_at()``."""
        due = self.propagate_at()
        if due is None:
            self.enforced_policies, self.pending_policies = None, []
            return
        if self.enforced_policies is None:
            self.enforced_policies = copy.deepcopy(before)
        self.pending_policies.append((due, copy.deepcopy(self.access_policies)))

    def policies_in_force(self, at: dt.datetime | None) -> list[dict[str, Any]]:
        """The access policies the data plane enforces at ``at`` (None: without settling pending changes)."""
        if at is None:
            return self.access_policies if self.enforced_policies is None else self.enforced_policies
        while self.pending_policies and self.pending_policies[0][0] <= at:
            self.enforced_policies = self.pending_policies.pop(0)[1]
        if self.enforced_policies is None:
            return self.access_policies
        return self.enforced_policies

    def certificate(self, name: str) -> VaultCertificate:
        found = self.certificates.get(name.lower())
        if found is None:
            raise TwinError(404, "CertificateNotFound", f"A certificate with (name/id) {name} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command.")
        return found

    def body(self, connections: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The ARM body; ``connections``: the private endpoint connections (KeyVaultState.body fills them)."""
        return {
            "id": self.rid.id,
            "name": self.rid.name,
            "type": "Microsoft.KeyVault/vaults",
            "location": self.location,
            "tags": self.tags,
            "properties": {
                "sku": {"family": "A", "name": self.sku},
                "tenantId": self.tenant_id,
                "accessPolicies": self.access_policies,
                "enabledForDeployment": self.enabled_for_deployment,
                "enabledForDiskEncryption": self.enabled_for_disk_encryption,
                "enabledForTemplateDeployment": self.enabled_for_template_deployment,
                "enableSoftDelete": self.enable_soft_delete,
                "softDeleteRetentionInDays": 90,
                "enableRbacAuthorization": self.enable_rbac,
                "vaultUri": self.uri,
                "provisioningState": "Succeeded",
                "publicNetworkAccess": self.network.public_network_access,
                "networkAcls": self.network.acls_body(),
                "privateEndpointConnections": connections or [],
            },
        }


_CERT_PERMS = {"get": "Microsoft.KeyVault/vaults/certificates/read", "list": "Microsoft.KeyVault/vaults/certificates/read"}
_SECRET_PERMS = {
    "get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
}


def _same_principal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        a["tenantId"].lower() == b["tenantId"].lower()
        and a["objectId"].lower() == b["objectId"].lower()
        and (a.get("applicationId") or "").lower() == (b.get("applicationId") or "").lower()
    )


def merge_access_policies(current: list[dict[str, Any]], kind: str, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Vaults_UpdateAccessPolicy semantics: ``add`` unions permissions, ``remove`` subtracts, ``replace`` sets."""
    result = [
        {**p, "permissions": {k: list(v) for k, v in p.get("permissions", {}).items()}} for p in current
    ]
    for change in changes:
        match = next((p for p in result if _same_principal(p, change)), None)
        if kind == "add":
            if match is None:
                result.append(change)
                continue
            for perm_kind, granted in change["permissions"].items():
                have = match["permissions"].setdefault(perm_kind, [])
                for permission in granted:
                    if permission.lower() not in {h.lower() for h in have}:
                        have.append(permission)
        elif kind == "replace":
            if match is None:
                result.append(change)
            else:
                match["permissions"] = change["permissions"]
        else:  # remove
            if match is None:
                continue
            for perm_kind, granted in change["permissions"].items():
                drop = {g.lower() for g in granted}
                match["permissions"][perm_kind] = [p for p in match["permissions"].get(perm_kind, []) if p.lower() not in drop]
            if not any(match["permissions"].values()):
                result.remove(match)
    return result



class KeyVaultState:
    def __init__(self, world: World) -> None:
        self.world = world
        self.vaults: dict[str, Vault] = {}  # key: lower-cased resource id
        # Simulated seconds before an access-policy change is enforced by the data plane; the scenario's
        # ``propagation.accessPolicies`` sets it (pessimistic: undocumented).
        self.access_policy_delay = 0.0

    def _policy_due(self) -> dt.datetime | None:
        if self.access_policy_delay <= 0:
            return None
        return self.world.now() + dt.timedelta(seconds=self.access_policy_delay)

    # -- vaults -------------------------------------------------------------------------------------
    def add_vault(self, rid: ResourceId, location: str, **properties: Any) -> Vault:
        if self.by_name(rid.name):
            raise TwinError(409, "VaultAlreadyExists", f"The vault name '{rid.name}' is already in use.")
        uri = self.world.vault_uri(rid.name) if self.world.vault_uri else f"{self.world.base_url}/kv/{rid.name}/"
        vault = Vault(rid, location, self.world.identity.tenant_id, uri, **properties)
        vault.propagate_at = self._policy_due
        self.vaults[rid.key] = vault
        return vault

    def put(self, rid: ResourceId, location: str, settings: dict[str, Any]) -> Vault:
        """Create the vault, or replace the settings of the one there (a PUT is the whole resource)."""
        existing = self.vaults.get(rid.key)
        if existing:
            existing.update(settings)
            return existing
        return self.add_vault(rid, location, **settings)

    def delete(self, rid: ResourceId) -> bool:
        """Remove the vault; False if there was none."""
        return self.vaults.pop(rid.key, None) is not None

    def get(self, resource_id: str) -> Vault:
        found = self.vaults.get(resource_id.lower())
        if found is None:
            raise resource_not_found("Microsoft.KeyVault/vaults", resource_id)
        return found

    def body(self, vault: Vault) -> dict[str, Any]:
        """The vault's ARM body with the private endpoint connections that target it."""
        return vault.body([e.connection_body() for e in self.world.network.endpoints_of(vault.rid.id)])

    def by_name(self, name: str) -> Vault | None:
        for vault in self.vaults.values():
            if vault.name.lower() == name.lower():
                return vault
        return None

    def named(self, name: str) -> Vault:
        """The vault called ``name`` (404 VaultNotFound if there is none)."""
        vault = self.by_name(name)
        if vault is None:
            raise TwinError(404, "VaultNotFound", f"No vault named '{name}'.")
        return vault

    # -- certificates -------------------------------------------------------------------------------
    def add_version(self, vault: Vault, name: str, issued: Issued, **policy: Any) -> CertificateVersion:
        certificate = vault.certificates.get(name.lower())
        if certificate is None:
            certificate = VaultCertificate(name, [], **policy)
            vault.certificates[name.lower()] = certificate
        version_id = uuid.uuid5(_NAMESPACE, f"{vault.name}/{name}/{len(certificate.versions)}/{issued.thumbprint}").hex
        version = CertificateVersion(version_id, issued, _epoch(self.world.now()))
        certificate.versions.append(version)
        return version

    def renew(
        self, vault: Vault, certificate: VaultCertificate, issuer: str | None, subject: str,
        not_before: dt.datetime, not_after: dt.datetime, *, sans: list[str], ekus: list[str],
    ) -> CertificateVersion:
        """A new version of ``certificate``, issued by authority ``issuer`` (None: self-signed).

        VMSS secrets keep naming the version they name; the Key Vault VM extension installs the new one at
        its next poll.
        """
        issued = self.world.pki.issue_leaf(
            f"{vault.name}/{certificate.name}@{len(certificate.versions)}", subject, not_before, not_after,
            issuer=issuer, sans=sans, ekus=ekus,
        )
        return self.add_version(vault, certificate.name, issued)

    def resolve_secret_url(self, url: str, *, versioned: bool | None = None) -> tuple[Vault, VaultCertificate, CertificateVersion | None]:
        """Map ``{vaultUri}secrets/{name}[/{version}]`` to the vault certificate behind it."""
        vault = next((v for v in self.vaults.values() if url.lower().startswith(v.uri.lower())), None)
        parts = [p for p in urlsplit(url[len(vault.uri):] if vault else "").path.split("/") if p]
        if vault is None or len(parts) < 2 or parts[0].lower() != "secrets":
            raise TwinError(400, "InvalidSecretUrl", f"'{url}' does not name a secret of an existing vault.")
        name, rest = parts[1], parts[2:]
        if versioned is True and not rest:
            raise TwinError(400, "InvalidParameter", f"The secret URL '{url}' must be versioned.")
        if versioned is False and rest:
            raise TwinError(400, "InvalidParameter", f"The secret URL '{url}' must be versionless.")
        certificate = vault.certificate(name)
        return vault, certificate, certificate.version(rest[0]) if rest else None

    def secret_url(self, vault: Vault, name: str, version: str | None = None) -> str:
        return f"{vault.uri}secrets/{name}" + (f"/{version}" if version else "")

    # -- data-plane authorisation (access policies or RBAC data actions) ----------------------------
    def may(self, principal_id: str, vault: Vault, kind: str, permission: str) -> bool:
        """What the data plane allows now: grants not yet propagated do not count."""
        now = self.world.now()
        if vault.enable_rbac:
            action = (_CERT_PERMS if kind == "certificates" else _SECRET_PERMS).get(permission)
            return action is not None and self.world.authorization.allowed(principal_id, action, vault.rid.id, data=True, at=now)
        for policy in vault.policies_in_force(now):
            if policy.get("objectId") != principal_id:
                continue
            granted = [p.lower() for p in (policy.get("permissions") or {}).get(kind, [])]
            if permission.lower() in granted or "all" in granted:
                return True
        return False

    def demand(self, principal: Principal, vault: Vault, kind: str, permission: str) -> None:
        if self.may(principal.object_id, vault, kind, permission):
            return
        if vault.enable_rbac:
            raise TwinError(
                403,
                "Forbidden",
                f"Caller is not authorized to perform action on resource. If role assignments, deny assignments or "
                f"role definitions were changed recently, please observe propagation time. Caller: appid={principal.client_id};"
                f"oid={principal.object_id} Vault: {vault.name};location={vault.location}",
            )
        raise TwinError(
            403,
            "Forbidden",
            f"The user, group or application 'appid={principal.client_id};oid={principal.object_id}' does not have "
            f"{kind} {permission} permission on key vault '{vault.name};location={vault.location}'. For help "
            "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
        )

    # -- what a secret holds (for the VM extension and CRP; the migration never reads it) -----------
    @staticmethod
    def secret_value(certificate: VaultCertificate, version: CertificateVersion) -> str:
        """The secret behind a certificate version; a non-exportable key is not in it (public part only)."""
        issued = version.issued
        if not certificate.key_exportable(version):
            if certificate.content_type == PEM:
                return issued.pem
            return base64.b64encode(issued.der).decode("ascii")
        if certificate.content_type == PEM:
            key = issued.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
            return key + "".join(link.pem for link in issued.chain())
        blob = pkcs12.serialize_key_and_certificates(
            certificate.name.encode(),
            issued.key,
            issued.cert,
            [link.cert for link in issued.chain()[1:]] or None,
            serialization.NoEncryption(),
        )
        return base64.b64encode(blob).decode("ascii")

    def snapshot(self) -> list[dict[str, Any]]:
        out = []
        for vault in self.vaults.values():
            out.append(
                {
                    "id": vault.rid.id,
                    "name": vault.name,
                    "uri": vault.uri,
                    "rbac": vault.enable_rbac,
                    "enabledForDeployment": vault.enabled_for_deployment,
                    "accessPolicies": vault.access_policies,
                    "network": vault.network.public(),
                    "certificates": [
                        {
                            "name": c.name,
                            "exportable": c.exportable,
                            "contentType": c.content_type,
                            "keyProvider": c.key_provider,
                            "versions": [
                                {
                                    "version": v.version,
                                    "thumbprint": v.issued.thumbprint,
                                    "subject": v.issued.facts.subject,
                                    "issuer": v.issued.issuer.name if v.issued.issuer else "self",
                                    "notBefore": v.issued.facts.not_before.isoformat(),
                                    "notAfter": v.issued.facts.not_after.isoformat(),
                                    "enabled": v.enabled,
                                }
                                for v in c.versions
                            ],
                        }
                        for c in vault.certificates.values()
                    ],
                }
            )
        return out
