"""Pure transformations of ARM resource bodies, and the property-level diff of two bodies.

The planner applies them to the snapshot to show what will change; each step applies the same function
to a fresh GET, so a step whose transformation changes nothing is already done (luigi's ``complete()``).
"""

from __future__ import annotations

import copy
from typing import Any

from .plan import Change
from .readers import KV_EXTENSION_TYPES as KV_TYPES, SF_EXTENSION_TYPES as SF_TYPES  # noqa: F401 (re-exported)
from .readers import extension_type, is_linux, observed_certificate_urls
IMDS_TOKEN_ENDPOINT = "http://169.254.169.254/metadata/identity/oauth2/token"
KNOWN_AFTER = "(known after apply)"
CLUSTER_READ_ONLY = ("provisioningState", "clusterState", "clusterId", "clusterEndpoint", "availableClusterVersions")


def profile(vmss: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = vmss.setdefault("properties", {}).setdefault("virtualMachineProfile", {})
    return found


def extensions(vmss: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = profile(vmss).setdefault("extensionProfile", {}).setdefault("extensions", [])
    return found


def extension_of_type(vmss: dict[str, Any], *types: str) -> dict[str, Any] | None:
    for extension in extensions(vmss):
        if extension_type(extension) in types:
            return extension
    return None


def secret_urls(vmss: dict[str, Any]) -> list[str]:
    return [
        c.get("certificateUrl", "")
        for group in (profile(vmss).get("osProfile") or {}).get("secrets") or []
        for c in group.get("vaultCertificates") or []
    ]


def _sf_settings(vmss: dict[str, Any]) -> dict[str, Any]:
    extension = extension_of_type(vmss, *SF_TYPES)
    if extension is None:
        raise ValueError("the scale set has no Service Fabric node extension")
    settings: dict[str, Any] = extension.setdefault("properties", {}).setdefault("settings", {})
    return settings


def _store(settings: dict[str, Any]) -> str:
    return str((settings.get("certificate") or {}).get("x509StoreName") or "My")


# -- adding the goal by thumbprint (VMSS secret, then SF extension; runbooks/steps/stage-goal.md) -----------
def _add_secret(vmss: dict[str, Any], *, vault_id: str, secret_url: str) -> None:
    """Add a versioned VMSS secret (in place). On Windows it lands in ``LocalMachine\\<certificateStore>``, which
    must be the SF extension's ``x509StoreName`` (Service Fabric reads only there); Linux secrets have no store."""
    os_profile = profile(vmss).setdefault("osProfile", {})
    groups = os_profile.setdefault("secrets", [])
    group = next((g for g in groups if (g.get("sourceVault") or {}).get("id", "").lower() == vault_id.lower()), None)
    if group is None:  # one entry per vault: CRP refuses repeated sourceVaults (runbooks/steps/deliver-by-secret.md)
        group = {"sourceVault": {"id": vault_id}, "vaultCertificates": []}
        groups.append(group)
    certificates = group.setdefault("vaultCertificates", [])
    if not any(c.get("certificateUrl", "").lower() == secret_url.lower() for c in certificates):
        entry = {"certificateUrl": secret_url}
        if not is_linux(vmss):
            entry["certificateStore"] = _store(_sf_settings(vmss))
        certificates.append(entry)


def stage_goal(vmss: dict[str, Any], *, vault_id: str, secret_url: str, primary: str, secondary: str | None) -> dict[str, Any]:
    """Deliver the goal by a versioned VMSS secret and declare it on the SF extension by thumbprint."""
    new = copy.deepcopy(vmss)
    _add_secret(new, vault_id=vault_id, secret_url=secret_url)
    settings = _sf_settings(new)
    store = _store(settings)
    if "commonNames" in (settings.get("certificate") or {}):
        return new  # the SF extension already goes by common name (Key Vault extension in place): leave it
    settings["certificate"] = {"thumbprint": primary, "x509StoreName": store}
    if secondary:
        settings["certificateSecondary"] = {"thumbprint": secondary, "x509StoreName": store}
    else:
        settings.pop("certificateSecondary", None)
    return new


def remove_secrets(vmss: dict[str, Any], urls: list[str]) -> dict[str, Any]:
    """Drop secrets (removing one does not remove the certificate from VMs: https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq)."""
    drop = {u.lower() for u in urls}
    new = copy.deepcopy(vmss)
    os_profile = profile(new).setdefault("osProfile", {})
    kept = []
    for group in os_profile.get("secrets") or []:
        certificates = [c for c in group.get("vaultCertificates") or [] if c.get("certificateUrl", "").lower() not in drop]
        if certificates:
            kept.append({**group, "vaultCertificates": certificates})
    os_profile["secrets"] = kept
    return new


# -- Linux node types: the goal stays a versioned VMSS secret (docs/twin.md, "Linux node types") ----------
def deliver_by_secret(vmss: dict[str, Any], *, vault_id: str, secret_url: str, common_name: str) -> dict[str, Any]:
    """A Linux node type keeps the goal as a versioned VMSS secret (waagent's ``<THUMBPRINT>.crt/.prv``, which
    ServiceFabricLinuxNode reads; it cannot use KeyVaultForLinux's files, microsoft/service-fabric#1308) and its SF
    extension declares the common name. A renewal is a rotation: the new version's secret is added (older ones
    stay until every instance presents the new one; the cleanup drops them)."""
    new = copy.deepcopy(vmss)
    _add_secret(new, vault_id=vault_id, secret_url=secret_url)
    settings = _sf_settings(new)
    wanted = {"commonNames": [common_name], "x509StoreName": _store(settings)}
    if settings.get("certificate") != wanted:
        settings["certificate"] = wanted
    settings.pop("certificateSecondary", None)
    return new


# -- swapping VMSS secrets for the Key Vault extension (runbooks/steps/install-kv-extension.md) --------------
def kv_extension_body(*, name: str, linux: bool, version: str, observed: list[str], client_id: str, polling: int,
                      link_on_renewal: bool, require_initial_sync: bool, store_name: str, store_location: str,
                      linux_store: str) -> dict[str, Any]:
    management: dict[str, Any] = {"pollingIntervalInS": str(polling), "requireInitialSync": require_initial_sync}
    if linux:  # KeyVaultForLinux: PEM files + a symlink per certificate; linkOnRenewal does not exist there
        management["observedCertificates"] = [{"url": u, "certificateStoreLocation": linux_store} for u in observed]
    elif version.startswith("1."):
        management.update({"observedCertificates": observed, "certificateStoreName": store_name,
                           "certificateStoreLocation": store_location, "linkOnRenewal": link_on_renewal})
    else:
        management["observedCertificates"] = [
            {"url": u, "certificateStoreName": store_name, "certificateStoreLocation": store_location} for u in observed
        ]
        management["linkOnRenewal"] = link_on_renewal
    return {
        "name": name,
        "properties": {
            "publisher": "Microsoft.Azure.KeyVault",
            "type": "KeyVaultForLinux" if linux else "KeyVaultForWindows",
            "typeHandlerVersion": version,
            "autoUpgradeMinorVersion": True,
            "enableAutomaticUpgrade": False,  # pinned: 4.x forces linking and CNG keys (runbooks/findings/EXTENSION_VERSION_UNSAFE.md)
            "settings": {
                "secretsManagementSettings": management,
                # Required when the VMSS has a user-assigned identity (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).
                "authenticationSettings": {"msiEndpoint": IMDS_TOKEN_ENDPOINT, "msiClientId": client_id},
            },
        },
    }


def goal_secret_urls(vmss: dict[str, Any], versionless_url: str) -> list[str]:
    """Every version of the goal referenced by the VMSS secrets (``{versionless}/{version}``)."""
    prefix = versionless_url.rstrip("/").lower()
    return [u for u in secret_urls(vmss) if u.lower() == prefix or u.lower().startswith(prefix + "/")]


def _adopt_kv_extension(extension: dict[str, Any], *, linux: bool, observed_url: str, client_id: str, kv: Any) -> None:
    """Bring an existing Key Vault extension to the rules, changing only what matters (no cosmetic churn)."""
    properties = extension.setdefault("properties", {})
    settings = properties.setdefault("settings", {})
    management = settings.setdefault("secretsManagementSettings", {})
    observed = management.setdefault("observedCertificates", [])
    urls = [u.lower() for u in observed_certificate_urls(settings)]
    if observed_url.lower() not in urls:
        if observed and isinstance(observed[0], str):
            observed.append(observed_url)
        elif linux:
            observed.append({"url": observed_url, "certificateStoreLocation": kv.linuxStoreLocation})
        else:
            observed.append({"url": observed_url, "certificateStoreName": kv.certificateStoreName,
                             "certificateStoreLocation": kv.certificateStoreLocation})
    if not linux and bool(management.get("linkOnRenewal")) != kv.linkOnRenewal:
        management["linkOnRenewal"] = kv.linkOnRenewal
    if bool(management.get("requireInitialSync")) != kv.requireInitialSync:
        management["requireInitialSync"] = kv.requireInitialSync
    auth = settings.setdefault("authenticationSettings", {})
    if str(auth.get("msiClientId") or "").lower() != client_id.lower():
        auth["msiClientId"] = client_id
        auth.setdefault("msiEndpoint", IMDS_TOKEN_ENDPOINT)
    if properties.get("enableAutomaticUpgrade"):
        properties["enableAutomaticUpgrade"] = False  # pinned: 4.x forces linking and CNG keys (runbooks/findings/EXTENSION_VERSION_UNSAFE.md)


def swap_to_kv_extension(vmss: dict[str, Any], *, identity_id: str, client_id: str, observed_url: str,
                         common_name: str, kv: Any, keep_goal_secret: bool = True) -> dict[str, Any]:
    """Identity on the VMSS, the KV extension observing the goal, the SF extension by common name. The goal's
    versioned secrets stay (``keep_goal_secret``): until the conversion the cluster declares the goal by
    thumbprint, and a node created in that window (scale-out, reimage) gets only what the model delivers, so
    the Key Vault extension alone would give it a renewed version with another thumbprint (the cut-over
    window; SF: no autorefresh for certificates declared by thumbprint). The cleanup phase removes them.
    ``keep_goal_secret=False`` is what plans written before that did (they removed them here)."""
    new = copy.deepcopy(vmss) if keep_goal_secret else remove_secrets(vmss, goal_secret_urls(vmss, observed_url))
    identity = new.setdefault("identity", {})
    kind = str(identity.get("type") or "None")
    if "systemassigned" in kind.lower().replace(" ", ""):
        identity["type"] = "SystemAssigned, UserAssigned"
    else:
        identity["type"] = "UserAssigned"
    assigned = identity.setdefault("userAssignedIdentities", {})
    if not any(k.lower() == identity_id.lower() for k in assigned):
        assigned[identity_id] = {}  # read-only principal/client ids are dropped when the body is PUT
    linux = is_linux(new)
    existing = extension_of_type(new, *KV_TYPES)
    if existing is None:
        kv_name = kv.name
        extensions(new).insert(0, kv_extension_body(
            name=kv_name, linux=linux, version=kv.linuxVersion if linux else kv.windowsVersion, observed=[observed_url],
            client_id=client_id, polling=kv.pollingIntervalInS, link_on_renewal=kv.linkOnRenewal,
            require_initial_sync=kv.requireInitialSync, store_name=kv.certificateStoreName,
            store_location=kv.certificateStoreLocation, linux_store=kv.linuxStoreLocation,
        ))
    else:
        kv_name = str(existing.get("name"))
        _adopt_kv_extension(existing, linux=linux, observed_url=observed_url, client_id=client_id, kv=kv)
    sf = extension_of_type(new, *SF_TYPES)
    if sf is None:
        raise ValueError("the scale set has no Service Fabric node extension")
    properties = sf.setdefault("properties", {})
    settings = properties.setdefault("settings", {})
    # commonNames is an array and never carries 'CN=' (https://github.com/microsoft/service-fabric-issues/issues/1235).
    settings["certificate"] = {"commonNames": [common_name], "x509StoreName": _store(settings)}
    settings.pop("certificateSecondary", None)
    after = list(properties.get("provisionAfterExtensions") or [])
    if kv_name not in after:
        after.append(kv_name)
    properties["provisionAfterExtensions"] = after
    return new


# -- the cluster resource -------------------------------------------------------------------------------
def cluster_thumbprint_patch(primary: str, secondary: str | None, store: str = "My") -> dict[str, Any]:
    certificate = {"thumbprint": primary, "x509StoreName": store}
    if secondary:
        certificate["thumbprintSecondary"] = secondary
    return {"properties": {"certificate": certificate}}


def cluster_put_body(cluster: dict[str, Any]) -> dict[str, Any]:
    """The GET body made fit for a full PUT (read-only properties removed)."""
    body = {k: copy.deepcopy(v) for k, v in cluster.items() if k in ("location", "tags", "properties")}
    properties = body.setdefault("properties", {})
    for key in CLUSTER_READ_ONLY:
        properties.pop(key, None)
    if str(properties.get("upgradeMode", "")).lower() == "automatic":
        properties.pop("clusterCodeVersion", None)  # settable only in Manual mode (https://learn.microsoft.com/azure/templates/microsoft.servicefabric/clusters)
    return body


def cluster_with_thumbprints(cluster: dict[str, Any], primary: str, secondary: str | None) -> dict[str, Any]:
    """The cluster as it reads once a thumbprint upgrade (:func:`cluster_thumbprint_patch`) is through."""
    new = copy.deepcopy(cluster)
    properties = new.setdefault("properties", {})
    store = str((properties.get("certificate") or {}).get("x509StoreName") or "My")
    properties["certificate"] = cluster_thumbprint_patch(primary, secondary, store)["properties"]["certificate"]
    return new


def cluster_with_common_name(cluster: dict[str, Any], common_name: str, issuers: list[str]) -> dict[str, Any]:
    """The cluster as it reads once declared by common name (no ``certificate``; ``certificateCommonNames``
    carrying the pinned issuers, comma-separated thumbprints); other common-name entries are kept."""
    body = copy.deepcopy(cluster)
    properties = body.setdefault("properties", {})
    existing = properties.get("certificateCommonNames") or {}
    store = str((properties.get("certificate") or {}).get("x509StoreName") or existing.get("x509StoreName") or "My")
    properties.pop("certificate", None)
    others = [e for e in existing.get("commonNames") or [] if e.get("certificateCommonName") != common_name]
    properties["certificateCommonNames"] = {  # other common-name entries of a CN cluster are kept
        "commonNames": [{"certificateCommonName": common_name, "certificateIssuerThumbprint": ",".join(issuers)}] + others,
        "x509StoreName": store,
    }
    return body


def cluster_to_common_name(cluster: dict[str, Any], common_name: str, issuers: list[str]) -> dict[str, Any]:
    """A full PUT without ``certificate`` (a PATCH with None omits it; runbooks/steps/convert-cluster.md) and with
    ``certificateCommonNames`` (see :func:`cluster_with_common_name`)."""
    return cluster_put_body(cluster_with_common_name(cluster, common_name, issuers))


# -- diff -----------------------------------------------------------------------------------------------
def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Property-level changes from ``before`` to ``after`` (named arrays are keyed by ``name``)."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in list(before) + [k for k in after if k not in before]:
            changes.extend(diff(before.get(key), after.get(key), f"{path}.{key}" if path else key))
        return changes
    if (_is_named_list(before) or before in (None, [])) and (_is_named_list(after) or after in (None, [])) and (before or after):
        old = {v["name"]: v for v in before or []}
        new = {v["name"]: v for v in after or []}
        changes = []
        for name in list(old) + [n for n in new if n not in old]:
            changes.extend(diff(old.get(name), new.get(name), f"{path}[{name}]"))
        return changes
    if (
        isinstance(before, list) and isinstance(after, list) and len(before) == len(after)
        and all(isinstance(v, dict) for v in before + after)
    ):
        changes = []
        for index, (old_item, new_item) in enumerate(zip(before, after)):
            changes.extend(diff(old_item, new_item, f"{path}[{index}]"))
        return changes
    return [Change(path, before, after)]
