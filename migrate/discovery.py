"""Discovery: observe the cluster and everything its migration touches. GET requests only.

The goal certificate is read through the certificates API (public part: ``cer``, policy), never through
``/secrets``, which returns the private key (https://learn.microsoft.com/azure/key-vault/certificates/about-certificates). Independent reads run concurrently. Missing or forbidden resources become
``Problem`` entries (RESOURCE_NOT_FOUND / PERMISSION_DENIED findings); transport and authentication
failures raise, because nothing can be planned without them.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

from . import network, readers
from .arm_ids import subscription_of
from .cloud.gateway import Gateway
from .errors import NotFound, OperationalError, PermissionDenied
from .snapshot import (
    ClusterView, ExtensionView, GoalView, IdentityView, InstanceView, KnownCertificate, NodeTypeView, Problem,
    RoleAssignmentView, SecretRef, Snapshot, VaultCertificateView, VaultView,
)
from .spec import PlanSpec
from .chain_discovery import observe_chain
from .x509 import CertFacts, certificates_in, facts, is_issued_by, thumbprint_of

T = TypeVar("T")
MAX_VAULT_CERTIFICATES = 200
MAX_AIA_URLS = 4  # CA-issuers URLs read per certificate (a .cer and a .p7c are usual)


def _observe(snapshot: Snapshot, resource_id: str, read: Callable[[], T]) -> T | None:
    try:
        return read()
    except NotFound as exc:
        snapshot.problems.append(Problem("RESOURCE_NOT_FOUND", resource_id, exc.reason))  # Azure's words: no "not found: not found"
    except PermissionDenied as exc:
        snapshot.problems.append(Problem("PERMISSION_DENIED", resource_id, exc.reason))
    return None


def cluster_view(raw: dict[str, Any]) -> ClusterView:
    properties = readers.properties(raw)
    certificate = properties.get("certificate") or {}
    common = properties.get("certificateCommonNames") or {}
    reverse = properties.get("reverseProxyCertificate") or {}
    reverse_common = properties.get("reverseProxyCertificateCommonNames") or {}
    cluster_state, provisioning_state = readers.cluster_states(raw)
    thumbprint, thumbprint_secondary = readers.declared_thumbprints(raw)
    return ClusterView(
        id=raw.get("id", ""),
        name=raw.get("name", ""),
        location=raw.get("location", ""),
        cluster_state=cluster_state,
        provisioning_state=provisioning_state,
        code_version=properties.get("clusterCodeVersion"),
        cluster_endpoint=properties.get("clusterEndpoint"),
        thumbprint=thumbprint,
        thumbprint_secondary=thumbprint_secondary,
        common_names=[dict(entry) for entry in readers.common_name_entries(raw)],
        x509_store_name=str(certificate.get("x509StoreName") or common.get("x509StoreName") or "My"),
        reverse_proxy_thumbprint=(reverse.get("thumbprint") or "").upper() or None,
        reverse_proxy_common_names=list(reverse_common.get("commonNames") or []),
        node_type_names=[n.get("name", "") for n in properties.get("nodeTypes") or []],
        raw=raw,
    )


def _extension_view(raw: Mapping[str, Any]) -> ExtensionView:
    properties = readers.properties(raw)
    return ExtensionView(
        name=raw.get("name", ""),
        publisher=properties.get("publisher", ""),
        type=readers.extension_type(raw),
        type_handler_version=str(properties.get("typeHandlerVersion", "")),
        settings=properties.get("settings") or {},
        provision_after=list(properties.get("provisionAfterExtensions") or []),
        auto_upgrade_minor_version=properties.get("autoUpgradeMinorVersion"),
        enable_automatic_upgrade=properties.get("enableAutomaticUpgrade"),
    )


def _instance_view(raw: dict[str, Any]) -> InstanceView:
    return InstanceView(
        instance_id=str(raw.get("instanceId", "")),
        name=raw.get("name", ""),
        latest_model_applied=readers.on_latest_model(raw),
        provisioning_state=readers.provisioning_state(raw),
        update_domain=readers.update_domain(raw),
        extension_statuses=readers.extension_statuses(raw),
    )


def node_type_view(raw: dict[str, Any], instances: list[dict[str, Any]]) -> NodeTypeView:
    properties = raw.get("properties") or {}
    profile = properties.get("virtualMachineProfile") or {}
    identity = raw.get("identity") or {}
    extensions = [_extension_view(e) for e in readers.extensions(raw)]
    sf = next((e for e in extensions if e.type in readers.SF_EXTENSION_TYPES), None)
    return NodeTypeView(
        vmss_id=raw.get("id", ""),
        name=raw.get("name", ""),
        node_type_ref=(sf.settings.get("nodeTypeRef") if sf else None),
        os="linux" if readers.is_linux(raw) else "windows",
        upgrade_mode=str((properties.get("upgradePolicy") or {}).get("mode") or "Manual"),
        capacity=int((raw.get("sku") or {}).get("capacity") or 0),
        location=raw.get("location", ""),
        identity_type=identity.get("type"),
        user_assigned_identities=list((identity.get("userAssignedIdentities") or {}).keys()),
        secrets=[
            SecretRef((group.get("sourceVault") or {}).get("id", ""), c.get("certificateUrl", ""), c.get("certificateStore"))
            for group in (profile.get("osProfile") or {}).get("secrets") or []
            for c in group.get("vaultCertificates") or []
        ],
        extensions=extensions,
        instances=[_instance_view(i) for i in instances],
        raw=raw,
    )


def _split_secret_url(url: str) -> tuple[str, str, str | None] | None:
    """``https://vault/secrets/name/version`` -> (vault uri, name, version)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2 or segments[0].lower() != "secrets":
        return None
    return f"{parts.scheme}://{parts.netloc}/", segments[1], segments[2] if len(segments) > 2 else None


class Discovery:
    def __init__(self, gateway: Gateway, spec: PlanSpec, now: dt.datetime | None = None, workers: int = 8) -> None:
        self.gateway = gateway
        self.spec = spec
        self.fixed_now = now
        self.snapshot = Snapshot(taken_at=now or dt.datetime.now(dt.timezone.utc))
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="discovery")
        self._public: dict[str, bytes | Exception] = {}  # AIA/CRL URL -> body or failure: each is fetched once

    def fetch_public(self, url: str) -> bytes:
        """Public material at a URL a certificate names, fetched once per discovery (no credentials)."""
        if url not in self._public:
            try:
                self._public[url] = self.gateway.fetch_public(url)
            except Exception as exc:  # remembered and raised again: the callers record it as unreachable
                self._public[url] = exc
        answer = self._public[url]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def run(self) -> Snapshot:
        try:
            self._run()
        finally:
            self.pool.shutdown(wait=True)
        if self.fixed_now is None:  # Azure's clock, not this machine's (docs/twin.md, "One clock")
            self.snapshot.taken_at = self.gateway.clock.now()
        return self.snapshot

    def _run(self) -> None:
        spec, gateway, snap = self.spec, self.gateway, self.snapshot
        cluster_id, vault_id, identity_id = spec.cluster.id, spec.goal.vaultId, spec.identity.id
        subscription = subscription_of(cluster_id)
        cluster_f = self.pool.submit(_observe, snap, cluster_id, lambda: gateway.get_cluster(cluster_id))
        vault_f = self.pool.submit(_observe, snap, vault_id, lambda: gateway.get_vault(vault_id))
        identity_f = self.pool.submit(_observe, snap, identity_id, lambda: gateway.get_identity(identity_id))
        if spec.nodeTypes == "discover":
            scale_sets_f = self.pool.submit(_observe, snap, f"/subscriptions/{subscription}", lambda: gateway.list_scale_sets(subscription))
        else:
            listed = [self.pool.submit(_observe, snap, v, lambda v=v: gateway.get_scale_set(v)) for v in spec.nodeTypes]
        cluster_raw = cluster_f.result()
        vault_raw = vault_f.result()
        identity_raw = identity_f.result()
        if cluster_raw is not None:
            snap.cluster = cluster_view(cluster_raw)
        if vault_raw is not None:
            properties = vault_raw.get("properties") or {}
            snap.vault = VaultView(
                id=vault_raw.get("id", vault_id), name=vault_raw.get("name", ""), uri=properties.get("vaultUri", ""),
                tenant_id=properties.get("tenantId", ""), rbac=bool(properties.get("enableRbacAuthorization")),
                enabled_for_deployment=bool(properties.get("enabledForDeployment")),
                soft_delete=bool(properties.get("enableSoftDelete", True)),
                access_policies=list(properties.get("accessPolicies") or []),
            )
            snap.vault_network = network.vault_network(vault_raw)
        snap.identity = IdentityView(identity_id, identity_raw is not None)
        if identity_raw is not None:
            properties = identity_raw.get("properties") or {}
            snap.identity = IdentityView(identity_id, True, properties.get("principalId"), properties.get("clientId"), properties.get("tenantId"))
        if spec.nodeTypes == "discover":
            candidates = scale_sets_f.result() or []
            endpoint = snap.cluster.cluster_endpoint if snap.cluster else None
            scale_sets = [s for s in candidates if endpoint and readers.joins_cluster(s, endpoint)]
        else:
            scale_sets = [raw for raw in (f.result() for f in listed) if raw is not None]
        later = [self.pool.submit(self._node_type, raw) for raw in scale_sets]
        if snap.vault is not None:
            later.append(self.pool.submit(self._goal))
            later.append(self.pool.submit(self._vault_certificates))
            if snap.vault.rbac and snap.identity.exists and snap.identity.principal_id:
                later.append(self.pool.submit(self._role_assignments))
        for future in later:
            future.result()
        snap.node_types.sort(key=lambda n: n.name)
        self._vault_network()
        self._known_certificates()
        self._version_issuers()

    def _node_type(self, raw: dict[str, Any]) -> None:
        vmss_id = raw.get("id", "")
        instances = _observe(self.snapshot, vmss_id, lambda: self.gateway.list_instances(vmss_id)) or []
        self.snapshot.node_types.append(node_type_view(raw, instances))

    def _goal(self) -> None:
        snap, vault = self.snapshot, self.snapshot.vault
        assert vault is not None
        name = self.spec.goal.certificateName
        resource = f"{vault.id}/certificates/{name}"
        certificate = _observe(snap, resource, lambda: self.gateway.get_certificate(vault.uri, name))
        if certificate is None:
            return
        if not certificate.cer:  # a version still pending issuance has no certificate yet
            snap.problems.append(Problem("RESOURCE_NOT_FOUND", resource, f"the latest version of {name} has no issued certificate yet"))
            return
        der = bytes(certificate.cer)
        policy = certificate.policy
        properties = certificate.properties
        goal = GoalView(
            name=certificate.name,
            version=properties.version or "",
            secret_id=certificate.secret_id or f"{vault.uri}secrets/{name}/{properties.version}",
            versionless_secret_url=f"{vault.uri.rstrip('/')}/secrets/{certificate.name}",
            facts=facts(der),
            exportable=getattr(policy, "exportable", None) if policy else None,
            content_type=str(getattr(policy, "content_type", "") or "") or None if policy else None,
            policy_issuer_name=getattr(policy, "issuer_name", None) if policy else None,
            enabled=bool(properties.enabled if properties.enabled is not None else True),
        )
        self._issuer(goal, der)
        self._chain(goal, der)
        snap.goal = goal
        snap.known_certificates[goal.facts.thumbprint] = KnownCertificate(
            goal.facts.thumbprint, goal.facts, vault.id, goal.name, goal.version, goal.secret_id
        )

    def _issuer(self, goal: GoalView, der: bytes) -> None:
        """The goal's direct issuer, from the plan file's issuer certificates, else from AIA (public material), and
        every CA certificate seen that could stand in for it (same subject and key: a re-issue in a .p7c bundle)."""
        if goal.facts.self_signed:
            return
        notes: list[str] = []
        issuers = self._possible_issuers(der, goal.facts, notes)
        self.snapshot.possible_issuers[goal.facts.thumbprint] = [facts(c) for c, _ in issuers]
        if issuers:
            goal.issuer, goal.issuer_source = facts(issuers[0][0]), issuers[0][1]
            return
        goal.issuer_note = "; ".join(notes) or "the certificate has no Authority Information Access URL; give goal.issuerCertificates"

    def _possible_issuers(self, der: bytes, cert: CertFacts, notes: list[str]) -> list[tuple[bytes, str]]:
        """CA certificates (DER, "plan" | "aia") from goal.issuerCertificates and the certificate's AIA URLs (a
        certificate or a PKCS#7 bundle each) whose key signed ``der`` under its issuer's name; plan files first.
        AIA is fetched without credentials, http(s) only; an unreachable URL becomes a note, never an error."""
        seen: list[tuple[bytes, str]] = []
        for path in self.spec.goal.issuerCertificates:
            try:
                seen += [(c, "plan") for c in certificates_in(Path(path).read_bytes())]
            except OSError as exc:
                notes.append(f"goal.issuerCertificates: cannot read {path}: {exc.strerror}")
            except ValueError as exc:
                notes.append(f"goal.issuerCertificates: {path}: {exc}")
        for url in cert.aia_ca_issuers[:MAX_AIA_URLS]:
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                notes.append(f"{url}: only http(s) AIA URLs are fetched")
                continue
            try:
                found = [(c, "aia") for c in certificates_in(self.fetch_public(url))]
            except Exception as exc:  # an unreachable AIA URL leaves the issuer unknown, never fails discovery
                notes.append(f"{url}: {exc}")
                continue
            if not any(is_issued_by(der, c) for c, _ in found):
                notes.append(f"{url} is not the issuer")
            seen += found
        out: list[tuple[bytes, str]] = []
        for candidate, source in seen:
            if is_issued_by(der, candidate) and all(thumbprint_of(candidate) != thumbprint_of(c) for c, _ in out):
                out.append((candidate, source))
        return out

    def _version_issuers(self) -> None:
        """Possible issuers of the goal's other versions the cluster declares from another CA: such a version counts
        as the goal when every one of them is pinned (planner.goal_equivalent)."""
        snap, vault = self.snapshot, self.snapshot.vault
        if snap.cluster is None or snap.goal is None or vault is None:
            return
        goal = snap.goal
        for thumbprint in snap.cluster.declared_thumbprints:
            known = snap.certificate(thumbprint)
            if (known is None or thumbprint in snap.possible_issuers or known.facts.self_signed or not known.version
                    or (known.name or "").lower() != goal.name.lower() or known.facts.issuer == goal.facts.issuer):
                continue
            try:
                certificate = self.gateway.get_certificate_version(vault.uri, goal.name, known.version)
            except (NotFound, PermissionDenied):
                continue
            if certificate.cer and thumbprint_of(bytes(certificate.cer)) == thumbprint:
                found = self._possible_issuers(bytes(certificate.cer), known.facts, [])
                snap.possible_issuers[thumbprint] = [facts(c) for c, _ in found]

    def _chain(self, goal: GoalView, der: bytes) -> None:
        """The goal's chain and the CRLs it names (``migrate.chain_discovery``: public material, no credentials)."""
        if goal.facts.self_signed:
            return
        known = []
        for path in self.spec.goal.issuerCertificates:
            try:
                known.extend(certificates_in(Path(path).read_bytes()))  # PEM, DER or a PKCS#7 bundle
            except (OSError, ValueError):
                continue  # _issuer already notes an unreadable file
        goal.chain, goal.chain_complete, goal.public_endpoints = observe_chain(self.fetch_public, der, known)

    def _vault_certificates(self) -> None:
        """Other certificates in the vault (same subject or overlapping SANs is a hazard)."""
        snap, vault = self.snapshot, self.snapshot.vault
        assert vault is not None
        items = _observe(snap, f"{vault.id}/certificates", lambda: self.gateway.list_certificates(vault.uri)) or []
        names = [p.name for p in items if p.name and p.name.lower() != self.spec.goal.certificateName.lower()]

        def read(name: str) -> VaultCertificateView:
            try:
                certificate = self.gateway.get_certificate(vault.uri, name)
                return VaultCertificateView(name, facts(bytes(certificate.cer)) if certificate.cer else None)
            except (NotFound, PermissionDenied):
                return VaultCertificateView(name, None)

        snap.vault_certificates = list(self.pool.map(read, names[:MAX_VAULT_CERTIFICATES])) if names else []
        for view in snap.vault_certificates:
            if view.facts:
                snap.known_certificates.setdefault(view.facts.thumbprint, KnownCertificate(view.facts.thumbprint, view.facts, vault.id, view.name))

    def _vault_network(self) -> None:
        """Behind a firewall, the node types' subnets (service endpoints) and the approved private endpoints'
        subnets; a resource that cannot be read stays unknown (the check then takes the pessimistic reading)."""
        view = self.snapshot.vault_network
        if view is None or view.open:
            return
        wanted = {s.lower(): s for n in self.snapshot.node_types for s in network.subnet_ids(n.raw)}

        def read_subnet(subnet_id: str) -> network.SubnetView:
            try:
                return network.subnet_view(self.gateway.get_resource(subnet_id, network.NETWORK_API_VERSION), subnet_id)
            except (NotFound, PermissionDenied):
                return network.SubnetView(subnet_id, readable=False)

        def read_endpoint(endpoint_id: str) -> str | None:
            try:
                raw = self.gateway.get_resource(endpoint_id, network.NETWORK_API_VERSION)
            except (NotFound, PermissionDenied):
                return None
            subnet = ((raw.get("properties") or {}).get("subnet") or {}).get("id")
            return str(subnet) if subnet else None

        subnets = list(self.pool.map(read_subnet, sorted(wanted.values())))
        view.subnets = {s.id.lower(): s for s in subnets}
        view.private_endpoint_subnets = [s for s in self.pool.map(read_endpoint, view.private_endpoint_ids) if s]

    def _role_assignments(self) -> None:
        snap, vault, identity = self.snapshot, self.snapshot.vault, self.snapshot.identity
        assert vault is not None and identity is not None and identity.principal_id is not None
        principal_id = identity.principal_id
        found = _observe(snap, vault.id, lambda: self.gateway.list_role_assignments(vault.id, principal_id)) or []
        snap.vault_role_assignments = [
            RoleAssignmentView(a.get("id", ""), (a.get("properties") or {}).get("scope", ""),
                               (a.get("properties") or {}).get("roleDefinitionId", ""), (a.get("properties") or {}).get("principalId", ""))
            for a in found
        ]

    def _goal_versions(self, wanted: set[str]) -> None:
        """Declared thumbprints that are earlier versions of the goal (a rotation since they were declared)."""
        snap, vault = self.snapshot, self.snapshot.vault
        missing = {t for t in wanted if t not in snap.known_certificates}
        if not missing or vault is None or snap.goal is None:
            return
        name = snap.goal.name
        try:
            versions = self.gateway.list_certificate_versions(vault.uri, name)
        except (NotFound, PermissionDenied):
            return
        for properties in versions:
            thumbprint = bytes(properties.x509_thumbprint or b"").hex().upper()
            if thumbprint in missing and properties.version:
                try:
                    certificate = self.gateway.get_certificate_version(vault.uri, name, properties.version)
                except (NotFound, PermissionDenied):
                    continue
                if certificate.cer:
                    der = bytes(certificate.cer)
                    snap.known_certificates[thumbprint] = KnownCertificate(
                        thumbprint, facts(der), vault.id, name, properties.version, certificate.secret_id
                    )

    def _known_certificates(self) -> None:
        """Facts of certificates the cluster references by thumbprint, through the versions VMSS secrets name."""
        snap = self.snapshot
        wanted = {t for t in (snap.cluster.declared_thumbprints if snap.cluster else []) if t not in snap.known_certificates}
        urls = {s.certificate_url for n in snap.node_types for s in n.secrets}

        def read(url: str) -> KnownCertificate | None:
            parts = _split_secret_url(url)
            if parts is None:
                return None
            vault_uri, name, version = parts
            if version is None:
                return None
            try:
                certificate = self.gateway.get_certificate_version(vault_uri, name, version)
            except (NotFound, PermissionDenied):
                return None
            if not certificate.cer:
                return None
            der = bytes(certificate.cer)
            return KnownCertificate(thumbprint_of(der), facts(der), None, name, version, url)

        if not wanted and not urls:
            return
        for known in self.pool.map(read, sorted(urls)):
            if known is None:
                continue
            existing = snap.known_certificates.get(known.thumbprint)
            if existing is None:
                snap.known_certificates[known.thumbprint] = known
            elif not existing.secret_url:  # the same version, seen in the vault listing first
                existing.secret_url, existing.version = known.secret_url, existing.version or known.version
        self._goal_versions(wanted)


def discover(gateway: Gateway, spec: PlanSpec, now: dt.datetime | None = None) -> Snapshot:
    """The world as Azure shows it. An answer of the wrong shape (a 200 whose fields are not what the API
    documents) is one line, exit 1, never "internal error" (issue 13)."""
    try:
        return Discovery(gateway, spec, now).run()
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise OperationalError(f"Azure answered with a body of an unexpected shape while reading the cluster and its "
                               f"resources ({type(exc).__name__}: {text}); nothing was changed") from exc
