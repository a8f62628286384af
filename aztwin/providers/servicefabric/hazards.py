"""Hazards: what does not break the cluster today but is known to break clusters later
(https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).

The verdict answers "would it break now"; these answer "what will break it next", from the same world:
the declaration, the extensions on the scale sets, the vault certificates and what the nodes present.
Shown as ``cluster.hazards`` in ``GET /_emulator/world`` (a list of ``{"code", "message"}``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..compute.guest import KV_TYPES, KvConfig, parse_kv_settings
from .declaration import COMMON_NAME, THUMBPRINT, Declaration

if TYPE_CHECKING:
    from ..compute.models import Instance, ScaleSet
    from ..keyvault.models import Vault, VaultCertificate
    from .models import Cluster
    from ...world import World

EXPIRY_WARNING_DAYS = 30


def _observed(world: World, scale_set: ScaleSet) -> list[tuple[KvConfig, Vault, VaultCertificate]]:
    """(extension config, vault, vault certificate) for each certificate a Key Vault extension observes."""
    out = []
    for extension in scale_set.extensions_of_type(*KV_TYPES):
        config = parse_kv_settings(extension)
        if isinstance(config, str):
            continue
        for observed in config.observed:
            try:
                vault, certificate, _ = world.keyvault.resolve_secret_url(observed.url, versioned=False)
            except Exception:  # a broken URL is the extension's failure, reported in its status
                continue
            out.append((config, vault, certificate))
    return out


def hazards(world: World, cluster: Cluster, members: list[tuple[ScaleSet, Instance, str]], presented: dict[str, str | None]) -> list[dict[str, str]]:
    found: dict[str, str] = {}

    def add(code: str, message: str) -> None:
        found.setdefault(code, message)

    declaration: Declaration = cluster.declaration
    now: dt.datetime = world.now()
    scale_sets = {id(s): (s, node_type) for s, _, node_type in members}
    for scale_set, node_type in scale_sets.values():
        observed = _observed(world, scale_set)
        for config, vault, certificate in observed:
            thumbprints = {v.issued.thumbprint for v in certificate.versions}
            if declaration.kind == THUMBPRINT and thumbprints & set(declaration.thumbprints):
                add("AutoRenewalUnderThumbprint", f"node type {node_type}: the Key Vault extension observes {vault.name}/{certificate.name}, "
                    "which is declared by thumbprint; a renewal will not match the declaration (provisioning must match declaration)")
            if config.link_on_renewal:
                add("LinkOnRenewal", f"node type {node_type}: the Key Vault extension links renewals by SAN "
                    f"({'version 4.x always links' if config.major >= 4 else 'linkOnRenewal: true'}); S-channel follows links regardless of subject or issuer")
            if config.major >= 4:
                add("KeyVaultExtension4", f"node type {node_type}: Key Vault extension 4.x stores keys with CNG, which Service Fabric cannot use (NTE_BAD_PROV_TYPE)")
        if declaration.kind == COMMON_NAME:
            names = {rule.common_name for rule in declaration.common_names}
            if not any(v.issued.facts.subject_cn in names for _, _, c in observed for v in c.versions):
                add("CommonNameWithoutExtension", f"node type {node_type}: no Key Vault extension observes a certificate for "
                    f"{', '.join(sorted(names))}; certificates delivered by versioned VMSS secrets do not renew (provisioning must match declaration)")
    if declaration.kind == COMMON_NAME:
        for rule in declaration.common_names:
            if not rule.issuers:
                add("IssuerNotPinned", f"'{rule.common_name}' has no pinned issuer: any certificate with that subject chaining to a trusted root is accepted")
    if cluster.properties.get("reverseProxyCertificate"):
        add("ReverseProxyByThumbprint", "the reverse-proxy certificate is declared by thumbprint and will not renew itself")
    certs = {c.thumbprint: c for _, instance, _ in members for c in instance.store}
    shown = [certs[t] for t in dict.fromkeys(t for t in presented.values() if t) if t in certs]
    for cert in shown:
        facts = cert.issued.facts
        if not facts.has_client_auth:
            add("NoClientAuthEku", f"the presented certificate {cert.thumbprint} lacks the Client Authentication EKU: SFX and client-certificate callers on 19080 break")
        days = (facts.not_after - now).total_seconds() / 86400
        if days < EXPIRY_WARNING_DAYS:
            add("ExpiresSoon", f"the presented certificate {cert.thumbprint} expires in {days:.1f} days")
        sans = {s.lower() for s in facts.sans}
        for vault in world.keyvault.vaults.values():
            for certificate in vault.certificates.values():
                if any(v.issued.thumbprint == cert.thumbprint for v in certificate.versions):
                    continue
                other = certificate.versions[-1].issued.facts
                if other.subject_cn == facts.subject_cn or sans & {s.lower() for s in other.sans}:
                    add("SharedSubject", f"vault certificate {vault.name}/{certificate.name} shares the subject or SANs of the cluster certificate {cert.thumbprint}")
    reverse = cluster.properties.get("reverseProxyCertificate") or {}
    matching = set(declaration.thumbprints) | {str(reverse.get(k)).upper() for k in ("thumbprint", "thumbprintSecondary") if reverse.get(k)}
    names = {rule.common_name for rule in declaration.common_names}
    left = sorted({c.thumbprint for c in certs.values() if c.thumbprint not in matching and c.issued.facts.subject_cn not in names})
    if left:
        add("CertificatesLeftOnNodes", f"{len(left)} certificate(s) on the nodes match no declaration (VMSS secret removal does not delete them): {', '.join(left[:4])}")
    return [{"code": code, "message": message} for code, message in found.items()]
