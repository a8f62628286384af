"""The observed state of one cluster and everything its migration touches (plain data).

Discovery (``migrate.discovery``) fills it with GET requests only; checks and the planner read it without
any I/O. It serialises to JSON for saved plans and for the fingerprints that make a stale plan visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .network import VaultNetworkView
from .readers import COMMON_NAME, KV_EXTENSION_TYPES, SF_EXTENSION_TYPES, THUMBPRINT, Declaration, declaration_kind
from .x509 import CertFacts

__all__ = [  # THUMBPRINT and COMMON_NAME: the declaration kinds, re-exported for the checks and the planner
    "THUMBPRINT", "COMMON_NAME", "Problem", "KnownCertificate", "ClusterView", "ExtensionView", "InstanceView", "SecretRef",
    "NodeTypeView", "VaultView", "GoalView", "IdentityView", "RoleAssignmentView", "VaultCertificateView", "Snapshot",
    "PublicEndpoint",
]


@dataclass
class Problem:
    """Something discovery could not see (becomes a RESOURCE_NOT_FOUND / PERMISSION_DENIED finding)."""

    code: str
    resource_id: str
    message: str


@dataclass
class KnownCertificate:
    """A certificate version discovery could identify (public part only)."""

    thumbprint: str
    facts: CertFacts
    vault_id: str | None = None
    name: str | None = None
    version: str | None = None
    secret_url: str | None = None  # the versioned secret URL, as VMSS secrets reference it


@dataclass
class ClusterView:
    id: str
    name: str
    location: str
    cluster_state: str
    provisioning_state: str
    code_version: str | None
    cluster_endpoint: str | None
    thumbprint: str | None
    thumbprint_secondary: str | None
    common_names: list[dict[str, str]]  # [{certificateCommonName, certificateIssuerThumbprint}]
    x509_store_name: str
    reverse_proxy_thumbprint: str | None
    reverse_proxy_common_names: list[dict[str, str]]
    node_type_names: list[str]
    raw: dict[str, Any]  # the resource as ARM returned it (the basis of a full PUT)

    @property
    def declaration(self) -> Declaration:
        """thumbprint | common_name | none, read from the body (``readers.declaration_kind``)."""
        return declaration_kind(self.raw)

    @property
    def declared_thumbprints(self) -> list[str]:
        return [t for t in (self.thumbprint, self.thumbprint_secondary) if t]

    @property
    def reverse_proxy_thumbprints(self) -> list[str]:
        """Every thumbprint ``reverseProxyCertificate`` declares (primary, then secondary), upper-case."""
        reverse = (self.raw.get("properties") or {}).get("reverseProxyCertificate") or {}
        declared = [self.reverse_proxy_thumbprint, str(reverse.get("thumbprintSecondary") or "").upper() or None]
        return [t for t in declared if t]


@dataclass
class ExtensionView:
    name: str
    publisher: str
    type: str
    type_handler_version: str
    settings: dict[str, Any]
    provision_after: list[str]
    auto_upgrade_minor_version: bool | None = None
    enable_automatic_upgrade: bool | None = None


@dataclass
class InstanceView:
    instance_id: str
    name: str
    latest_model_applied: bool
    provisioning_state: str
    update_domain: int | None
    extension_statuses: dict[str, dict[str, str]]  # name -> {code, message}


@dataclass
class SecretRef:
    vault_id: str
    certificate_url: str
    certificate_store: str | None


@dataclass
class NodeTypeView:
    vmss_id: str
    name: str
    node_type_ref: str | None
    os: str  # windows | linux
    upgrade_mode: str  # Automatic | Manual | Rolling
    capacity: int
    location: str
    identity_type: str | None
    user_assigned_identities: list[str]
    secrets: list[SecretRef]
    extensions: list[ExtensionView]
    instances: list[InstanceView]
    raw: dict[str, Any]

    def extension_of_type(self, *types: str) -> ExtensionView | None:
        for extension in self.extensions:
            if extension.type in types:
                return extension
        return None

    @property
    def sf_extension(self) -> ExtensionView | None:
        return self.extension_of_type(*SF_EXTENSION_TYPES)

    @property
    def kv_extension(self) -> ExtensionView | None:
        return self.extension_of_type(*KV_EXTENSION_TYPES)


@dataclass
class VaultView:
    id: str
    name: str
    uri: str
    tenant_id: str
    rbac: bool
    enabled_for_deployment: bool
    soft_delete: bool
    access_policies: list[dict[str, Any]]


@dataclass
class PublicEndpoint:
    """A URL found in the goal's chain (AIA caIssuers or CRL Distribution Point), fetched without credentials."""

    kind: str  # aia | crl
    url: str
    certificate: str  # thumbprint of the certificate that names the URL
    subject: str
    reachable: bool
    detail: str = ""  # why it was not reached, or what the CRL said
    revoked: bool | None = None  # crl: is ``certificate`` on it (None when not read or not verifiable)


@dataclass
class GoalView:
    name: str
    version: str
    secret_id: str  # versioned: what a VMSS secret references
    versionless_secret_url: str  # what the Key Vault extension observes
    facts: CertFacts
    exportable: bool | None
    content_type: str | None
    policy_issuer_name: str | None
    enabled: bool = True
    issuer: CertFacts | None = None  # the direct issuer, fetched from AIA or given in the plan file
    issuer_source: str | None = None  # aia | plan
    issuer_note: str | None = None  # why the issuer is unknown
    chain: list[CertFacts] = field(default_factory=list)  # the issuers above the goal, as discovery built them
    chain_complete: bool | None = None  # reached a self-signed root (None: not built)
    public_endpoints: list[PublicEndpoint] = field(default_factory=list)  # AIA and CRL URLs of the goal and its CAs


@dataclass
class IdentityView:
    id: str
    exists: bool
    principal_id: str | None = None
    client_id: str | None = None
    tenant_id: str | None = None


@dataclass
class RoleAssignmentView:
    id: str
    scope: str
    role_definition_id: str
    principal_id: str


@dataclass
class VaultCertificateView:
    name: str
    facts: CertFacts | None


@dataclass
class Snapshot:
    taken_at: dt.datetime
    cluster: ClusterView | None = None
    node_types: list[NodeTypeView] = field(default_factory=list)
    vault: VaultView | None = None
    goal: GoalView | None = None
    identity: IdentityView | None = None
    vault_role_assignments: list[RoleAssignmentView] = field(default_factory=list)
    vault_certificates: list[VaultCertificateView] = field(default_factory=list)
    known_certificates: dict[str, KnownCertificate] = field(default_factory=dict)  # thumbprint -> facts
    problems: list[Problem] = field(default_factory=list)
    caller_object_id: str | None = None
    # certificate thumbprint -> every CA certificate seen (plan file, AIA .cer/.p7c) whose key signed it under its
    # issuer's name: its direct issuer and any same-subject, same-key re-issue a node may chain through instead
    possible_issuers: dict[str, list[CertFacts]] = field(default_factory=dict)
    vault_network: VaultNetworkView | None = None  # the goal vault's network rules and the node subnets (migrate/network.py)

    def certificate(self, thumbprint: str | None) -> KnownCertificate | None:
        return self.known_certificates.get((thumbprint or "").upper())

    def node_type(self, vmss_id: str) -> NodeTypeView | None:
        for node_type in self.node_types:
            if node_type.vmss_id.lower() == vmss_id.lower():
                return node_type
        return None

    # -- serialisation --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(asdict(self))
        return data

    def fingerprints(self) -> dict[str, str]:
        """Hashes of what the plan depends on, per resource, to refuse a stale saved plan."""
        out: dict[str, str] = {}
        if self.cluster:
            properties = dict(self.cluster.raw.get("properties") or {})
            for volatile in ("clusterState", "provisioningState", "availableClusterVersions", "clusterCodeVersion"):
                properties.pop(volatile, None)
            out[self.cluster.id.lower()] = _hash(properties)
        for node_type in self.node_types:
            profile = ((node_type.raw.get("properties") or {}).get("virtualMachineProfile") or {})
            out[node_type.vmss_id.lower()] = _hash(
                {
                    "secrets": (profile.get("osProfile") or {}).get("secrets"),
                    "extensions": (profile.get("extensionProfile") or {}).get("extensions"),
                    "identity": node_type.raw.get("identity"),
                    "upgrade": (node_type.raw.get("properties") or {}).get("upgradePolicy"),
                }
            )
        if self.vault:
            out[self.vault.id.lower()] = _hash({"rbac": self.vault.rbac, "policies": self.vault.access_policies,
                                                "roles": [asdict(r) for r in self.vault_role_assignments]})
        if self.goal:
            out[f"{self.vault.id.lower() if self.vault else ''}/certificates/{self.goal.name.lower()}"] = _hash(self.goal.version)
        if self.vault and self.vault_network and not self.vault_network.open:  # a firewall the plan was checked against
            network = self.vault_network
            out[f"{self.vault.id.lower()}/network"] = _hash({
                "public": network.public_network_access, "default": network.default_action, "bypass": network.bypass,
                "vnetRules": sorted(r.lower() for r in network.virtual_network_rules),
                "endpoints": sorted(s.lower() for s in network.private_endpoint_subnets),
            })
        if self.identity:
            out[self.identity.id.lower()] = _hash({"exists": self.identity.exists, "principal": self.identity.principal_id})
        return out


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(_jsonable(value), sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
