"""Chain building and revocation for certificates validated by common name (pure functions).

cluster-security-certificates (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates):
for certificates declared by common name, "revocation errors, partial chain or time-invalid trust errors are
considered fatal"; declarations by thumbprint need none of this. A node builds the chain of a certificate it
validates by common name: intermediates come from its stores or from the AIA caIssuers URL, and their
revocation status from the CRL Distribution Point. The twin's vault secrets carry the chain (as Key Vault's do
for a certificate issued with its chain) and nodes install them whole, so intermediates come from the stores
(``intermediates_installed``); without them a node must reach AIA, else the chain is partial.

What relaxes it, the Security section of ``fabricSettings``
(https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-fabric-settings):

- ``CrlCheckingFlag`` (default 0x40000000, CERT_CHAIN_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT; "setting to 0
  disables CRL checking"; 0x10000000 the end certificate only, 0x20000000 the whole chain). On Linux the
  default is 0 (https://github.com/microsoft/service-fabric, src/prod/src/Common/SecurityConfig.h).
- ``IgnoreCrlOfflineError`` (default false): ignore an offline CRL when the server side verifies incoming
  client certificates. Node-to-node connections are mutually authenticated, so the accepting node is a server
  verifying a client certificate: this is the setting that decides (``IgnoreSvrCrlOfflineError``, default true,
  covers only the client side, so it relaxes nothing here; pessimistic: undocumented which side governs).

A revoked certificate is rejected whatever the settings (CRYPT_E_REVOKED), once its CRL can be read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from ...pki import Issued

END_CERT, CHAIN, CHAIN_EXCLUDE_ROOT = 0x10000000, 0x20000000, 0x40000000
WINDOWS_DEFAULT_CRL_FLAG, LINUX_DEFAULT_CRL_FLAG = CHAIN_EXCLUDE_ROOT, 0


@dataclass(frozen=True)
class ChainPolicy:
    """What a cluster's nodes can reach and how they check revocation (one per cluster and verdict)."""

    pki_reachable: bool = True
    intermediates_installed: bool = True  # the secret's chain is on the node (else AIA must answer)
    crl_checking_flag: int = WINDOWS_DEFAULT_CRL_FLAG
    ignore_crl_offline_error: bool = False
    revoked: frozenset[str] = frozenset()  # thumbprints on their issuer's CRL


def security_settings(properties: dict[str, Any]) -> dict[str, str]:
    """The ``Security`` section of a cluster's ``fabricSettings`` (parameter names as given)."""
    out: dict[str, str] = {}
    for section in properties.get("fabricSettings") or []:
        if isinstance(section, dict) and str(section.get("name", "")).lower() == "security":
            for parameter in section.get("parameters") or []:
                if isinstance(parameter, dict):
                    out[str(parameter.get("name", ""))] = str(parameter.get("value", ""))
    return out


def _setting(settings: dict[str, str], name: str) -> str | None:
    return next((v for k, v in settings.items() if k.lower() == name.lower()), None)


def policy_for(properties: dict[str, Any], pki_reachable: bool, revoked: Iterable[str]) -> ChainPolicy:
    """The policy a cluster's ``fabricSettings`` give its nodes (unparseable values keep the default)."""
    settings = security_settings(properties)
    linux = str(properties.get("vmImage") or "").lower() == "linux"
    flag = LINUX_DEFAULT_CRL_FLAG if linux else WINDOWS_DEFAULT_CRL_FLAG
    raw_flag = _setting(settings, "CrlCheckingFlag")
    if raw_flag is not None:
        try:
            flag = int(raw_flag.strip(), 0)
        except ValueError:
            pass
    ignore = (_setting(settings, "IgnoreCrlOfflineError") or "false").strip().lower() == "true"
    return ChainPolicy(pki_reachable, True, flag, ignore, frozenset(revoked))


def _urls(cert: x509.Certificate, *, crl: bool) -> list[str]:
    try:
        if crl:
            points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            return [str(n.value) for p in points for n in (p.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        return [str(d.access_location.value) for d in aia if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]
    except x509.ExtensionNotFound:
        return []


def _checked(chain: list[Issued], flag: int) -> list[Issued]:
    """The certificates CertGetCertificateChain checks for revocation under ``flag`` (widest bit wins)."""
    if flag & CHAIN:
        return chain
    if flag & CHAIN_EXCLUDE_ROOT:
        return [c for c in chain if c.issuer is not None]
    if flag & END_CERT:
        return chain[:1]
    return []


def chain_problem(cert: Issued, now: dt.datetime, policy: ChainPolicy) -> str | None:
    """Why a node validating ``cert`` by common name rejects it (partial chain, time-invalid CA, revocation), or None."""
    chain = cert.chain()
    for child, ca in zip(chain, chain[1:]):
        if ca.issuer is not None and not policy.intermediates_installed and not policy.pki_reachable:  # only at AIA
            where = ", ".join(_urls(child.cert, crl=False)) or "no AIA URL"
            return (f"cannot build the chain of {cert.thumbprint}: intermediate '{ca.facts.subject_cn}' is not in the node's "
                    f"stores and its AIA URL ({where}) is unreachable (CERT_E_CHAINING: a partial chain is fatal for "
                    "common-name declarations)")
        if not ca.facts.not_before <= now <= ca.facts.not_after:
            return (f"the chain of {cert.thumbprint} holds '{ca.facts.subject_cn}', which is expired or not yet valid "
                    "(CERT_E_EXPIRED: a time-invalid chain is fatal for common-name declarations)")
    for checked in _checked(chain, policy.crl_checking_flag):
        if checked.issuer is None:
            continue  # a self-signed root has no CRL to consult
        urls = ", ".join(_urls(checked.cert, crl=True)) or "no CRL Distribution Point"
        if not policy.pki_reachable:
            if policy.ignore_crl_offline_error:
                continue
            return (f"cannot check revocation of {checked.thumbprint} ('{checked.facts.subject_cn}'): CRL at {urls} "
                    "unreachable (CRYPT_E_REVOCATION_OFFLINE; fabricSettings Security/IgnoreCrlOfflineError is false and "
                    "Security/CrlCheckingFlag is not 0)")
        if checked.thumbprint in policy.revoked:
            return (f"certificate {checked.thumbprint} ('{checked.facts.subject_cn}') is revoked: it is on the CRL at "
                    f"{urls} (CRYPT_E_REVOKED)")
    return None
