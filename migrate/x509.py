"""Certificate facts from DER or PEM: thumbprints, names, EKUs, validity, issuer links.

Only public certificate material passes through here: the migration never downloads a private key
(the goal certificate is read through the certificates API, never ``/secrets``: https://learn.microsoft.com/azure/key-vault/certificates/about-certificates).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID, NameOID

SERVER_AUTH = "serverAuth"
CLIENT_AUTH = "clientAuth"
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: SERVER_AUTH,
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: CLIENT_AUTH,
}
_HEX40 = re.compile(r"^[0-9A-F]{40}$")


@dataclass(frozen=True)
class CertFacts:
    """What sfmigrate knows of one certificate (plain data, JSON-friendly via :meth:`to_dict`)."""

    thumbprint: str  # SHA-1 of the DER, upper-case hex, no separators (as Azure shows it)
    subject: str
    subject_cn: str | None
    issuer: str
    issuer_cn: str | None
    sans: tuple[str, ...]
    ekus: tuple[str, ...]  # "serverAuth", "clientAuth" or dotted OIDs; empty = no EKU extension
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool
    is_ca: bool
    serial: str
    key_type: str
    aia_ca_issuers: tuple[str, ...]
    authority_key_id: str | None
    subject_key_id: str | None
    crl_urls: tuple[str, ...] = ()  # CRL Distribution Points (full names that are URIs)

    def valid_at(self, moment: dt.datetime) -> bool:
        return self.not_before <= moment <= self.not_after

    def days_left(self, moment: dt.datetime) -> float:
        return (self.not_after - moment).total_seconds() / 86400

    @property
    def has_client_auth(self) -> bool:
        return not self.ekus or CLIENT_AUTH in self.ekus

    @property
    def has_server_auth(self) -> bool:
        return not self.ekus or SERVER_AUTH in self.ekus

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["not_before"] = self.not_before.isoformat()
        data["not_after"] = self.not_after.isoformat()
        for key in ("sans", "ekus", "aia_ca_issuers", "crl_urls"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CertFacts":
        values = dict(data)
        values["not_before"] = dt.datetime.fromisoformat(values["not_before"])
        values["not_after"] = dt.datetime.fromisoformat(values["not_after"])
        for key in ("sans", "ekus", "aia_ca_issuers", "crl_urls"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)


def thumbprint_of(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - Azure's certificate thumbprint is SHA-1


def thumbprint_from_x5t(x5t: str) -> str:
    """Key Vault's ``x5t`` (base64url SHA-1) as an Azure thumbprint."""
    raw = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4))
    return raw.hex().upper()


def normalise_thumbprint(value: str) -> str:
    """Upper-case hex without spaces; raises ValueError for anything that is not a SHA-1 thumbprint."""
    cleaned = value.replace(" ", "").upper()
    if not _HEX40.match(cleaned):
        raise ValueError(f"'{value}' is not a 40-hex-digit SHA-1 thumbprint")
    return cleaned


def load_der(data: bytes | str) -> bytes:
    """DER bytes from DER, PEM text or base64 text."""
    if isinstance(data, str):
        data = data.encode("ascii")
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificate(data).public_bytes(_der_encoding())
    try:
        x509.load_der_x509_certificate(data)
        return data
    except ValueError:
        return base64.b64decode(data)


def _der_encoding() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def _cn(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> Any:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _key_type(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC-{key.curve.name}"
    return type(key).__name__


def signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key issued ``child``."""
    if child.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), child.signature_hash_algorithm)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(child.signature_hash_algorithm))  # type: ignore[arg-type]
        else:
            return False
    except InvalidSignature:
        return False
    return True


def facts(data: bytes | str) -> CertFacts:
    der = load_der(data)
    cert = x509.load_der_x509_certificate(der)
    san = _ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    eku = _ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    basic = _ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    aia = _ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    aki = _ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    ski = _ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    return CertFacts(
        thumbprint=thumbprint_of(der),
        subject=cert.subject.rfc4514_string(),
        subject_cn=_cn(cert.subject),
        issuer=cert.issuer.rfc4514_string(),
        issuer_cn=_cn(cert.issuer),
        sans=tuple(san.get_values_for_type(x509.DNSName)) if san else (),
        ekus=tuple(_EKU_NAMES.get(o.dotted_string, o.dotted_string) for o in eku) if eku else (),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=signed_by(cert, cert),
        is_ca=bool(basic and basic.ca),
        serial=format(cert.serial_number, "X"),
        key_type=_key_type(cert),
        aia_ca_issuers=tuple(
            str(d.access_location.value)
            for d in (aia or [])
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        ),
        authority_key_id=aki.key_identifier.hex().upper() if aki and aki.key_identifier else None,
        subject_key_id=ski.digest.hex().upper() if ski else None,
        crl_urls=tuple(
            str(n.value)
            for point in (_ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS) or [])
            for n in (point.full_name or [])
            if isinstance(n, x509.UniformResourceIdentifier)
        ),
    )


def is_issued_by(child: bytes | str, issuer: bytes | str) -> bool:
    return signed_by(
        x509.load_der_x509_certificate(load_der(child)), x509.load_der_x509_certificate(load_der(issuer))
    )


def certificates_in(data: bytes) -> list[bytes]:
    """Every certificate (DER) in what an AIA URL or an issuer file holds: one DER or PEM certificate, several PEM
    certificates, or a PKCS#7 certs-only bundle (``.p7c``, DER or PEM). Raises ValueError when none is there."""
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    if b"-----BEGIN CERTIFICATE-----" in data:
        return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(data)]
    if b"-----BEGIN PKCS7-----" in data:
        return [c.public_bytes(Encoding.DER) for c in pkcs7.load_pem_pkcs7_certificates(data)]
    try:
        x509.load_der_x509_certificate(data)
        return [data]
    except ValueError:
        pass
    try:
        return [c.public_bytes(Encoding.DER) for c in pkcs7.load_der_pkcs7_certificates(data)]
    except ValueError:
        raise ValueError("neither a certificate nor a PKCS#7 certificate bundle") from None
