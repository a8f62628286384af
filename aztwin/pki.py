"""The twin's PKI: roots, intermediates and leaves as real X.509, generated at start.

Certificates carry an Authority Information Access URL pointing at the twin (``/_pki/{name}.cer``), as
public CAs do, so a tool can fetch a leaf's direct issuer without any private material, and a CRL
Distribution Point (``/_pki/{name}.crl``) where the twin serves a CRL signed by that CA (:meth:`Pki.crl`).
``reachable`` False makes those endpoints unreachable for nodes and for any HTTP caller (docs/twin.md,
"Chain building and revocation"); :meth:`Pki.revoke` puts a certificate on its issuer's CRL. A second CA-issuers
URL (``/_pki/{name}.p7c``) serves a PKCS#7 certs-only bundle: the issuer and every re-issue of it published
with it (same subject and key, another thumbprint; see :meth:`Pki.reissue`).
"""

from __future__ import annotations

import datetime as dt
import threading
from functools import cached_property
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

CRL_LIFETIME = dt.timedelta(days=7)  # nextUpdate of a served CRL, from the moment it is asked for

from .certinfo import CertInfo, cert_info

_EKU = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}

# RSA key generation is the slowest part of building a world; keys are drawn from a per-process pool,
# distinct within one world (a world asks for key i, i+1, ...), and reused across worlds.
_KEY_POOL: list[rsa.RSAPrivateKey] = []
_KEY_LOCK = threading.Lock()


def _pooled_key(index: int) -> rsa.RSAPrivateKey:
    with _KEY_LOCK:
        while len(_KEY_POOL) <= index:
            _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY_POOL[index]


@dataclass
class Issued:
    """A certificate the twin issued, with its key (which never leaves the twin except as a vault secret)."""

    name: str
    cert: x509.Certificate
    key: rsa.RSAPrivateKey = field(repr=False)
    issuer: "Issued | None"  # None for self-signed certificates

    @cached_property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @cached_property
    def facts(self) -> CertInfo:
        return cert_info(self.cert)

    @property
    def thumbprint(self) -> str:
        return self.facts.thumbprint

    @property
    def issuer_thumbprint(self) -> str | None:
        return self.issuer.thumbprint if self.issuer else None

    def chain(self) -> list["Issued"]:
        """This certificate, then its issuers up to the root."""
        link: Issued | None = self
        out = []
        while link is not None and link not in out:
            out.append(link)
            link = link.issuer
        return out

    def root(self) -> "Issued":
        return self.chain()[-1]


class Pki:
    def __init__(self, aia_base_url: str = "") -> None:
        self.aia_base_url = aia_base_url.rstrip("/")
        self.authorities: dict[str, Issued] = {}
        self.issued: list[Issued] = []
        self._next_key = 0
        self.reachable = True  # AIA and CDP URLs answer (scenario ``pkiEndpoints``; control API)
        self.revoked: dict[str, dt.datetime] = {}  # thumbprint -> revocation time
        self.published_with: dict[str, list[str]] = {}  # authority -> re-issues published at its AIA (same subject, key)

    # -- publication: AIA, CDP, revocation ----------------------------------------------------------
    def crl_url(self, authority: str) -> str:
        return f"{self.aia_base_url}/_pki/{authority}.crl"

    def issued_by_thumbprint(self, thumbprint: str) -> Issued | None:
        wanted = thumbprint.replace(" ", "").upper()
        return next((i for i in self.issued if i.thumbprint == wanted), None)

    def revoke(self, thumbprint: str, when: dt.datetime) -> Issued:
        """Put a CA-issued certificate on its issuer's CRL (KeyError: unknown; ValueError: self-signed)."""
        issued = self.issued_by_thumbprint(thumbprint)
        if issued is None:
            raise KeyError(f"no certificate with thumbprint {thumbprint} was issued by the twin's PKI")
        if issued.issuer is None:
            raise ValueError(f"certificate {issued.thumbprint} is self-signed: no CA can revoke it")
        self.revoked.setdefault(issued.thumbprint, when)
        return issued

    def crl(self, authority: str, now: dt.datetime) -> bytes:
        """The DER CRL that ``authority`` signs now: every certificate it issued that was revoked."""
        ca = self.authority(authority)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(now)
            .next_update(now + CRL_LIFETIME)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        )
        for issued in self.issued:
            when = self.revoked.get(issued.thumbprint)
            if when is not None and issued.issuer is ca:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(issued.cert.serial_number).revocation_date(when).build()
                )
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _key(self) -> rsa.RSAPrivateKey:
        key = _pooled_key(self._next_key)
        self._next_key += 1
        return key

    def authority(self, name: str) -> Issued:
        try:
            return self.authorities[name]
        except KeyError:
            raise KeyError(f"no certificate authority named '{name}'") from None

    def create_authority(
        self,
        name: str,
        subject_cn: str,
        not_before: dt.datetime,
        not_after: dt.datetime,
        issuer: str | None = None,
        reuse_key_of: str | None = None,
    ) -> Issued:
        """A root (``issuer=None``) or an intermediate signed by ``issuer``.

        ``reuse_key_of`` re-keys nothing: it gives the new CA the key of another one, as DigiCert's
        cross-signed intermediates do (docs/twin.md, "Issuer siblings").
        """
        key = self.authority(reuse_key_of).key if reuse_key_of else self._key()
        parent = self.authority(issuer) if issuer else None
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
        builder = self._builder(subject, key, parent, not_before, not_after, ca=True)
        cert = self._sign(builder, key, parent)
        issued = Issued(name, cert, key, parent)
        self.authorities[name] = issued
        self.issued.append(issued)
        return issued

    def reissue(self, name: str, of: str, not_before: dt.datetime, not_after: dt.datetime) -> Issued:
        """A re-issue of authority ``of``: same subject, same key, same issuer, a new thumbprint (CA vendors re-issue
        an intermediate this way), published with it at its AIA ``.p7c``. A leaf ``of`` signed chains through either
        (its issuer name and authority key identifier match both): docs/twin.md, "Issuer siblings"."""
        original = self.authority(of)
        subject = original.facts.subject_cn or ""
        issuer = original.issuer.name if original.issuer else None
        if issuer is None:  # a self-signed root re-issued with its own key signs itself
            issued = self.create_authority(name, subject, not_before, not_after, reuse_key_of=of)
        else:
            issued = self.create_authority(name, subject, not_before, not_after, issuer=issuer, reuse_key_of=of)
        group = [of, *self.published_with.get(of, []), name]
        for member in group:
            self.published_with[member] = [other for other in group if other != member]
        return issued

    def siblings(self, authority: Issued) -> list[Issued]:
        """The published re-issues of ``authority`` (same subject and key): a node building a chain may use any."""
        return [self.authorities[n] for n in self.published_with.get(authority.name, ())]

    def bundle(self, name: str) -> bytes:
        """The ``.p7c`` at an authority's AIA: PKCS#7 certs-only (DER) with it and its published re-issues."""
        authority = self.authority(name)
        certs = [authority.cert] + [s.cert for s in self.siblings(authority)]
        return pkcs7.serialize_certificates(certs, serialization.Encoding.DER)

    def issue_leaf(
        self,
        name: str,
        subject_cn: str,
        not_before: dt.datetime,
        not_after: dt.datetime,
        issuer: str | None = None,
        sans: list[str] | None = None,
        ekus: list[str] | None = None,
        extra_subject: dict[str, str] | None = None,
    ) -> Issued:
        """An end-entity certificate; ``issuer=None`` makes it self-signed."""
        key = self._key()
        parent = self.authority(issuer) if issuer else None
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]
        for oid_name, value in (extra_subject or {}).items():
            attributes.append(x509.NameAttribute(getattr(NameOID, oid_name), value))
        subject = x509.Name(attributes)
        eku_names = ["serverAuth", "clientAuth"] if ekus is None else ekus
        builder = self._builder(subject, key, parent, not_before, not_after, ca=False)
        if eku_names:
            builder = builder.add_extension(x509.ExtendedKeyUsage([_EKU[e] for e in eku_names]), critical=False)
        dns = list(sans) if sans is not None else [subject_cn]
        if dns:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
        cert = self._sign(builder, key, parent)
        issued = Issued(name, cert, key, parent)
        self.issued.append(issued)
        return issued

    @staticmethod
    def _builder(subject: x509.Name, key: rsa.RSAPrivateKey, parent: Issued | None, not_before: dt.datetime,
                 not_after: dt.datetime, *, ca: bool) -> x509.CertificateBuilder:
        """What every certificate here has: names, key, validity, basic constraints and key usage."""
        usage = (False, False, False, False, False, True, True, False, False) if ca else (True, False, True, False, False, False, False, False, False)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(parent.cert.subject if parent else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(*usage), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )

    def _sign(self, builder: x509.CertificateBuilder, key: rsa.RSAPrivateKey, parent: Issued | None) -> x509.Certificate:
        """Link to the issuer (AKI, and AIA where the twin serves it) and sign; self-signed without a parent."""
        if parent:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False
            )
            builder = self._with_aia(builder, parent.name)
        return builder.sign(parent.key if parent else key, hashes.SHA256())

    def _with_aia(self, builder: x509.CertificateBuilder, issuer_name: str) -> x509.CertificateBuilder:
        """AIA caIssuers and the CRL Distribution Point of the issuing CA, as public CAs publish them."""
        if not self.aia_base_url:
            return builder
        url = f"{self.aia_base_url}/_pki/{issuer_name}.cer"
        cdp = x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl_url(issuer_name))], None, None, None)
        return builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)),
                 x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,  # the bundle with re-issues
                                        x509.UniformResourceIdentifier(url[:-len(".cer")] + ".p7c"))]
            ),
            critical=False,
        ).add_extension(x509.CRLDistributionPoints([cdp]), critical=False)

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "subject": a.facts.subject,
                "thumbprint": a.thumbprint,
                "issuer": a.issuer.name if a.issuer else None,
                "publishedWith": list(self.published_with.get(a.name, [])),
                "notBefore": a.facts.not_before.isoformat(),
                "notAfter": a.facts.not_after.isoformat(),
            }
            for a in self.authorities.values()
        ]
