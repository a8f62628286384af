"""Key Vault certificate writes: import, create, update of a version's attributes, and the pending operation of a
create (docs/twin.md, "Key Vault certificate writes"; https://learn.microsoft.com/en-us/rest/api/keyvault/certificates/).

- Import (``POST /certificates/{n}/import``): a PKCS#12 (base64, with ``pwd``) or PEM (policy content type
  ``application/x-pem-file``) that carries its private key becomes a new version; without a key it is refused,
  as Key Vault does. A policy in the request replaces the certificate's (key export, content type, issuer).
- Create (``POST /certificates/{n}/create``, 202): policy issuer ``Self`` issues a self-signed version at once;
  ``Unknown`` leaves a pending operation holding a CSR (the key stays in the vault) until a merge of the signed
  certificate; a named CA issuer stays pending (pessimistic: the twin has no CA integration). A create while a
  request is pending is a 409 (Key Vault's answer, azure-sdk-for-python#13289).
- Update (``PATCH /certificates/{n}/{version}``): ``attributes`` (enabled, nbf, exp) and ``tags``.

A new version reaches nodes as a control-API renewal does: the Key Vault VM extension installs the latest at its
next poll. Key properties belong to a version: a policy making keys exportable never exposes an older version's key.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ...pki import Issued
from ...resources import new_guid
from ...wire import TwinError, bad_request
from .models import PEM, PKCS12, CertificateVersion, Vault, VaultCertificate

if TYPE_CHECKING:
    from ...world import World

EKU_NAMES = {"1.3.6.1.5.5.7.3.1": "serverAuth", "1.3.6.1.5.5.7.3.2": "clientAuth"}
PENDING_DETAILS = ("Pending certificate created. Certificate request is in progress. This may take some time based on "
                   "the issuer provider. Please check again later.")


@dataclass
class PendingCertificate:
    """A create waiting for its certificate (issuer Unknown: a merge; a named CA: the CA)."""

    name: str
    request_id: str
    issuer: str
    key: rsa.RSAPrivateKey
    csr: bytes
    policy: dict[str, Any]
    enabled: bool = True
    status: str = "inProgress"


def _bad(message: str) -> TwinError:
    return bad_request(message, "BadParameter")


def _policy_settings(policy: dict[str, Any] | None) -> dict[str, Any]:
    """What the twin keeps of a policy: key export, secret content type, issuer name."""
    settings: dict[str, Any] = {}
    if not policy:
        return settings
    key_props, secret_props = policy.get("key_props") or {}, policy.get("secret_props") or {}
    if isinstance(key_props.get("exportable"), bool):
        settings["exportable"] = key_props["exportable"]
    if secret_props.get("contentType"):
        if secret_props["contentType"] not in (PKCS12, PEM):
            raise _bad(f"Content type '{secret_props['contentType']}' is not supported; use {PKCS12} or {PEM}.")
        settings["content_type"] = secret_props["contentType"]
    if (policy.get("issuer") or {}).get("name"):
        settings["issuer_name"] = policy["issuer"]["name"]
    return settings


def _add_version(world: World, vault: Vault, name: str, issued: Issued, policy: dict[str, Any] | None,
                 attributes: dict[str, Any] | None, tags: dict[str, str] | None) -> tuple[VaultCertificate, CertificateVersion]:
    settings = _policy_settings(policy)
    existing = vault.certificates.get(name.lower())
    if existing is not None:
        for older in existing.versions:  # key properties stay with the versions they were made with
            if older.exportable is None:
                older.exportable = existing.exportable
    version = world.keyvault.add_version(vault, name, issued, **settings)
    certificate = vault.certificate(name)
    for key, value in settings.items():
        setattr(certificate, key, value)
    version.exportable = certificate.exportable
    update_attributes(version, attributes)
    if tags is not None:
        certificate.tags = dict(tags)
    return certificate, version


def update_attributes(version: CertificateVersion, attributes: dict[str, Any] | None) -> None:
    """``enabled`` turns a version on or off; ``nbf``/``exp`` are kept as the attributes show them (the spec lets a
    client set them; the X.509 validity the nodes see does not change)."""
    attributes = attributes or {}
    if isinstance(attributes.get("enabled"), bool):
        version.enabled = attributes["enabled"]
    for key in ("nbf", "exp"):
        if isinstance(attributes.get(key), int):
            version.attribute_overrides[key] = attributes[key]


def _issued_from(world: World, cert: x509.Certificate, key: Any, name: str) -> Issued:
    """The imported certificate in the twin's PKI: its issuer is the twin authority that signed it, if any."""
    known = world.pki.issued_by_thumbprint(cert.fingerprint(hashes.SHA1()).hex().upper())
    if known is not None and known.cert == cert:
        return known
    issuer = None
    for authority in world.pki.authorities.values():
        if authority.cert.subject == cert.issuer:
            try:
                cert.verify_directly_issued_by(authority.cert)
            except (ValueError, TypeError, Exception):
                continue
            issuer = authority
            break
    issued = Issued(name, cert, cast(rsa.RSAPrivateKey, key), issuer)
    world.pki.issued.append(issued)
    return issued


def _read(value: str, password: str | None, content_type: str) -> tuple[x509.Certificate, Any]:
    if content_type == PEM:
        text = value.encode()
        try:
            certs = x509.load_pem_x509_certificates(text)
        except ValueError as exc:
            raise _bad("The specified PEM X.509 certificate content is in an unexpected format. Please check if "
                       "certificate is in valid PEM format.") from exc
        try:
            key = serialization.load_pem_private_key(text, password.encode() if password else None)
        except (ValueError, TypeError) as exc:
            raise _bad("Private key is not specified in the specified X.509 PEM certificate content. Please specify "
                       "private key in the X.509 PEM certificate content.") from exc
        return certs[0], key
    try:
        blob = base64.b64decode(value, validate=False)
        loaded_key, cert, _ = pkcs12.load_key_and_certificates(blob, password.encode() if password else None)
    except ValueError as exc:
        raise _bad("The specified PKCS#12 X.509 certificate content can not be read. Please check if certificate "
                   "is in valid PKCS#12 format.") from exc
    if cert is None or loaded_key is None:
        raise _bad("The specified PKCS#12 X.509 certificate content does not contain a private key; Key Vault "
                   "imports certificates with their private key.")
    return cert, loaded_key


def import_certificate(world: World, vault: Vault, name: str, body: dict[str, Any]) -> tuple[VaultCertificate, CertificateVersion]:
    value = body.get("value")
    if not isinstance(value, str) or not value:
        raise _bad("The property 'value' is required: the certificate to import.")
    existing = vault.certificates.get(name.lower())
    settings = _policy_settings(body.get("policy"))
    content_type = settings.get("content_type") or (existing.content_type if existing else PKCS12)
    cert, key = _read(value, body.get("pwd"), content_type)
    issued = _issued_from(world, cert, key, f"{vault.name}/{name}@import")
    return _add_version(world, vault, name, issued, body.get("policy"), body.get("attributes"), body.get("tags"))


def _subject_cn(policy: dict[str, Any]) -> str:
    subject = str((policy.get("x509_props") or {}).get("subject") or "")
    parts = dict(p.strip().split("=", 1) for p in subject.split(",") if "=" in p)
    common_name = parts.get("CN", "").strip()
    if not common_name:
        raise _bad("The policy's x509_props.subject must name a CN (for example 'CN=contoso.com').")
    return common_name


def create_certificate(world: World, vault: Vault, name: str, body: dict[str, Any]) -> PendingCertificate:
    pending = vault.pending_certificates.get(name.lower())
    if pending is not None and pending.status == "inProgress":
        raise TwinError(409, "Conflict", f"There was a conflict while creating certificate '{vault.uri}certificates/{name}'. "
                        "A certificate operation is pending: merge or delete it first.")
    existing = vault.certificates.get(name.lower())
    policy = body.get("policy")
    if not policy:
        if existing is None:
            raise _bad(f"Policy is required to create the new certificate '{name}'.")
        from .dataplane import policy_body

        policy = policy_body(vault, existing)
    issuer = str((policy.get("issuer") or {}).get("name") or (existing.issuer_name if existing else "Unknown"))
    common_name = _subject_cn(policy)
    x509_props = policy.get("x509_props") or {}
    sans = list(((x509_props.get("sans") or {}).get("dns_names")) or [])
    ekus = [EKU_NAMES.get(e, e) for e in x509_props.get("ekus") or ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]]
    months = int(x509_props.get("validity_months") or 12)
    attributes = body.get("attributes") or {}
    if issuer.lower() == "self":  # Key Vault signs it itself, at once
        now = world.now()
        issued = world.pki.issue_leaf(f"{vault.name}/{name}@create", common_name, now, now + dt.timedelta(days=30 * months),
                                      issuer=None, sans=sans or [common_name], ekus=[e for e in ekus if e in ("serverAuth", "clientAuth")])
        _add_version(world, vault, name, issued, policy, attributes, body.get("tags"))
        operation = PendingCertificate(name, new_guid().replace("-", ""), "Self", issued.key, b"", policy, status="completed")
    else:
        key = world.pki._key()
        builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in sans]), critical=False)
        csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        enabled = bool(attributes["enabled"]) if isinstance(attributes.get("enabled"), bool) else True
        operation = PendingCertificate(name, new_guid().replace("-", ""), issuer, key, csr, policy, enabled)
    vault.pending_certificates[name.lower()] = operation
    return operation


def pending(vault: Vault, name: str) -> PendingCertificate:
    found = vault.pending_certificates.get(name.lower())
    if not isinstance(found, PendingCertificate):
        raise TwinError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
    return found


def merge(world: World, vault: Vault, name: str, body: dict[str, Any]) -> tuple[VaultCertificate, CertificateVersion]:
    """``pending/merge``: the CA-signed certificate for the pending key becomes the new version."""
    operation = pending(vault, name)
    chain = body.get("x5c")
    if operation.status != "inProgress" or not isinstance(chain, list) or not chain:
        raise _bad("The property 'x5c' must hold the signed certificate for a pending request.")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(str(chain[0])))
    except ValueError as exc:
        raise _bad("The x5c certificate can not be read.") from exc
    if cert.public_key().public_numbers() != operation.key.public_key().public_numbers():  # type: ignore[union-attr]
        raise _bad("Public key from x509 certificate and key of this instance doesn't match.")
    issued = _issued_from(world, cert, operation.key, f"{vault.name}/{name}@merge")
    attributes = {"enabled": operation.enabled, **(body.get("attributes") or {})}
    result = _add_version(world, vault, name, issued, operation.policy, attributes, body.get("tags"))
    operation.status = "completed"
    return result


def operation_body(vault: Vault, operation: PendingCertificate, initial: bool = False) -> dict[str, Any]:
    """CertificateOperation (Key Vault 7.5). A create's own answer always says ``inProgress`` (as Key Vault's
    does, even for a self-signed certificate it issues in moments); the pending operation then says ``completed``."""
    status = "inProgress" if initial else operation.status
    body: dict[str, Any] = {
        "id": f"{vault.uri}certificates/{operation.name}/pending",
        "issuer": {"name": operation.issuer},
        "cancellation_requested": False,
        "status": status,
        "request_id": operation.request_id,
    }
    if operation.csr:
        body["csr"] = base64.b64encode(operation.csr).decode("ascii")
    if status == "inProgress":
        body["status_details"] = PENDING_DETAILS
    else:
        body["target"] = f"{vault.uri}certificates/{operation.name}"
    return body
