"""The twin's own reading of a certificate it issued: thumbprint, names, EKUs, validity.

The twin keeps its own copy of every rule it enforces (it never imports the product it judges), so this
is deliberately separate from sfmigrate's ``migrate.x509``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_AUTH = "serverAuth"
CLIENT_AUTH = "clientAuth"
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: SERVER_AUTH,
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: CLIENT_AUTH,
}


@dataclass(frozen=True)
class CertInfo:
    thumbprint: str  # SHA-1 of the DER, upper-case hex (as Azure shows it)
    subject: str
    subject_cn: str | None
    issuer_cn: str | None
    sans: tuple[str, ...]
    ekus: tuple[str, ...]  # "serverAuth", "clientAuth" or dotted OIDs; empty = no EKU extension
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def has_client_auth(self) -> bool:
        """No EKU extension means any use (RFC 5280 §4.2.1.12)."""
        return not self.ekus or CLIENT_AUTH in self.ekus


def cert_info(cert: x509.Certificate) -> CertInfo:
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        sans: tuple[str, ...] = tuple(
            cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        sans = ()
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ekus: tuple[str, ...] = tuple(_EKU_NAMES.get(o.dotted_string, o.dotted_string) for o in usages)
    except x509.ExtensionNotFound:
        ekus = ()
    return CertInfo(
        thumbprint=hashlib.sha1(der).hexdigest().upper(),  # noqa: S324 - the thumbprint is defined as SHA-1
        subject=cert.subject.rfc4514_string(),
        subject_cn=_cn(cert.subject),
        issuer_cn=_cn(cert.issuer),
        sans=sans,
        ekus=ekus,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def _cn(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
