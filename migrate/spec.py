"""The plan file (``apiVersion: sfmigrate/v1``): what to migrate, to what, and how.

Validated up front: every problem is one line naming the field path (``goal.pinnedIssuers[1]: ...``) and
maps to exit code 64. The JSON Schema in ``plans/schema.json`` is generated from these models
(``sfmigrate schema``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import UsageError

API_VERSION = "sfmigrate/v1"
_ARM_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)$"
)
_HEX40 = re.compile(r"^[0-9A-Fa-f]{40}$")
KNOWN_CLOUDS = ("AzureCloud", "AzureChinaCloud", "AzureUSGovernment", "Custom")


class PlanFileError(UsageError):
    """The plan file cannot be used (exit 64); the message names the file and field."""


def _arm_id(value: str, namespace: str, type_: str, what: str) -> str:
    match = _ARM_ID.match(value.strip())
    if not match:
        raise ValueError(f"not an ARM resource id of a {what} (/subscriptions/<guid>/resourceGroups/<rg>/providers/{namespace}/{type_}/<name>)")
    if match.group("ns").lower() != namespace.lower() or match.group("type").lower() != type_.lower():
        raise ValueError(f"must be a {namespace}/{type_} id, not {match.group('ns')}/{match.group('type')}")
    return value.strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CloudSpec(_Strict):
    name: Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment", "Custom"] = "AzureCloud"
    armEndpoint: str | None = Field(None, description="Custom clouds: the ARM endpoint; other endpoints come from /metadata/endpoints.")
    caBundle: str | None = Field(None, description="A PEM bundle to trust for HTTPS (e.g. the Azure twin's CA).")

    @model_validator(mode="after")
    def _custom_needs_endpoint(self) -> "CloudSpec":
        if self.name == "Custom" and not self.armEndpoint:
            raise ValueError("armEndpoint is required when name is Custom")
        if self.armEndpoint and not self.armEndpoint.startswith("https://"):
            raise ValueError("armEndpoint must be an https:// URL")
        return self


class ClusterRef(_Strict):
    id: str = Field(description="The classic cluster's resource id (Microsoft.ServiceFabric/clusters).")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if "/microsoft.servicefabric/managedclusters/" in value.lower():
            raise ValueError("managed clusters (Microsoft.ServiceFabric/managedClusters) are not supported: sfmigrate converts classic clusters")
        return _arm_id(value, "Microsoft.ServiceFabric", "clusters", "Service Fabric cluster")


class GoalSpec(_Strict):
    vaultId: str = Field(description="Resource id of the Key Vault holding the goal certificate.")
    certificateName: str = Field(description="The certificate's name in that vault.")
    commonName: str | None = Field(None, description="Defaults to the certificate's subject CN, and must equal it.")
    pinnedIssuers: list[str] = Field(default_factory=list, description="SHA-1 thumbprints of the allowed direct issuers.")
    allowUnpinnedIssuers: bool = Field(False, description="Rely on chain trust instead of pinned issuers (a warning).")
    issuerCertificates: list[str] = Field(default_factory=list, description="PEM files of issuer certificates, when AIA cannot be fetched.")

    @field_validator("vaultId")
    @classmethod
    def _vault(cls, value: str) -> str:
        return _arm_id(value, "Microsoft.KeyVault", "vaults", "Key Vault")

    @field_validator("certificateName")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[0-9A-Za-z-]{1,127}$", value):
            raise ValueError("a Key Vault certificate name has 1-127 letters, digits and dashes")
        return value

    @field_validator("commonName")
    @classmethod
    def _cn(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("must not be empty")
        if value.strip().upper().startswith("CN="):
            raise ValueError("give the bare common name, without the 'CN=' prefix (Service Fabric matches it exactly)")
        return value.strip()

    @field_validator("pinnedIssuers")
    @classmethod
    def _issuers(cls, value: list[str]) -> list[str]:
        clean = []
        for index, item in enumerate(value):
            candidate = item.replace(" ", "")
            if not _HEX40.match(candidate):
                raise ValueError(f"[{index}] '{item}' is not a 40-hex-digit SHA-1 thumbprint")
            if candidate.upper() in clean:
                raise ValueError(f"[{index}] '{item}' is listed twice")
            clean.append(candidate.upper())
        return clean


class IdentitySpec(_Strict):
    id: str = Field(description="The user-assigned identity's resource id; created when absent.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _arm_id(value, "Microsoft.ManagedIdentity", "userAssignedIdentities", "user-assigned identity")


class KeyVaultExtensionSpec(_Strict):
    name: str = "KVVMExtension"
    windowsVersion: str = Field("3.0", description="KeyVaultForWindows typeHandlerVersion: 1.x or 3.x (4.x is refused).")
    linuxVersion: str = Field("3.0", description="KeyVaultForLinux typeHandlerVersion: 1.x-3.x.")
    pollingIntervalInS: int = Field(3600, ge=60, le=86400)
    linkOnRenewal: bool = Field(False, description="Keep false: SAN-based linking has broken clusters.")
    requireInitialSync: bool = True
    certificateStoreName: str = "My"
    certificateStoreLocation: str = "LocalMachine"
    linuxStoreLocation: str = "/var/lib/waagent/Microsoft.Azure.KeyVault.Store"

    @field_validator("windowsVersion", "linuxVersion")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.match(r"^\d+\.\d+$", value):
            raise ValueError("must be a major.minor version such as 3.0")
        return value


class CleanupSpec(_Strict):
    removeOldSecrets: bool = Field(False, description="After conversion, remove old certificates' VMSS secrets.")


class ChecksSpec(_Strict):
    expiryWarningDays: int = Field(30, ge=0, le=3650)


class RolloutSpec(_Strict):
    manualBatchPercent: int = Field(100, ge=1, le=100, description="Manual upgrade policy: instances per batch, in update-domain order.")


class PlanSpec(_Strict):
    apiVersion: Literal["sfmigrate/v1"]
    kind: Literal["Migration"] = "Migration"
    cloud: CloudSpec = Field(default_factory=CloudSpec)
    cluster: ClusterRef
    goal: GoalSpec
    identity: IdentitySpec
    nodeTypes: Literal["discover"] | list[str] = "discover"
    keyVaultExtension: KeyVaultExtensionSpec = Field(default_factory=KeyVaultExtensionSpec)
    cleanup: CleanupSpec = Field(default_factory=CleanupSpec)
    checks: ChecksSpec = Field(default_factory=ChecksSpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)

    @field_validator("nodeTypes")
    @classmethod
    def _node_types(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("list at least one VMSS id, or use 'discover'")
            for index, item in enumerate(value):
                try:
                    _arm_id(item, "Microsoft.Compute", "virtualMachineScaleSets", "virtual machine scale set")
                except ValueError as exc:
                    raise ValueError(f"[{index}] {exc}") from None
        return value

    @model_validator(mode="after")
    def _issuers_required(self) -> "PlanSpec":
        if not self.goal.pinnedIssuers and not self.goal.allowUnpinnedIssuers:
            raise ValueError("goal.pinnedIssuers: list the goal certificate's direct issuer thumbprint(s), or set goal.allowUnpinnedIssuers: true")
        return self

    def fingerprint(self) -> str:
        """A hash of what the plan asks for (a changed plan file is refused on resume unless --replan)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def _field_path(location: tuple[Any, ...]) -> str:
    out = ""
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before", "literal['discover']", "list[str]") or str(part).startswith("function-"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    if error.get("type") == "extra_forbidden":
        return "unknown field (check its spelling)"
    if error.get("type") == "missing":
        return "required field is missing"
    return message


def parse_plan(text: str, source: str = "plan file") -> PlanSpec:
    """Parse and validate a plan file's text; raise :class:`PlanFileError` with one line."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PlanFileError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}") from None
    except Exception as exc:  # yaml can raise other errors on pathological input
        raise PlanFileError(f"{source}: not valid YAML: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise PlanFileError(f"{source}: a plan file is a YAML mapping starting with 'apiVersion: {API_VERSION}'")
    if data.get("apiVersion") != API_VERSION:
        raise PlanFileError(f"{source}: apiVersion: must be '{API_VERSION}' (got {data.get('apiVersion')!r})")
    try:
        return PlanSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = _field_path(tuple(error["loc"]))
        message = _message(error)
        if not path and ":" in message:
            raise PlanFileError(f"{source}: {message}") from None
        raise PlanFileError(f"{source}: {path or '(top level)'}: {message}") from None


def load_plan(path: str | Path) -> PlanSpec:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanFileError(f"PLANFILE: '{file}' does not exist") from None
    except IsADirectoryError:
        raise PlanFileError(f"PLANFILE: '{file}' is a directory") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"PLANFILE: '{file}' is not UTF-8 text") from None
    except OSError as exc:
        raise PlanFileError(f"PLANFILE: cannot read '{file}': {exc.strerror or exc}") from None
    return parse_plan(text, str(file))


def json_schema() -> dict[str, Any]:
    schema = PlanSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://sfmigrate.dev/schema/plan-v1.json"
    schema["title"] = "sfmigrate plan file (apiVersion sfmigrate/v1)"
    return schema
