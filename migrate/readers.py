"""Pure readers over raw ARM bodies: one rule each, shared by discovery, checks, the planner and the steps.

Each function takes a body as Azure returns it (a cluster, a scale set, a scale-set VM, an extension) or one
of its values, never mutates it, and tolerates missing or ``null`` properties (ARM omits what is unset).
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

Declaration = Literal["thumbprint", "common_name", "none"]
THUMBPRINT: Declaration = "thumbprint"
COMMON_NAME: Declaration = "common_name"
NO_DECLARATION: Declaration = "none"

SF_EXTENSION_TYPES = ("ServiceFabricNode", "ServiceFabricLinuxNode")
KV_EXTENSION_TYPES = ("KeyVaultForWindows", "KeyVaultForLinux")

CLUSTER_READY = "Ready"
UPGRADE_SERVICE_UNREACHABLE = "UpgradeServiceUnreachable"
SUCCEEDED = "Succeeded"
IN_FLIGHT = ("Updating", "Creating")  # CRP provisioning states of a scale set or VM while a change runs
DEFAULT_UPDATE_DOMAINS = 5  # a scale set's platform update domain count unless configured otherwise


def properties(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``body.properties`` (empty when absent or null)."""
    value = (body or {}).get("properties")
    return value if isinstance(value, Mapping) else {}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


# -- issuer thumbprint lists --------------------------------------------------------------------------------
def issuer_list_entries(value: Any) -> list[str]:
    """The entries of a ``certificateIssuerThumbprint`` list as written, trimmed: SFRP's field is one string of
    comma-separated thumbprints; a blank string pins nothing. Empty entries are kept (``"A,,B"`` is invalid:
    SFRP answers InvalidCertificateIssuerThumbprints), for validation to report them."""
    text = value if isinstance(value, str) else ""
    if not text.strip():
        return []
    return [entry.strip() for entry in text.split(",")]


def issuer_thumbprints(value: Any) -> list[str]:
    """The thumbprints a ``certificateIssuerThumbprint`` list pins, in order: comma-separated, and Azure tolerates
    spaces (around and inside an entry, as certificate dialogs print them), so spaces are removed and hex is
    upper-cased, as SFRP compares them. Empty entries are skipped."""
    return [entry.replace(" ", "").upper() for entry in issuer_list_entries(value) if entry]


# -- the cluster's certificate declaration --------------------------------------------------------------------
def common_name_entries(cluster: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``certificateCommonNames.commonNames``: [{certificateCommonName, certificateIssuerThumbprint}]."""
    common = _mapping(properties(cluster).get("certificateCommonNames"))
    return [entry for entry in _list(common.get("commonNames")) if isinstance(entry, Mapping)]


def declared_thumbprints(cluster: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(primary, secondary) of ``properties.certificate``, upper-case (Azure's thumbprints are case-insensitive)."""
    certificate = _mapping(properties(cluster).get("certificate"))
    return (str(certificate.get("thumbprint") or "").upper() or None,
            str(certificate.get("thumbprintSecondary") or "").upper() or None)


def declaration_kind(cluster: Mapping[str, Any]) -> Declaration:
    """How the cluster certificate is declared: by thumbprint while ``certificate`` names one (SFRP keeps the
    thumbprint declaration until a full PUT drops ``certificate``, runbooks/steps/convert-cluster.md); by common name when
    ``certificateCommonNames`` lists names and there is no ``certificate``; otherwise none (unsecured)."""
    if declared_thumbprints(cluster)[0]:
        return THUMBPRINT
    if common_name_entries(cluster):
        return COMMON_NAME
    return NO_DECLARATION


def declares_common_name(cluster: Mapping[str, Any], common_name: str, issuers: Sequence[str]) -> bool:
    """The cluster is declared by common name with an entry for ``common_name`` (exact: Service Fabric matches
    it exactly) pinning exactly ``issuers`` (compared as :func:`issuer_thumbprints` reads them); other entries
    may exist."""
    if declaration_kind(cluster) != COMMON_NAME:
        return False
    wanted = sorted(issuer_thumbprints(",".join(issuers)))
    return any(
        entry.get("certificateCommonName") == common_name
        and sorted(issuer_thumbprints(entry.get("certificateIssuerThumbprint"))) == wanted
        for entry in common_name_entries(cluster)
    )


# -- still updating -----------------------------------------------------------------------------------------
def cluster_states(cluster: Mapping[str, Any]) -> tuple[str, str]:
    """(clusterState, provisioningState) of a cluster body ("" when absent)."""
    props = properties(cluster)
    return str(props.get("clusterState") or ""), str(props.get("provisioningState") or "")


def cluster_accepts_updates(cluster_state: str, provisioning_state: str) -> bool:
    """SFRP accepts a cluster update only when Ready and Succeeded (runbooks/findings/CLUSTER_NOT_READY.md)."""
    return cluster_state == CLUSTER_READY and provisioning_state == SUCCEEDED


def cluster_still_updating(cluster_state: str, provisioning_state: str) -> bool:
    """An upgrade is in flight: any state but Ready (UpgradeServiceUnreachable is stuck, not moving), or ARM
    still Updating. A Ready cluster whose last update Failed is quiet."""
    return cluster_state not in (CLUSTER_READY, UPGRADE_SERVICE_UNREACHABLE) or provisioning_state == "Updating"


def provisioning_state(resource: Mapping[str, Any]) -> str:
    """``properties.provisioningState`` of a scale set or scale-set VM ("" when absent)."""
    return str(properties(resource).get("provisioningState") or "")


def still_provisioning(state: str) -> bool:
    """CRP is still applying a change (Updating, Creating)."""
    return state in IN_FLIGHT


def scale_set_settled(vmss: Mapping[str, Any], instances: Sequence[Mapping[str, Any]]) -> bool:
    """Neither the scale set nor any of its VMs is still provisioning."""
    return not still_provisioning(provisioning_state(vmss)) and not any(
        still_provisioning(provisioning_state(i)) for i in instances
    )


# -- scale-set VMs ------------------------------------------------------------------------------------------
def on_latest_model(instance: Mapping[str, Any]) -> bool:
    """``properties.latestModelApplied`` of a scale-set VM."""
    return bool(properties(instance).get("latestModelApplied"))


def update_domain(instance: Mapping[str, Any]) -> int | None:
    """``properties.instanceView.platformUpdateDomain`` of a scale-set VM (listed with ``$expand=instanceView``),
    None when the instance view does not say."""
    domain = _mapping(properties(instance).get("instanceView")).get("platformUpdateDomain")
    return domain if isinstance(domain, int) and not isinstance(domain, bool) else None


def rollout_update_domain(instance: Mapping[str, Any]) -> int:
    """The update domain to upgrade a VM in: its platform update domain, else instance id modulo the default
    five domains (how the platform spreads VMs when it does not report the domain)."""
    domain = update_domain(instance)
    if domain is not None:
        return domain
    try:
        return int(instance.get("instanceId") or 0) % DEFAULT_UPDATE_DOMAINS
    except (TypeError, ValueError):
        return 0


def extension_statuses(instance: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Extension name -> {code, message} of its first status in the VM's instance view."""
    out: dict[str, dict[str, str]] = {}
    for extension in _list(_mapping(properties(instance).get("instanceView")).get("extensions")):
        if not isinstance(extension, Mapping):
            continue
        statuses = _list(extension.get("statuses"))
        first = _mapping(statuses[0] if statuses else None)
        out[str(extension.get("name") or "")] = {"code": str(first.get("code") or ""), "message": str(first.get("message") or "")}
    return out


# -- scale-set extensions -----------------------------------------------------------------------------------
def extensions(vmss: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``properties.virtualMachineProfile.extensionProfile.extensions`` of a scale set."""
    profile = _mapping(properties(vmss).get("virtualMachineProfile"))
    listed = _list(_mapping(profile.get("extensionProfile")).get("extensions"))
    return [e for e in listed if isinstance(e, Mapping)]


def extension_type(extension: Mapping[str, Any]) -> str:
    """``properties.type`` of an extension (ServiceFabricNode, KeyVaultForWindows, ...)."""
    return str(properties(extension).get("type") or "")


def find_extension(vmss: Mapping[str, Any], types: Sequence[str]) -> Mapping[str, Any] | None:
    """The scale set's first extension of one of ``types`` (exact, as Azure spells them)."""
    return next((e for e in extensions(vmss) if extension_type(e) in types), None)


def sf_extension(vmss: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Service Fabric node extension (Windows or Linux): what makes a scale set a node type."""
    return find_extension(vmss, SF_EXTENSION_TYPES)


def kv_extension(vmss: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Key Vault VM extension (Windows or Linux)."""
    return find_extension(vmss, KV_EXTENSION_TYPES)


def observed_certificate_urls(settings: Mapping[str, Any]) -> list[str]:
    """The URLs a Key Vault extension observes, from its settings: ``secretsManagementSettings.observedCertificates``
    lists plain URLs (version 1.x) or objects with ``url`` (3.x, and Linux)."""
    observed = _list(_mapping(settings.get("secretsManagementSettings")).get("observedCertificates"))
    return [item if isinstance(item, str) else str(_mapping(item).get("url") or "") for item in observed]


def msi_client_id(settings: Mapping[str, Any]) -> str:
    """``authenticationSettings.msiClientId`` of a Key Vault extension's settings ("" when unset)."""
    return str(_mapping(settings.get("authenticationSettings")).get("msiClientId") or "")


def joins_cluster(vmss: Mapping[str, Any], cluster_endpoint: str) -> bool:
    """A scale set is a node type of the cluster when its Service Fabric extension's ``clusterEndpoint`` is the
    cluster's (compared case-insensitively, without a trailing slash)."""
    wanted = cluster_endpoint.rstrip("/").lower()
    return any(
        str(_mapping(properties(e).get("settings")).get("clusterEndpoint") or "").rstrip("/").lower() == wanted
        for e in extensions(vmss) if extension_type(e) in SF_EXTENSION_TYPES
    )


def is_linux(vmss: Mapping[str, Any]) -> bool:
    """A Linux scale set: ``osProfile.linuxConfiguration`` is set or the OS disk says Linux."""
    profile = _mapping(properties(vmss).get("virtualMachineProfile"))
    disk = _mapping(_mapping(profile.get("storageProfile")).get("osDisk")).get("osType")
    return bool(_mapping(profile.get("osProfile")).get("linuxConfiguration")) or str(disk).lower() == "linux"


def security_setting(cluster: Mapping[str, Any], name: str) -> str | None:
    """A parameter of the ``Security`` section of a cluster's ``fabricSettings`` (names case-insensitive)."""
    for section in _list(properties(cluster).get("fabricSettings")):
        if str(_mapping(section).get("name", "")).lower() != "security":
            continue
        for parameter in _list(_mapping(section).get("parameters")):
            if str(_mapping(parameter).get("name", "")).lower() == name.lower():
                return str(_mapping(parameter).get("value", ""))
    return None


def revocation_relaxation(cluster: Mapping[str, Any]) -> str | None:
    """Which documented setting lets nodes accept a certificate whose CRL they cannot reach, or None.

    service-fabric-cluster-fabric-settings, Security: ``CrlCheckingFlag`` 0 disables CRL checking (its default
    on Linux is 0); ``IgnoreCrlOfflineError`` true ignores an offline CRL when a node verifies an incoming
    certificate (node-to-node connections are verified that way)."""
    flag = security_setting(cluster, "CrlCheckingFlag")
    if flag is not None:
        try:
            if int(flag.strip(), 0) == 0:
                return "fabricSettings Security/CrlCheckingFlag is 0 (CRL checking disabled)"
        except ValueError:
            pass
    elif str(properties(cluster).get("vmImage") or "").lower() == "linux":
        return "the cluster runs Linux, where Security/CrlCheckingFlag defaults to 0"
    if (security_setting(cluster, "IgnoreCrlOfflineError") or "").strip().lower() == "true":
        return "fabricSettings Security/IgnoreCrlOfflineError is true"
    return None
