"""The goal's chain and the public endpoints it names (AIA caIssuers, CRL Distribution Points).

Nodes validating the goal by common name build its chain and check revocation; "revocation errors, partial
chain or time-invalid trust errors are considered fatal"
(https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates). Discovery builds the same
chain from the plan file's ``goal.issuerCertificates`` and AIA, and fetches every CRL the chain names, through
``fetch`` (``Gateway.fetch_public``: no credentials, http/https only, bounded). A URL that does not answer
becomes an unreachable :class:`PublicEndpoint`, never an exception. Reaching a URL from the operator's
machine does not prove the nodes reach it (runbooks/findings/REVOCATION_UNREACHABLE.md).
"""

from __future__ import annotations

from typing import Callable, Sequence

from cryptography import x509

from .snapshot import PublicEndpoint
from .x509 import CertFacts, certificates_in, facts, is_issued_by, load_der

MAX_DEPTH = 6  # leaf, intermediates, root: deeper chains are not built
Fetch = Callable[[str], bytes]


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _parent(fetch: Fetch, der: bytes, known: Sequence[bytes], endpoints: list[PublicEndpoint]) -> bytes | None:
    """The certificate that issued ``der``: a known one, else the first AIA URL that serves it."""
    found = next((k for k in known if is_issued_by(der, k)), None)
    if found is not None:
        return found
    child = facts(der)
    for url in child.aia_ca_issuers:
        try:
            candidates = certificates_in(fetch(url))  # one certificate (.cer) or a PKCS#7 bundle (.p7c)
        except Exception as exc:  # unreachable, refused, not a certificate: recorded, never raised
            endpoints.append(PublicEndpoint("aia", url, child.thumbprint, child.subject, False, _reason(exc)))
            continue
        issuer = next((c for c in candidates if is_issued_by(der, c)), None)
        endpoints.append(PublicEndpoint("aia", url, child.thumbprint, child.subject, True, "" if issuer else "not the issuer"))
        if issuer is not None:
            return issuer
    return None


def _load_crl(body: bytes) -> x509.CertificateRevocationList:
    if body.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(body)
    return x509.load_der_x509_crl(body)


def _crl_endpoint(fetch: Fetch, url: str, der: bytes, issuer: bytes | None) -> PublicEndpoint:
    subject = facts(der)
    try:
        crl = _load_crl(fetch(url))
    except Exception as exc:
        return PublicEndpoint("crl", url, subject.thumbprint, subject.subject, False, _reason(exc))
    if issuer is None:
        return PublicEndpoint("crl", url, subject.thumbprint, subject.subject, True, "issuer unknown: CRL not verified")
    issuer_key = x509.load_der_x509_certificate(issuer).public_key()
    try:
        valid = crl.is_signature_valid(issuer_key)  # type: ignore[arg-type]
    except TypeError:
        valid = False
    if not valid:
        return PublicEndpoint("crl", url, subject.thumbprint, subject.subject, True, "the CRL is not signed by the issuer")
    serial = x509.load_der_x509_certificate(der).serial_number
    revoked = crl.get_revoked_certificate_by_serial_number(serial) is not None
    return PublicEndpoint("crl", url, subject.thumbprint, subject.subject, True, "revoked" if revoked else "not revoked", revoked)


def observe_chain(fetch: Fetch, leaf: bytes, known_issuers: Sequence[bytes]) -> tuple[list[CertFacts], bool, list[PublicEndpoint]]:
    """(the issuers above ``leaf``, whether the chain reached a self-signed root, the endpoints fetched)."""
    endpoints: list[PublicEndpoint] = []
    chain = [load_der(leaf)]
    complete = False
    while len(chain) < MAX_DEPTH:
        if facts(chain[-1]).self_signed:
            complete = True
            break
        parent = _parent(fetch, chain[-1], known_issuers, endpoints)
        if parent is None:
            break
        chain.append(parent)
    for index, der in enumerate(chain):
        if facts(der).self_signed:
            continue  # a root has no CRL to consult (CrlCheckingFlag's default excludes it)
        issuer = chain[index + 1] if index + 1 < len(chain) else None
        for url in facts(der).crl_urls:
            endpoints.append(_crl_endpoint(fetch, url, der, issuer))
    return [facts(der) for der in chain[1:]], complete, endpoints
