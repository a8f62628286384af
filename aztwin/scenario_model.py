"""The scenario file format (``apiVersion: sfmigrate/twin-v1``): a world described in YAML.

Documented in ``docs/scenarios.md``; every built-in scenario is a file of this format under
``aztwin/scenarios/``. Durations are ``<number><s|m|h|d>``, negative for "before the start".
Certificate references are ``vault/certificate`` (latest version) or ``vault/certificate@N`` (version N,
from 0), or a literal 40-hex thumbprint. Names that end up in ARM ids or URLs are checked against Azure's
naming rules here, so a scenario that loads also builds (references are checked in :mod:`.scenario_load`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

API_VERSION = "sfmigrate/twin-v1"
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_SECONDS = 200 * 365 * 86400.0  # two centuries either way: certificates stay inside X.509 dates

# Azure naming rules for what becomes part of an ARM id or URL (and the PKI's AIA URLs).
VAULT_NAME = r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$"
RESOURCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
GROUP_NAME = r"^[A-Za-z0-9_()-][A-Za-z0-9._()-]{0,88}[A-Za-z0-9_()-]$|^[A-Za-z0-9_()-]$"
NODE_TYPE_NAME = r"^[A-Za-z][A-Za-z0-9]{0,8}$"  # a Windows computerNamePrefix holds 9 characters
CERT_NAME = r"^[A-Za-z0-9-]{1,127}$"
LOCATION = r"^[A-Za-z0-9 ]{1,40}$"
GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DNS_NAME = r"^[A-Za-z0-9*]([A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?$"
Eku = Literal["serverAuth", "clientAuth"]
_BOTH_EKUS: tuple[Eku, ...] = ("serverAuth", "clientAuth")


def duration_seconds(text: str | int | float) -> float:
    if isinstance(text, bool):
        raise ValueError(f"'{text}' is not a duration like 30d, -10d, 12h, 90m or 45s")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _DURATION.match(str(text).strip())
        if not match:
            raise ValueError(f"'{text}' is not a duration like 30d, -10d, 12h, 90m or 45s")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value) or abs(value) > MAX_DURATION_SECONDS:
        raise ValueError(f"'{text}' is out of range (at most 73000d either way)")
    return value


Duration = str | int | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_duration(value: Duration) -> Duration:
    duration_seconds(value)
    return value


def _check_positive_duration(value: Duration) -> Duration:
    """A lifetime (``validFor``) must be positive."""
    if duration_seconds(value) <= 0:
        raise ValueError("must be a positive duration")
    return value


class RoleSpec(_Strict):
    role: str
    scope: str = "subscription"  # subscription | resourceGroup:<name> | vault:<name> | identity:<name> | an ARM id
    subscription: str | None = None  # where a subscription or resourceGroup:<name> scope is (name or id; default: the first)


class ResourceGroupSpec(_Strict):
    name: str = Field(pattern=GROUP_NAME)
    location: str = Field(default="westeurope", pattern=LOCATION)


class SubscriptionSpec(_Strict):
    id: str | None = Field(default=None, pattern=GUID)
    name: str = Field(default="Production", min_length=1, max_length=64)
    resourceGroups: list[ResourceGroupSpec] = Field(default_factory=lambda: [ResourceGroupSpec(name="rg-sf")], min_length=1)


class OperatorSpec(_Strict):
    name: str = Field(default="sfmigrate-operator", min_length=1, max_length=128)
    roles: list[RoleSpec] = Field(default_factory=lambda: [RoleSpec(role="Owner")])


class FederatedSpec(_Strict):
    issuer: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    audience: str = "api://AzureADTokenExchange"


class PrincipalSpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    clientSecret: str | None = None
    federated: list[FederatedSpec] = Field(default_factory=list)
    roles: list[RoleSpec] = Field(default_factory=list)


class AuthoritySpec(_Strict):
    name: str = Field(pattern=RESOURCE_NAME)
    subject: str = Field(min_length=1, max_length=64)  # X.509 upper bound for a common name
    issuer: str | None = None  # None: a root
    validFrom: Duration = "-3650d"
    validFor: Duration = "7300d"
    trusted: bool = True  # roots: present in the nodes' Trusted Root store
    reuseKeyOf: str | None = None  # share the key of an earlier authority (a DigiCert-style re-key)
    # A re-issue of an earlier authority (same subject, issuer and key; a new thumbprint), published with it in the
    # .p7c at its AIA: a node may chain that authority's leaves through either (docs/twin.md, "Issuer siblings").
    reissueOf: str | None = None

    _durations = field_validator("validFrom", "validFor")(_check_duration)
    _lifetime = field_validator("validFor")(_check_positive_duration)


class VersionSpec(_Strict):
    subject: str = Field(min_length=1, max_length=64)
    sans: list[Annotated[str, StringConstraints(pattern=DNS_NAME)]] | None = None  # default: [subject]
    issuer: str = "self"  # an authority name, or "self"
    validFrom: Duration = "-30d"
    validFor: Duration = "365d"
    ekus: list[Eku] = Field(default_factory=lambda: list(_BOTH_EKUS))
    enabled: bool = True

    _durations = field_validator("validFrom", "validFor")(_check_duration)
    _lifetime = field_validator("validFor")(_check_positive_duration)


class CertificateSpec(_Strict):
    name: str = Field(pattern=CERT_NAME)
    exportable: bool = True
    contentType: Literal["application/x-pkcs12", "application/x-pem-file"] = "application/x-pkcs12"
    issuerName: str = "Unknown"  # the policy's issuer: Self, Unknown, or a CA provider name
    # The provider name attribute of the PFX in the vault: CAPI1 (a CSP such as "Microsoft Enhanced RSA and AES
    # Cryptographic Provider") or CNG (a key storage provider, or none). Windows imports it with that provider
    # (key-vault-windows FAQ), and Service Fabric supports CAPI1 keys only (docs/twin.md, "Key provider").
    keyProvider: Literal["CAPI1", "CNG"] = "CAPI1"
    versions: list[VersionSpec] = Field(min_length=1)


class AccessPolicySpec(_Strict):
    principal: str  # operator | identity:<name> | principal:<name>
    certificates: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)


class VaultRoleSpec(_Strict):
    principal: str  # operator | identity:<name> | principal:<name>
    role: str


class NetworkAclsSpec(_Strict):
    """A vault's ``networkAcls`` (docs/twin.md, "Vault network rules")."""

    defaultAction: Literal["Allow", "Deny"] = "Allow"
    bypass: Literal["AzureServices", "None"] = "AzureServices"
    ipRules: list[str] = Field(default_factory=list)  # addresses or CIDR ranges
    virtualNetworkRules: list[str] = Field(default_factory=list)  # node type names (their subnet) or subnet ids


class PrivateEndpointSpec(_Strict):
    name: str = Field(pattern=RESOURCE_NAME)
    subnet: str = Field(min_length=1)  # a node type name (its subnet) or a subnet id
    status: Literal["Approved", "Pending", "Rejected", "Disconnected"] = "Approved"


class VaultSpec(_Strict):
    name: str = Field(pattern=VAULT_NAME)
    resourceGroup: str | None = None
    subscription: str | None = None
    rbac: bool = False
    enabledForDeployment: bool = True
    accessPolicies: list[AccessPolicySpec] = Field(default_factory=lambda: [AccessPolicySpec(principal="operator", certificates=["get", "list"])])
    roleAssignments: list[VaultRoleSpec] = Field(default_factory=list)
    certificates: list[CertificateSpec] = Field(default_factory=list)
    publicNetworkAccess: Literal["Enabled", "Disabled"] = "Enabled"
    networkAcls: NetworkAclsSpec | None = None
    privateEndpoints: list[PrivateEndpointSpec] = Field(default_factory=list)


class IdentitySpec(_Strict):
    name: str = Field(pattern=RESOURCE_NAME)
    resourceGroup: str | None = None
    subscription: str | None = None
    recreatedAfterUse: bool = False  # deleted and created again after the scale sets were built with it (new ids)


class KeyVaultExtensionSpec(_Strict):
    name: str = Field(default="KVVMExtension", pattern=RESOURCE_NAME)
    identity: str
    observed: list[str] = Field(min_length=1)  # vault/certificate (versionless)
    version: Literal["1.0", "2.0", "3.0", "4.0"] = "3.0"
    linkOnRenewal: bool = False
    requireInitialSync: bool = True
    pollingIntervalInS: int = Field(default=3600, ge=60, le=86400)
    enableAutomaticUpgrade: bool | None = None  # the extension's enableAutomaticUpgrade (None: absent from the body)


class NodeTypeSpec(_Strict):
    name: str = Field(pattern=NODE_TYPE_NAME)
    os: Literal["windows", "linux"] = "windows"
    instances: int = Field(default=5, ge=1, le=100)
    primary: bool = False
    upgradePolicy: Literal["Automatic", "Manual", "Rolling"] = "Automatic"
    secrets: list[str] = Field(default_factory=list)  # vault/certificate[@N], delivered as versioned VMSS secrets
    identities: list[str] = Field(default_factory=list)
    keyVaultExtension: KeyVaultExtensionSpec | None = None
    durability: Literal["Bronze", "Silver", "Gold"] = "Silver"


class CommonNameSpec(_Strict):
    commonName: str = Field(min_length=1, max_length=64)
    issuers: list[str] = Field(default_factory=list)  # authority names, vault/certificate (self-signed) or thumbprints


class ClusterCertificateSpec(_Strict):
    thumbprint: str | None = None
    secondary: str | None = None
    commonNames: list[CommonNameSpec] | None = Field(default=None, min_length=1, max_length=2)


class ClientThumbprintSpec(_Strict):
    """An entry of the cluster's ``clientCertificateThumbprints`` (declared and shown; the twin checks no client)."""

    thumbprint: str  # vault/certificate[@N] or a literal thumbprint
    isAdmin: bool = False


class ClientCommonNameSpec(_Strict):
    """An entry of the cluster's ``clientCertificateCommonNames`` (declared and shown; the twin checks no client)."""

    commonName: str = Field(min_length=1, max_length=64)
    issuers: list[str] = Field(default_factory=list)  # authority names, vault/certificate or thumbprints
    isAdmin: bool = False


class ClusterGoalSpec(_Strict):
    """What the migration of one cluster should reach (``clusters[].goal``; the top-level ``goal`` names its cluster)."""

    vault: str
    certificate: str
    commonName: str | None = None
    pinnedIssuers: list[str] = Field(default_factory=list)  # authority names, vault/certificate or thumbprints
    identity: str = Field(default="sf-kv-reader", pattern=RESOURCE_NAME)
    allowUnpinnedIssuers: bool = False


class UnhealthyNodeSpec(_Strict):
    node: str = Field(min_length=1, max_length=80)  # <node type>_<instance id>, e.g. nt0_1
    reason: str = Field(min_length=1, max_length=300)


class ClusterSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,22}$")
    resourceGroup: str | None = None
    subscription: str | None = None
    location: str | None = Field(default=None, pattern=LOCATION)
    codeVersion: str = Field(default="10.1.2493.9590", pattern=r"^\d{1,5}(\.\d{1,6}){1,3}$")
    state: Literal["Ready", "UpdatingUserConfiguration", "UpdatingUserCertificate", "UpgradeServiceUnreachable"] = "Ready"
    busyFor: Duration = "1d"  # how long a non-Ready state lasts before the cluster settles to Ready
    certificate: ClusterCertificateSpec
    reverseProxyCertificate: ClusterCertificateSpec | None = None
    nodeTypes: list[NodeTypeSpec] = Field(min_length=1)
    unhealthyNodes: list[UnhealthyNodeSpec] = Field(default_factory=list)  # nodes that fail every upgrade's health check
    settleWindow: Duration = "15m"  # how long the cluster keeps rolling out after ARM reports an upgrade Succeeded
    fabricSettings: dict[str, dict[str, str]] = Field(default_factory=dict)  # section -> parameter -> value, added to the body
    clientCertificateThumbprints: list[ClientThumbprintSpec] = Field(default_factory=list)
    clientCertificateCommonNames: list[ClientCommonNameSpec] = Field(default_factory=list)
    goal: ClusterGoalSpec | None = None  # this cluster's goal (a plan file per cluster goal)

    _durations = field_validator("busyFor", "settleWindow")(_check_duration)


class GoalSpec(ClusterGoalSpec):
    """The top-level ``goal``: a cluster goal naming its cluster (``resourceGroup``/``subscription`` where the name
    alone is ambiguous: cluster names are unique per resource group)."""

    cluster: str
    resourceGroup: str | None = None
    subscription: str | None = None


class SubnetSpec(_Strict):
    name: str = Field(min_length=1)  # a node type name (its scale set's subnet) or a subnet id
    serviceEndpoints: list[str] = Field(default_factory=list)  # e.g. Microsoft.KeyVault


class NetworkSpec(_Strict):
    """Where data-plane calls come from (docs/twin.md, "Vault network rules")."""

    callerAddress: str = "203.0.113.10"  # the operator's and pipelines' public address
    subnets: list[SubnetSpec] = Field(default_factory=list)

    @field_validator("callerAddress")
    @classmethod
    def _address(cls, value: str) -> str:
        ipaddress.ip_address(value)  # a ValueError names the field
        return value


class PropagationSpec(_Strict):
    """How long a grant made through the API takes before data planes honour it (grants in the scenario file are
    in force at once). Defaults: docs/twin.md, "Permission propagation and identities"."""

    roleAssignments: Duration = "5m"
    accessPolicies: Duration = "1m"

    @field_validator("roleAssignments", "accessPolicies")
    @classmethod
    def _not_negative(cls, value: Duration) -> Duration:
        if duration_seconds(value) < 0:
            raise ValueError("must not be negative")
        return value


class ScenarioSpec(_Strict):
    apiVersion: Literal["sfmigrate/twin-v1"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: str = ""
    tenantId: str | None = Field(default=None, pattern=GUID)
    start: str | None = None  # ISO time of the twin's clock start (default: now)
    subscriptions: list[SubscriptionSpec] = Field(default_factory=lambda: [SubscriptionSpec()], min_length=1)
    operator: OperatorSpec = Field(default_factory=OperatorSpec)
    principals: list[PrincipalSpec] = Field(default_factory=list)
    pki: list[AuthoritySpec] = Field(default_factory=list)
    identities: list[IdentitySpec] = Field(default_factory=list)
    vaults: list[VaultSpec] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=list)
    goal: GoalSpec | None = None
    pkiEndpoints: Literal["reachable", "unreachable"] = "reachable"  # the PKI's AIA and CRL URLs, for nodes and callers
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    propagation: PropagationSpec = Field(default_factory=PropagationSpec)

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"'{value}' is not an ISO 8601 time like 2026-01-15T09:00:00Z") from None
        if not 2000 <= moment.year <= 2200:
            raise ValueError("must be between the years 2000 and 2200")
        return value
