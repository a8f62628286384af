"""The scenario file format (``apiVersion: sfmigrate/twin-v1``): a world described in YAML.

Documented in ``docs/scenarios.md``; every built-in scenario is a file of this format under
``migrate/emulator/scenarios/``. Durations are ``<number><s|m|h|d>``, negative for "before the start".
Certificate references are ``vault/certificate`` (latest version) or ``vault/certificate@N`` (version N,
from 0), or a literal 40-hex thumbprint.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

API_VERSION = "sfmigrate/twin-v1"
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str | int | float) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a duration like 30d, -10d, 12h, 90m or 45s")
    return float(match.group(1)) * _UNITS[match.group(2)]


Duration = str | int | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RoleSpec(_Strict):
    role: str
    scope: str = "subscription"  # subscription | resourceGroup:<name> | vault:<name> | identity:<name> | an ARM id


class ResourceGroupSpec(_Strict):
    name: str
    location: str = "westeurope"


class SubscriptionSpec(_Strict):
    id: str | None = None
    name: str = "Production"
    resourceGroups: list[ResourceGroupSpec] = Field(default_factory=lambda: [ResourceGroupSpec(name="rg-sf")])


class OperatorSpec(_Strict):
    name: str = "sfmigrate-operator"
    roles: list[RoleSpec] = Field(default_factory=lambda: [RoleSpec(role="Owner")])


class FederatedSpec(_Strict):
    issuer: str
    subject: str
    audience: str = "api://AzureADTokenExchange"


class PrincipalSpec(_Strict):
    name: str
    clientSecret: str | None = None
    federated: list[FederatedSpec] = Field(default_factory=list)
    roles: list[RoleSpec] = Field(default_factory=list)


class AuthoritySpec(_Strict):
    name: str
    subject: str
    issuer: str | None = None  # None: a root
    validFrom: Duration = "-3650d"
    validFor: Duration = "7300d"
    trusted: bool = True  # roots: present in the nodes' Trusted Root store
    reuseKeyOf: str | None = None

    @field_validator("validFrom", "validFor")
    @classmethod
    def _duration(cls, value: Duration) -> Duration:
        duration_seconds(value)
        return value


class VersionSpec(_Strict):
    subject: str
    sans: list[str] | None = None
    issuer: str = "self"  # an authority name, or "self"
    validFrom: Duration = "-30d"
    validFor: Duration = "365d"
    ekus: list[Literal["serverAuth", "clientAuth"]] = Field(default_factory=lambda: ["serverAuth", "clientAuth"])
    enabled: bool = True

    @field_validator("validFrom", "validFor")
    @classmethod
    def _duration(cls, value: Duration) -> Duration:
        duration_seconds(value)
        return value


class CertificateSpec(_Strict):
    name: str
    exportable: bool = True
    contentType: Literal["application/x-pkcs12", "application/x-pem-file"] = "application/x-pkcs12"
    issuerName: str = "Unknown"
    versions: list[VersionSpec] = Field(min_length=1)


class AccessPolicySpec(_Strict):
    principal: str  # operator | identity:<name> | principal:<name>
    certificates: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)


class VaultRoleSpec(_Strict):
    principal: str
    role: str


class VaultSpec(_Strict):
    name: str
    resourceGroup: str | None = None
    subscription: str | None = None
    rbac: bool = False
    enabledForDeployment: bool = True
    accessPolicies: list[AccessPolicySpec] = Field(default_factory=lambda: [AccessPolicySpec(principal="operator", certificates=["get", "list"])])
    roleAssignments: list[VaultRoleSpec] = Field(default_factory=list)
    certificates: list[CertificateSpec] = Field(default_factory=list)


class IdentitySpec(_Strict):
    name: str
    resourceGroup: str | None = None
    subscription: str | None = None


class KeyVaultExtensionSpec(_Strict):
    name: str = "KVVMExtension"
    identity: str
    observed: list[str]
    version: str = "3.0"
    linkOnRenewal: bool = False
    requireInitialSync: bool = True
    pollingIntervalInS: int = 3600


class NodeTypeSpec(_Strict):
    name: str
    os: Literal["windows", "linux"] = "windows"
    instances: int = Field(5, ge=1, le=100)
    primary: bool = False
    upgradePolicy: Literal["Automatic", "Manual", "Rolling"] = "Automatic"
    secrets: list[str] = Field(default_factory=list)
    identities: list[str] = Field(default_factory=list)
    keyVaultExtension: KeyVaultExtensionSpec | None = None
    durability: Literal["Bronze", "Silver", "Gold"] = "Silver"


class CommonNameSpec(_Strict):
    commonName: str
    issuers: list[str] = Field(default_factory=list)


class ClusterCertificateSpec(_Strict):
    thumbprint: str | None = None
    secondary: str | None = None
    commonNames: list[CommonNameSpec] | None = None


class ClusterSpec(_Strict):
    name: str
    resourceGroup: str | None = None
    subscription: str | None = None
    location: str | None = None
    codeVersion: str = "10.1.2493.9590"
    state: Literal["Ready", "UpdatingUserConfiguration", "UpdatingUserCertificate", "UpgradeServiceUnreachable"] = "Ready"
    busyFor: Duration = "1d"
    certificate: ClusterCertificateSpec
    reverseProxyCertificate: ClusterCertificateSpec | None = None
    nodeTypes: list[NodeTypeSpec] = Field(min_length=1)

    @field_validator("busyFor")
    @classmethod
    def _duration(cls, value: Duration) -> Duration:
        duration_seconds(value)
        return value


class GoalSpec(_Strict):
    cluster: str
    vault: str
    certificate: str
    commonName: str | None = None
    pinnedIssuers: list[str] = Field(default_factory=list)
    identity: str = "sf-kv-reader"
    allowUnpinnedIssuers: bool = False


class ScenarioSpec(_Strict):
    apiVersion: Literal["sfmigrate/twin-v1"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: str = ""
    tenantId: str | None = None
    start: str | None = None  # ISO time of the twin's clock start (default: now)
    subscriptions: list[SubscriptionSpec] = Field(default_factory=lambda: [SubscriptionSpec()], min_length=1)
    operator: OperatorSpec = Field(default_factory=OperatorSpec)
    principals: list[PrincipalSpec] = Field(default_factory=list)
    pki: list[AuthoritySpec] = Field(default_factory=list)
    identities: list[IdentitySpec] = Field(default_factory=list)
    vaults: list[VaultSpec] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=list)
    goal: GoalSpec | None = None
