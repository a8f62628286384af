"""The plan file (``apiVersion: sfmigrate/v1``): what to migrate, to what, and how.

Validated up front: every problem is one line naming the field path (``goal.pinnedIssuers[1]: ...``) and
maps to exit code 64. The JSON Schema in ``plans/schema.json`` is generated from these models
(:func:`write_schema`; a unit test keeps the committed copy equal to the generated one).

Validators report a position below their own field by starting the message with it, ``"[2]: ..."`` or
``"armEndpoint: ..."``; :func:`parse_plan` joins it to the field path pydantic gives.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from .errors import UsageError

API_VERSION = "sfmigrate/v1"
KNOWN_CLOUDS = ("AzureCloud", "AzureChinaCloud", "AzureUSGovernment", "Custom")

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ARM_ID_SHAPE = ("/subscriptions/", _GUID, "/resourceGroups/", r"[-\w.()]+", "/providers/",
                 r"(?P<ns>[^/\s]+)/(?P<type>[^/\s]+)/(?P<name>[^/\s]+)")
_ARM_ID = re.compile("".join(_ARM_ID_SHAPE), re.I)  # ARM ids are case-insensitive (some tools print "resourcegroups")
_HEX40 = re.compile(r"[0-9A-Fa-f]{40}")
_VERSION = re.compile(r"\d{1,3}\.\d{1,3}")
_CERT_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_EXTENSION_NAME = re.compile(r"[A-Za-z0-9][-\w.]{0,63}")
_SUB_PATH = re.compile(r"(?P<sub>(?:\[\d+\]|[A-Za-z_]\w*)(?:\[\d+\]|\.[A-Za-z_]\w*)*): (?P<rest>.+)", re.S)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# Everything str.splitlines() breaks on: a message must stay on one line whatever the input held.
_LINE_BREAKS = dict.fromkeys(map(ord, "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"), " ")
_MAX_MESSAGE = 400


def _any_case(literal: str) -> str:
    return "".join(f"[{ch.lower()}{ch.upper()}]" if ch.isalpha() else ch for ch in literal)


# For the JSON Schema (editor hints): ECMA-262 regexes have neither (?P<name>...) groups nor flags.
ARM_ID_PATTERN = "^" + "".join(
    _any_case(part) if part.startswith("/") else re.sub(r"\(\?P<\w+>", "(", part) for part in _ARM_ID_SHAPE
) + "$"
THUMBPRINT_PATTERN = r"^[0-9A-Fa-f ]{40,}$"


class PlanFileError(UsageError):
    """The plan file cannot be used (exit 64); the message is one line naming the file and field."""


def _show(value: Any, limit: int = 60) -> str:
    """A user-supplied value, quoted, escaped and short (it goes into a one-line message)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _arm_id(value: str, namespace: str, type_: str, what: str) -> str:
    match = _ARM_ID.fullmatch(value.strip())
    if not match:
        raise ValueError(
            f"not an ARM resource id of a {what} (/subscriptions/<guid>/resourceGroups/<rg>/providers/{namespace}/{type_}/<name>)"
        )
    if match.group("ns").lower() != namespace.lower() or match.group("type").lower() != type_.lower():
        raise ValueError(f"must be a {namespace}/{type_} id, not {_show(match.group('ns'))}/{_show(match.group('type'))}")
    return value.strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, field_title_generator=lambda name, _info: name)


def _check_url(url: str) -> None:
    """An https URL a client can open: no whitespace, a host, a numeric port (issue 13: one line, not a traceback)."""
    from urllib.parse import urlsplit

    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("armEndpoint: must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"armEndpoint: not a valid URL ({exc})") from None
    if not parts.hostname:
        raise ValueError("armEndpoint: names no host")


class CloudSpec(_Strict):
    name: Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment", "Custom"] = Field(
        default="AzureCloud", description="The Azure cloud; Custom needs armEndpoint (this is how the Azure twin is reached)."
    )
    armEndpoint: str | None = Field(default=None, description="Custom clouds: the ARM endpoint; other endpoints come from /metadata/endpoints.")
    caBundle: str | None = Field(default=None, description="A PEM bundle to trust for HTTPS (e.g. the Azure twin's CA).")

    @model_validator(mode="after")
    def _custom_needs_endpoint(self) -> "CloudSpec":
        if self.name == "Custom" and not self.armEndpoint:
            raise ValueError("armEndpoint: required when name is Custom")
        if self.armEndpoint and not self.armEndpoint.startswith("https://"):
            raise ValueError("armEndpoint: must be an https:// URL")
        if self.armEndpoint:
            _check_url(self.armEndpoint)
        return self


class ClusterRef(_Strict):
    id: str = Field(
        description="The classic cluster's resource id (Microsoft.ServiceFabric/clusters).",
        json_schema_extra={"pattern": ARM_ID_PATTERN},
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if "/microsoft.servicefabric/managedclusters/" in value.lower():
            raise ValueError("managed clusters (Microsoft.ServiceFabric/managedClusters) are not supported: sfmigrate converts classic clusters")
        return _arm_id(value, "Microsoft.ServiceFabric", "clusters", "Service Fabric cluster")


class GoalSpec(_Strict):
    vaultId: str = Field(
        description="Resource id of the Key Vault holding the goal certificate.",
        json_schema_extra={"pattern": ARM_ID_PATTERN},
    )
    certificateName: str = Field(description="The certificate's name in that vault.", json_schema_extra={"pattern": r"^[0-9A-Za-z-]{1,127}$"})
    commonName: str | None = Field(default=None, description="Defaults to the certificate's subject CN, and must equal it (no 'CN=' prefix).")
    pinnedIssuers: list[str] = Field(
        default_factory=list,
        description="SHA-1 thumbprints of the allowed direct issuers (the goal's issuing CA, not the root).",
        json_schema_extra={"items": {"type": "string", "pattern": THUMBPRINT_PATTERN}},
    )
    allowUnpinnedIssuers: bool = Field(default=False, description="Rely on chain trust instead of pinned issuers (a warning).")
    issuerCertificates: list[str] = Field(default_factory=list, description="PEM files of issuer certificates, when AIA cannot be fetched.")

    @field_validator("vaultId")
    @classmethod
    def _vault(cls, value: str) -> str:
        return _arm_id(value, "Microsoft.KeyVault", "vaults", "Key Vault")

    @field_validator("certificateName")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CERT_NAME.fullmatch(value):
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
        if any(ch in value for ch in "\r\n\t"):
            raise ValueError("must be one line of text")
        return value.strip()

    @field_validator("pinnedIssuers", mode="before")
    @classmethod
    def _issuers_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("write a YAML list, one thumbprint per item (not a comma-separated string)")
        return value

    @field_validator("pinnedIssuers")
    @classmethod
    def _issuers(cls, value: list[str]) -> list[str]:
        clean: list[str] = []
        for index, item in enumerate(value):
            candidate = item.replace(" ", "")
            if not _HEX40.fullmatch(candidate):
                raise ValueError(f"[{index}]: {_show(item)} is not a 40-hex-digit SHA-1 thumbprint (hex digits only, no colons)")
            if candidate.upper() in clean:
                raise ValueError(f"[{index}]: {_show(item)} is listed twice (SFRP rejects duplicated issuer thumbprints)")
            clean.append(candidate.upper())
        return clean


class IdentitySpec(_Strict):
    id: str = Field(
        description="The user-assigned identity's resource id; created when absent.",
        json_schema_extra={"pattern": ARM_ID_PATTERN},
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _arm_id(value, "Microsoft.ManagedIdentity", "userAssignedIdentities", "user-assigned identity")


class KeyVaultExtensionSpec(_Strict):
    name: str = Field(default="KVVMExtension", description="The extension's name on each VMSS (the Service Fabric extension's provisionAfterExtensions names it).")
    windowsVersion: str = Field(default="3.0", description="KeyVaultForWindows typeHandlerVersion: 1.x or 3.x (4.x is refused).")
    linuxVersion: str = Field(default="3.0", description="KeyVaultForLinux typeHandlerVersion: 1.x-3.x.")
    pollingIntervalInS: int = Field(default=3600, ge=60, le=86400, description="How often the extension polls the vault, in seconds.")
    linkOnRenewal: bool = Field(default=False, description="Keep false: SAN-based linking has broken clusters.")
    requireInitialSync: bool = Field(default=True, description="Keep true: the Service Fabric extension then starts only after certificates are installed.")
    certificateStoreName: str = Field(default="My", description="Windows certificate store name.")
    certificateStoreLocation: Literal["LocalMachine", "CurrentUser"] = Field(default="LocalMachine", description="Windows store location (case-sensitive).")
    linuxStoreLocation: str = Field(default="/var/lib/waagent/Microsoft.Azure.KeyVault.Store", description="Linux: the directory the extension writes PEM files to.")

    @field_validator("name")
    @classmethod
    def _extension_name(cls, value: str) -> str:
        if not _EXTENSION_NAME.fullmatch(value):
            raise ValueError("an extension name has 1-64 letters, digits, '-', '_' or '.'")
        return value

    @field_validator("windowsVersion", "linuxVersion", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"quote the version, e.g. '3.0' (YAML read {_show(value)} as a number)")
        if isinstance(value, str) and not _VERSION.fullmatch(value):
            raise ValueError("must be a major.minor version such as '3.0'")
        return value

    @field_validator("linuxStoreLocation")
    @classmethod
    def _linux_store(cls, value: str) -> str:
        if not value.startswith("/") or any(ch in value for ch in "\r\n\t"):
            raise ValueError("must be an absolute directory path")
        return value


class CleanupSpec(_Strict):
    removeOldSecrets: bool = Field(default=False, description="After conversion, remove old certificates' VMSS secrets and the goal's versioned secret where the Key Vault extension delivers it (certificates stay on existing VMs).")


class ChecksSpec(_Strict):
    expiryWarningDays: int = Field(default=30, ge=0, le=3650, description="GOAL_EXPIRING fires when the goal certificate expires within this many days, OLD_CERT_EXPIRING when a certificate the cluster declares by thumbprint does.")
    acceptUnreachableRevocation: bool = Field(default=False, description=(
        "Acknowledge that a CRL of the goal's chain is unreachable from where sfmigrate runs and proceed anyway "
        "(REVOCATION_UNREACHABLE does not block). Only when you know the nodes reach it: a node that cannot check "
        "revocation rejects a certificate declared by common name."))


class RolloutSpec(_Strict):
    manualBatchPercent: int = Field(default=100, ge=1, le=100, description="Manual upgrade policy: instances per batch, in update-domain order.")
    pollIntervalSeconds: float = Field(default=10.0, ge=0.001, le=300, description="How often to re-read a resource while waiting for it to settle (operations follow Azure's Retry-After).")
    settleMinutes: float = Field(default=15.0, ge=0, le=240, description="Service Fabric keeps rolling a cluster upgrade out for about 15 minutes after ARM reports Succeeded: wait this long (by Azure's clock) after a cluster upgrade before the next certificate change or roll-out. 0 disables the wait.")
    grantPropagationMinutes: int = Field(
        default=30, ge=0, le=240,
        description="When the Key Vault extension is denied by the vault although ARM shows the identity's grant, wait up to this many "
                    "minutes (Azure's clock) for the grant to propagate, re-running the extension (forceUpdateTag); 0: fail at once.",
    )


class PlanSpec(_Strict):
    apiVersion: Literal["sfmigrate/v1"] = Field(description="The plan file format version.")
    kind: Literal["Migration"] = "Migration"
    cloud: CloudSpec = Field(default_factory=CloudSpec, description="Which Azure cloud (or the twin) to talk to.")
    cluster: ClusterRef = Field(description="The classic Service Fabric cluster to convert.")
    goal: GoalSpec = Field(description="The CA-issued certificate the cluster will be declared by, by common name.")
    identity: IdentitySpec = Field(description="The user-assigned identity the Key Vault extension reads the vault with.")
    nodeTypes: Literal["discover"] | list[str] = Field(
        default="discover", description="'discover' (every VMSS whose Service Fabric extension points at the cluster) or a list of VMSS ids."
    )
    keyVaultExtension: KeyVaultExtensionSpec = Field(default_factory=KeyVaultExtensionSpec, description="How the Key Vault VM extension is installed.")
    cleanup: CleanupSpec = Field(default_factory=CleanupSpec, description="What to remove after the conversion.")
    checks: ChecksSpec = Field(default_factory=ChecksSpec, description="Thresholds of preflight findings.")
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="How model changes reach scale set instances.")

    @field_validator("nodeTypes", mode="before")
    @classmethod
    def _node_types(cls, value: Any) -> Any:
        # One clear message instead of one per union member (pydantic reports both).
        if isinstance(value, str):
            if value != "discover":
                raise ValueError("use 'discover' or a list of VMSS resource ids")
            return value
        if not isinstance(value, list):
            raise ValueError("use 'discover' or a list of VMSS resource ids")
        if not value:
            raise ValueError("list at least one VMSS id, or use 'discover'")
        seen: set[str] = set()
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"[{index}]: must be a VMSS resource id (text)")
            try:
                _arm_id(item, "Microsoft.Compute", "virtualMachineScaleSets", "virtual machine scale set")
            except ValueError as exc:
                raise ValueError(f"[{index}]: {exc}") from None
            if item.strip().lower() in seen:
                raise ValueError(f"[{index}]: listed twice")
            seen.add(item.strip().lower())
        return [item.strip() for item in value]

    @model_validator(mode="after")
    def _issuers_required(self) -> "PlanSpec":
        if not self.goal.pinnedIssuers and not self.goal.allowUnpinnedIssuers:
            raise ValueError("goal.pinnedIssuers: list the goal certificate's direct issuer thumbprint(s), or set goal.allowUnpinnedIssuers: true")
        return self

    def fingerprint(self) -> str:
        """A hash of what the plan asks for (a changed plan file is refused on resume unless --replan)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


# -- errors as one line ---------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    text = text.translate(_LINE_BREAKS)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _key(part: Any) -> str:
    """One step of a field path: ``.name`` for plain names, ``['odd key']`` otherwise."""
    if isinstance(part, str) and _IDENTIFIER.fullmatch(part):
        return f".{part}"
    return f"[{_show(part)}]"


def _field_path(location: tuple[Any, ...]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else _key(part)
    return out.lstrip(".")


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """(field path, message) for pydantic's first error."""
    location = tuple(error.get("loc") or ())
    kind = error.get("type")
    if kind == "invalid_key":  # a mapping key that is not text (YAML: `1: x`, `~: x`, `2024-01-01: x`)
        return _field_path(location[:-1]), f"field name {_show(location[-1] if location else None)} is not text"
    path = _field_path(location)
    if kind == "extra_forbidden":
        return path, "unknown field (check its spelling)"
    if kind == "missing":
        return path, "required field is missing"
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    sub = _SUB_PATH.fullmatch(message)
    if sub:
        extra = sub.group("sub")
        path = f"{path}{extra}" if extra.startswith("[") else (f"{path}.{extra}" if path else extra)
        message = sub.group("rest")
    return path, message


def parse_plan(text: str, source: str = "plan file") -> PlanSpec:
    """Parse and validate a plan file's text; raise :class:`PlanFileError` with one line."""
    try:
        return _parse(text, source)
    except PlanFileError as exc:
        raise PlanFileError(_one_line(str(exc))) from None


def _parse(text: str, source: str) -> PlanSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "syntax error"
        raise PlanFileError(f"{source}: not valid YAML{where}: {reason}") from None
    except RecursionError:
        raise PlanFileError(f"{source}: not valid YAML: nested too deeply") from None
    except Exception as exc:  # yaml's constructors can raise plain errors (e.g. an int over Python's digit limit)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise PlanFileError(f"{source}: not valid YAML: {type(exc).__name__}{': ' + detail if detail else ''}") from None
    if not isinstance(data, dict):
        raise PlanFileError(f"{source}: a plan file is a YAML mapping starting with 'apiVersion: {API_VERSION}'")
    if "apiVersion" not in data:
        raise PlanFileError(f"{source}: apiVersion: required field is missing (must be '{API_VERSION}')")
    if data["apiVersion"] != API_VERSION:
        raise PlanFileError(f"{source}: apiVersion: must be '{API_VERSION}' (got {_show(data['apiVersion'])})")
    try:
        return PlanSpec.model_validate(data)
    except ValidationError as exc:
        path, message = _describe(exc.errors()[0])
        raise PlanFileError(f"{source}: {path or '(top level)'}: {message}") from None
    except RecursionError:  # a self-referencing YAML anchor inside a field pydantic walks
        raise PlanFileError(f"{source}: a value refers to itself (YAML anchor loop)") from None


def load_plan(path: str | Path) -> PlanSpec:
    from .input_files import read_text_limited

    try:
        text = read_text_limited(path, "PLANFILE")  # bounded: /dev/zero is refused, not read forever
    except UsageError as exc:
        raise PlanFileError(str(exc)) from None
    return parse_plan(text, str(path))


def model_schema(model: type[BaseModel], schema_id: str, title: str) -> dict[str, Any]:
    """A file format's JSON Schema from its pydantic model (plan files here, fleet files in migrate.fleet.spec)."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = schema_id
    schema["title"] = title
    return schema


def schema_document(schema: dict[str, Any]) -> str:
    """A JSON Schema as committed under ``plans/`` (stable formatting, trailing newline)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_schema() -> dict[str, Any]:
    return model_schema(PlanSpec, "https://sfmigrate.dev/schema/plan-v1.json", "sfmigrate plan file (apiVersion sfmigrate/v1)")


def schema_text() -> str:
    """The JSON Schema as committed in ``plans/schema.json``."""
    return schema_document(json_schema())


def write_schema(path: str | Path) -> Path:
    """Write the plan file's JSON Schema (``python -c "from migrate.spec import write_schema; write_schema('plans/schema.json')"``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(schema_text(), encoding="utf-8")
    return target
