"""Inside a VM: what happens when an instance takes a model.

1. CRP installs the certificates of ``osProfile.secrets`` (versioned URLs; the vault must be enabled for
   deployment). Certificates are never removed by taking a model without them (VMSS FAQ,
   https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq: "This does not remove the certificate from all your VMs").
2. Extensions run in ``provisionAfterExtensions`` order. The Key Vault VM extension (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows) fetches the *latest* version of each versionless ``/secrets/`` URL with the VM's user-assigned
   identity (``authenticationSettings.msiClientId`` is required when the VM has one), installs new
   versions beside old ones, links renewals by SAN when ``linkOnRenewal`` is on (4.x: always, with CNG
   keys), and re-polls every ``pollingIntervalInS``. With ``requireInitialSync`` it retries while
   Transitioning, then fails. The Service Fabric extension needs its declared certificate on the node.
3. Windows stores (docs/twin.md, "Certificate stores"): a VMSS secret lands in ``LocalMachine\\<certificateStore>``
   (the store "is implicitly in the LocalMachine account"), the Key Vault extension installs in
   ``<certificateStoreLocation>\\<certificateStoreName>``, and Service Fabric finds cluster certificates only in
   ``LocalMachine\\<x509StoreName>`` (cluster-security-certificates). Store names compare case-insensitively.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from ...pki import Issued
from ...wire import TwinError
from ..keyvault.network import refusal, refusal_message
from ..network.models import VM_DEPLOYMENT_SERVICE, Origin, scale_set_subnets
from . import linux
from .stores import elsewhere, pfx_provider, sf_store

if TYPE_CHECKING:
    from ...world import World
    from ..keyvault.models import CertificateVersion, Vault, VaultCertificate
    from ..msi.models import UserAssignedIdentity
    from .models import Instance, ScaleSet

KV_TYPES = ("KeyVaultForWindows", "KeyVaultForLinux")
SF_TYPES = ("ServiceFabricNode", "ServiceFabricLinuxNode")
LINUX_KV_STORE = "/var/lib/waagent/Microsoft.Azure.KeyVault.Store"
# key-vault-windows: "On startup, the Key Vault VM extension retries download and install of certificates up to
# 25 times with increasing backoff periods, during which it remains in a Transitioning state. If the retries are
# exhausted, the extension reports an Error state." The back-off is undocumented: short (pessimistic: 2 s doubling,
# at most 8 s, so the 25 retries span about 190 simulated seconds; docs/twin.md, "Permission propagation and identities").
INITIAL_SYNC_RETRIES = 25
INITIAL_SYNC_BACKOFF = 2.0  # simulated seconds before the first retry, doubling
INITIAL_SYNC_BACKOFF_MAX = 8.0
INITIAL_SYNC_RULE = "KeyVaultInitialSyncRetriesExhausted"


def initial_sync_backoff(attempt: int) -> float:
    """Simulated seconds before retry ``attempt + 1`` (attempt counts from 0)."""
    return min(INITIAL_SYNC_BACKOFF * 2.0 ** min(attempt, 16), INITIAL_SYNC_BACKOFF_MAX)


def extension_type(extension: dict[str, Any]) -> str:
    return str((extension.get("properties") or {}).get("type") or "")


def _major(version: Any) -> int:
    try:
        return int(str(version or "1").split(".")[0])
    except ValueError:
        return 1


@dataclass
class InstalledCert:
    thumbprint: str
    issued: Issued = field(repr=False)
    source: str  # vmss-secret | kv-extension | preinstalled
    source_url: str
    arrived: str
    has_private_key: bool = True
    key_provider: str = "CAPI"  # CAPI | CNG (Key Vault extension 4.x)
    linked_to: str | None = None  # CERT_RENEWAL_PROP_ID: S-channel follows this link
    path: str | None = None  # Linux: the versioned PEM file
    store: str | None = None  # Windows: 'LocalMachine\\My', 'CurrentUser\\MY', ...; None on Linux

    def in_store(self, x509_store_name: str) -> bool:
        """Would Service Fabric find it with this ``x509StoreName``? Only in LocalMachine (Windows store names
        are case-insensitive); on Linux (``store`` is None) the store name does not apply, and Service Fabric finds
        only waagent's files and /var/lib/sfcerts, never the Key Vault extension's (compute/linux.py)."""
        if self.store is None:
            return linux.sf_reads(self)
        return self.store.lower() == sf_store(x509_store_name).lower()

    def public(self) -> dict[str, Any]:
        facts = self.issued.facts
        out: dict[str, Any] = {
            "thumbprint": self.thumbprint,
            "subject": facts.subject_cn,
            "issuer": facts.issuer_cn,
            "notBefore": facts.not_before.isoformat(),
            "notAfter": facts.not_after.isoformat(),
            "source": self.source,
            "sourceUrl": self.source_url,
            "arrived": self.arrived,
            "hasPrivateKey": self.has_private_key,
            "keyProvider": self.key_provider,
        }
        if self.linked_to:
            out["linkedTo"] = self.linked_to
        if self.path:
            out["path"] = self.path
        if self.store:
            out["store"] = self.store
        return out


@dataclass
class ExtensionState:
    name: str
    type: str
    version: str
    status: str  # succeeded | transitioning | failed
    message: str
    time: str

    @property
    def code(self) -> str:
        return f"ProvisioningState/{self.status}"

    def public(self) -> dict[str, Any]:
        return {"type": self.type, "typeHandlerVersion": self.version, "status": self.status, "message": self.message}


# -- step 1: VMSS secrets ------------------------------------------------------------------------------
def install_secrets(world: World, scale_set: ScaleSet, instance: Instance, profile: dict[str, Any]) -> str | None:
    """Install every ``osProfile.secrets`` certificate; the failure message, if CRP could not. On Linux, waagent
    then removes the files of VMSS secrets the model no longer delivers (compute/linux.py, GOAL_STATE_RULE)."""
    delivered: set[str] = set()
    for group in (profile.get("osProfile") or {}).get("secrets") or []:
        vault_id = ((group.get("sourceVault") or {}).get("id")) or ""
        for entry in group.get("vaultCertificates") or []:
            url = entry.get("certificateUrl") or ""
            try:
                vault, certificate, version = world.keyvault.resolve_secret_url(url, versioned=True)
            except TwinError as exc:
                return f"Secret '{url}' could not be retrieved: {exc.message}"
            if vault.rid.key != vault_id.lower():
                return f"The vault of secret '{url}' does not match sourceVault '{vault_id}'."
            # CRP fetches VMSS secrets as a trusted service (docs/twin.md, "Vault network rules").
            refused = refusal(world, vault, Origin(trusted_service=VM_DEPLOYMENT_SERVICE))
            if refused:
                return f"Secret '{url}' could not be retrieved: {refusal_message(vault, Origin(trusted_service=VM_DEPLOYMENT_SERVICE), refused)}"
            if not vault.enabled_for_deployment:
                return (
                    f"Key Vault {vault.rid.id} either has not been enabled for deployment or the vault id provided, "
                    f"{vault_id}, does not match the Key Vault's true resource id."
                )
            assert version is not None
            if not version.enabled:
                return f"The secret version '{url}' is disabled; CRP cannot retrieve it."
            delivered.add(version.issued.thumbprint)
            path = store = None
            if scale_set.os == "linux":
                path = f"/var/lib/waagent/{version.issued.thumbprint}.crt"
            else:  # "implicitly in the LocalMachine account" (VaultCertificate.certificateStore)
                store = f"LocalMachine\\{entry.get('certificateStore') or 'My'}"
            if not _installed_in(instance, version.issued.thumbprint, store):
                instance.store.append(
                    InstalledCert(
                        version.issued.thumbprint, version.issued, "vmss-secret", url, world.iso_now(),
                        has_private_key=certificate.key_exportable(version), path=path, store=store,
                        key_provider=pfx_provider(certificate) if store else "CAPI",
                    )
                )
    if scale_set.os == "linux":  # waagent keeps only the goal state's certificate files
        for cert in [c for c in instance.store if c.source == "vmss-secret" and c.thumbprint not in delivered]:
            instance.store.remove(cert)
            instance.waagent_removed[cert.thumbprint] = world.iso_now()
    return None


def _installed_in(instance: Instance, thumbprint: str, store: str | None) -> bool:
    """Is this certificate already in that store (Windows) or on the node (Linux)? A store holds a certificate once."""
    wanted = (store or "").lower()
    return any(c.thumbprint == thumbprint and (c.store or "").lower() == wanted for c in instance.store)


# -- step 2: the Key Vault VM extension ----------------------------------------------------------------
@dataclass
class _Observed:
    url: str
    store_name: str
    store_location: str
    link_name: str | None = None


@dataclass
class KvConfig:
    major: int
    linux: bool
    polling_seconds: float
    observed: list[_Observed]
    link_on_renewal: bool
    require_initial_sync: bool
    msi_client_id: str | None


def parse_kv_settings(extension: dict[str, Any]) -> KvConfig | str:
    properties = extension.get("properties") or {}
    settings = properties.get("settings") or {}
    linux = extension_type(extension) == "KeyVaultForLinux"
    major = _major(properties.get("typeHandlerVersion"))
    management = settings.get("secretsManagementSettings")
    if not isinstance(management, dict):
        return "[CertificateManagementConfiguration] Failed to parse the configuration settings with: not an object."
    raw = management.get("observedCertificates")
    if not isinstance(raw, list) or not raw:
        return "[CertificateManagementConfiguration] observedCertificates must be a non-empty array."
    default_store = str(management.get("certificateStoreName") or "MY")
    default_location = str(management.get("certificateStoreLocation") or (LINUX_KV_STORE if linux else "LocalMachine"))
    observed = []
    for item in raw:
        if isinstance(item, str):
            observed.append(_Observed(item, default_store, default_location))
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            observed.append(
                _Observed(
                    item["url"], str(item.get("certificateStoreName") or default_store),
                    str(item.get("certificateStoreLocation") or default_location), item.get("customSymbolicLinkName"),
                )
            )
        else:
            return "[CertificateManagementConfiguration] observedCertificates entries must be URLs or {url: ...} objects."
    try:
        polling = float(management.get("pollingIntervalInS") or 3600)
    except (TypeError, ValueError):
        return "[CertificateManagementConfiguration] pollingIntervalInS must be a number of seconds."
    auth = settings.get("authenticationSettings") or {}
    return KvConfig(
        major=major,
        linux=linux,
        polling_seconds=max(polling, 60.0),
        observed=observed,
        # 4.x removed the setting: "Linking always occurs" (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows); not available on Linux.
        link_on_renewal=(major >= 4 or bool(management.get("linkOnRenewal"))) and not linux,
        require_initial_sync=major >= 4 or bool(management.get("requireInitialSync")),
        msi_client_id=auth.get("msiClientId") if isinstance(auth, dict) else None,
    )


def _kv_identity(world: World, scale_set: ScaleSet, config: KvConfig) -> UserAssignedIdentity:
    identities = scale_set.user_assigned_identities()
    if not identities:
        raise _KvFailure("Failed to acquire an access token from IMDS: the VM has no managed identity assigned.")
    if not config.msi_client_id:
        # https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows (authenticationSettings)
        raise _KvFailure(
            "authenticationSettings.msiClientId is required for VMs with user assigned identities; "
            "IMDS cannot choose an identity."
        )
    for identity_id in identities:
        identity = world.msi.find(identity_id)
        if identity and identity.client_id.lower() == config.msi_client_id.lower():
            return identity
    raise _KvFailure(f"IMDS: the identity with client id '{config.msi_client_id}' is not assigned to this VM.")


class _KvFailure(Exception):
    pass


def kv_sync(world: World, scale_set: ScaleSet, instance: Instance, extension: dict[str, Any], config: KvConfig) -> list[str]:
    """One poll of the extension; installs what it can and returns the failures."""
    try:
        identity = _kv_identity(world, scale_set, config)
    except _KvFailure as exc:
        return [str(exc)]
    principal = world.identity.principals.get(identity.principal_id)
    failures = []
    for observed in config.observed:
        parts = [p for p in urlsplit(observed.url).path.split("/") if p]
        lowered = [p.lower() for p in parts]
        if "certificates" in lowered:
            failures.append(f"Observed certificate '{observed.url}' must use the versionless /secrets/ endpoint, which carries the private key.")
            continue
        try:
            vault, certificate, version = world.keyvault.resolve_secret_url(observed.url, versioned=False)
        except TwinError as exc:
            failures.append(f"Observed certificate '{observed.url}': {exc.message}")
            continue
        # The extension fetches from the VM's own network: its scale set's subnet (docs/twin.md, "Vault network rules").
        origin = Origin(subnet_id=next(iter(scale_set_subnets(instance.model)), None) or "(no subnet)")
        refused = refusal(world, vault, origin)
        if refused:
            failures.append(f"Observed certificate '{observed.url}': {refusal_message(vault, origin, refused)}")
            continue
        if principal is None or not world.keyvault.may(principal.object_id, vault, "secrets", "get"):
            failures.append(
                f"Forbidden: identity '{config.msi_client_id}' does not have secrets get permission on key vault "
                f"'{vault.name}' (grant an access policy 'secrets: get, list' or the 'Key Vault Secrets User' role)."
            )
            continue
        enabled = [v for v in certificate.versions if v.enabled]
        if not enabled:
            failures.append(f"Observed certificate '{observed.url}': every version is disabled.")
            continue
        # Versionless URLs give the latest version (seed 000); 4.x installs the two newest (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).
        for version in enabled[-2:] if config.major >= 4 else enabled[-1:]:
            _install(world, instance, config, observed, vault, certificate, version)
    return failures


def _install(world: World, instance: Instance, config: KvConfig, observed: _Observed, vault: Vault, certificate: VaultCertificate, version: CertificateVersion) -> None:
    """Install one version beside the others (the extension never removes a certificate, seed 000)."""
    if config.linux:  # one PEM file per version, and the certificate's symlink switched to the newest
        link = observed.link_name or f"{vault.name}.{certificate.name}"
        instance.symlinks[f"{observed.store_location}/{link}"] = version.issued.thumbprint
    # key-vault-windows: "Leaf certificates are installed in the specified certificate store (certificateStoreName)
    # and location (certificateStoreLocation)".
    store = None if config.linux else f"{observed.store_location}\\{observed.store_name}"
    if _installed_in(instance, version.issued.thumbprint, store):
        return
    path = f"{observed.store_location}/{vault.name}.{certificate.name}.{version.version}.pem" if config.linux else None
    new = InstalledCert(
        version.issued.thumbprint, version.issued, "kv-extension", observed.url, world.iso_now(),
        has_private_key=certificate.key_exportable(version), path=path, store=store,
        key_provider="CNG" if config.major >= 4 else "CAPI" if config.linux else pfx_provider(certificate),
    )
    if config.link_on_renewal:
        _link_renewals(instance, new)
    instance.store.append(new)


def _link_renewals(instance: Instance, new: InstalledCert) -> None:
    """Windows linkOnRenewal: an installed certificate whose SANs the new one covers is linked to it,
    regardless of subject or issuer (seed 003: the Alice/Bob/Mallory example)."""
    new_sans = {s.lower() for s in new.issued.facts.sans}
    if not new_sans:
        return
    for existing in instance.store:
        sans = {s.lower() for s in existing.issued.facts.sans}
        if existing.thumbprint != new.thumbprint and sans and sans <= new_sans:
            existing.linked_to = new.thumbprint


# -- step 2b: the Service Fabric node extension --------------------------------------------------------
def _usable(cert: InstalledCert, now: dt.datetime) -> bool:
    facts = cert.issued.facts
    return cert.has_private_key and facts.not_before <= now <= facts.not_after


PROTECTED_SETTINGS_RULE = "ServiceFabricProtectedSettingsMissing"


def sf_protected_settings_check(extension: dict[str, Any]) -> str | None:
    """The SF extension reads its storage account keys from ``protectedSettings`` (StorageAccountKey1/2);
    a model whose SF extension lost them (a full PUT built from a GET, which never returns them) fails the
    instance update (pessimistic: docs/twin.md, "Protected settings")."""
    if (extension.get("properties") or {}).get("protectedSettings"):
        return None
    return (
        f"{PROTECTED_SETTINGS_RULE}: the Service Fabric extension '{extension.get('name')}' has no protectedSettings "
        "(StorageAccountKey1, StorageAccountKey2): a GET never returns them, so a full scale-set PUT built from a GET "
        "drops them; change extensions through .../extensions/{name} (PATCH keeps protectedSettings)."
    )


def sf_check(world: World, instance: Instance, extension: dict[str, Any]) -> str | None:
    settings = (extension.get("properties") or {}).get("settings") or {}
    declared = settings.get("certificate")
    store = "My"
    if not isinstance(declared, dict):
        return "The Service Fabric extension settings have no 'certificate' object."
    store = str(declared.get("x509StoreName") or store)
    now = world.now()
    if "commonNames" in declared and "thumbprint" in declared:
        return "InvalidCommonNameThumbprintPair: the certificate declares both 'thumbprint' and 'commonNames'."
    if "commonNames" in declared:
        names = declared["commonNames"]
        if not isinstance(names, list):
            return (
                "JsonSerializationException: Could not cast or convert from System.String to System.String[]. "
                "Path 'certificate.commonNames' (commonNames must be an array)."
            )
        for name in names:
            # Presentation matching is exact and case-sensitive, with no 'CN=' prefix (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates).
            def named(c: InstalledCert, name: str = name) -> bool:
                return _usable(c, now) and c.issued.facts.subject_cn == name

            if not any(named(c) and c.in_store(store) for c in instance.store):
                return (f"Cannot find certificate with 'FindBySubjectName' '{name}' in store '{store}'.{elsewhere(instance.store, named, store)}"
                        + _linux_hint(instance, named, set()))
        return None
    thumbprints = [declared.get("thumbprint")]
    secondary = settings.get("certificateSecondary")
    if isinstance(secondary, dict) and secondary.get("thumbprint"):
        thumbprints.append(secondary["thumbprint"])
    for thumbprint in thumbprints:
        if not isinstance(thumbprint, str) or not thumbprint:
            return "The Service Fabric extension certificate has neither 'thumbprint' nor 'commonNames'."
        wanted = thumbprint.upper()

        def printed(c: InstalledCert, wanted: str = wanted) -> bool:
            return c.thumbprint == wanted and c.has_private_key

        if not any(printed(c) and c.in_store(store) for c in instance.store):
            return (f"Cannot find certificate with 'FindByThumbprint' '{thumbprint.upper()}' in store '{store}'.{elsewhere(instance.store, printed, store)}"
                    + _linux_hint(instance, printed, {wanted}))
    return None


def _linux_hint(instance: Instance, matches: Callable[[InstalledCert], bool], wanted: set[str]) -> str:
    if instance.scale_set.os != "linux":
        return ""
    return linux.hint(instance.store, matches, instance.waagent_removed, wanted)


# -- the whole model application ----------------------------------------------------------------------
def ordered_extensions(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The order extensions provision in: ``provisionAfterExtensions`` is honoured; extensions without it have
    no ordering guarantee, so the twin takes the worst case and runs a Service Fabric extension that names no
    dependency first (it then cannot rely on the Key Vault extension's certificates, https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows)."""
    listed = list((profile.get("extensionProfile") or {}).get("extensions") or [])
    eager = [e for e in listed if extension_type(e) in SF_TYPES and not (e.get("properties") or {}).get("provisionAfterExtensions")]
    extensions = eager + [e for e in listed if e not in eager]
    by_name = {e.get("name"): e for e in extensions}
    done: list[dict[str, Any]] = []
    visiting: set[str] = set()

    def visit(extension: dict[str, Any]) -> None:
        name = extension.get("name")
        if extension in done or name in visiting:
            return
        visiting.add(str(name))
        for dependency in (extension.get("properties") or {}).get("provisionAfterExtensions") or []:
            if dependency in by_name:
                visit(by_name[dependency])
        done.append(extension)

    for extension in extensions:
        visit(extension)
    return done


def cancel_polls(world: World, instance: Instance) -> None:
    for event in instance.poll_events.values():
        event.cancelled = True
    instance.poll_events.clear()


def schedule_poll(world: World, scale_set: ScaleSet, instance: Instance, extension: dict[str, Any], config: KvConfig) -> None:
    name = str(extension.get("name"))

    def poll() -> None:
        instance.poll_events.pop(name, None)
        current = next((e for e in ordered_extensions(instance.model) if e.get("name") == name), None)
        if current is None:
            return
        failures = kv_sync(world, scale_set, instance, current, config)
        state = instance.extensions.get(name)
        if state is not None and state.status == "succeeded":
            state.message = ("Poll failed: " + "; ".join(failures)) if failures else "Certificates are up to date."
            state.time = world.iso_now()
        world.servicefabric.on_nodes_changed([scale_set])
        schedule_poll(world, scale_set, instance, current, config)

    instance.poll_events[name] = world.after(config.polling_seconds, f"kv-poll {instance.name}/{name}", poll)


class _Application:
    def __init__(self, world: World, scale_set: ScaleSet, instance: Instance, profile: dict[str, Any], initial: bool,
                 on_finished: Callable[[str | None], None] | None) -> None:
        self.world, self.scale_set, self.instance, self.profile = world, scale_set, instance, profile
        self.initial, self.on_finished = initial, on_finished
        self.queue = ordered_extensions(profile)
        self.attempts: dict[str, int] = {}
        self.states: dict[str, ExtensionState] = {}

    def _state(self, extension: dict[str, Any], status: str, message: str) -> ExtensionState:
        properties = extension.get("properties") or {}
        state = ExtensionState(
            str(extension.get("name")), f"{properties.get('publisher', '')}.{properties.get('type', '')}".strip("."),
            str(properties.get("typeHandlerVersion") or ""), status, message, self.world.iso_now(),
        )
        self.states[state.name] = state
        self.instance.extensions[state.name] = state
        return state

    def run(self) -> None:
        while self.queue:
            extension = self.queue[0]
            kind = extension_type(extension)
            failed_dependencies = [
                d for d in (extension.get("properties") or {}).get("provisionAfterExtensions") or []
                if d in self.states and self.states[d].status != "succeeded"
            ]
            if failed_dependencies:
                self._state(extension, "failed", f"Not provisioned: it provisions after '{failed_dependencies[0]}', which failed.")
            elif kind in KV_TYPES:
                if not self._run_kv(extension):
                    return  # waiting for a retry event
            elif kind in SF_TYPES:
                failure = sf_protected_settings_check(extension) or sf_check(self.world, self.instance, extension)
                self._state(extension, "failed" if failure else "succeeded", failure or "Service Fabric node is ready.")
            else:
                self._state(extension, "succeeded", "Enable succeeded.")
            self.queue.pop(0)
        self._finish()

    def _run_kv(self, extension: dict[str, Any]) -> bool:
        name = str(extension.get("name"))
        config = parse_kv_settings(extension)
        if isinstance(config, str):
            self._state(extension, "failed", config)
            return True
        failures = kv_sync(self.world, self.scale_set, self.instance, extension, config)
        if failures and config.require_initial_sync:
            attempt = self.attempts.get(name, 0)
            if not self.initial and attempt < INITIAL_SYNC_RETRIES:
                self.attempts[name] = attempt + 1
                self._state(extension, "transitioning", f"Initial sync pending (retry {attempt + 1} of {INITIAL_SYNC_RETRIES}): {failures[0]}")
                self.world.after(initial_sync_backoff(attempt), f"kv-initial-sync {self.instance.name}/{name}", self.run)
                return False
            retried = f" after {attempt} retries ({INITIAL_SYNC_RULE})" if attempt else ""
            self._state(extension, "failed", f"Initial sync failed{retried}: " + "; ".join(failures))
        elif failures:
            self._state(extension, "succeeded", "Enabled; certificates not yet retrieved: " + "; ".join(failures))
        else:
            self._state(extension, "succeeded", "Certificates are up to date.")
        schedule_poll(self.world, self.scale_set, self.instance, extension, config)
        return True

    def _finish(self) -> None:
        failed = [s for s in self.states.values() if s.status == "failed"]
        failure = None
        if failed:
            first = failed[0]
            failure = (
                f"VM '{self.instance.name}' has reported a failure when processing extension '{first.name}' "
                f"(type '{first.type}'). Error message: \"{first.message}\""
            )
        self.world.servicefabric.on_nodes_changed([self.scale_set])
        if self.on_finished:
            self.on_finished(failure)


def apply_model(world: World, scale_set: ScaleSet, instance: Instance, profile: dict[str, Any], *, initial: bool = False,
                on_finished: Callable[[str | None], None] | None = None) -> None:
    cancel_polls(world, instance)
    instance.extensions = {}
    failure = install_secrets(world, scale_set, instance, profile)
    if failure:
        world.servicefabric.on_nodes_changed([scale_set])
        if on_finished:
            on_finished(f"VM '{instance.name}': {failure}")
        return
    _Application(world, scale_set, instance, profile, initial, on_finished).run()
