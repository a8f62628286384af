"""The twin's TLS: a CA generated at start, a loopback server certificate, and a CA bundle.

The bundle holds the system CAs plus the twin's CA, so that pointing ``REQUESTS_CA_BUNDLE`` at it keeps
every other HTTPS client in the environment working (docs/twin.md, "Starting it").
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsMaterial:
    ca_file: Path
    bundle_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _system_ca_pem() -> bytes:
    candidates = [
        os.environ.get("SFMIGRATE_SYSTEM_CA_FILE"),
        ssl.get_default_verify_paths().cafile,
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:  # pragma: no cover - certifi ships with requests
        pass
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


# A vault's data plane also answers as ``{vault}.vault.azure.net`` (the name clients build from the cloud's
# keyVaultDns suffix, e.g. `az keyvault certificate show --vault-name`), reached through a proxy that maps the name
# to the vault's port (tests/azcli/vault_proxy.py); only clients that trust this twin's own CA accept it.
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1", "*.vault.azure.net")


def create_tls_material(state_dir: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> TlsMaterial:
    """Generate a CA and a server certificate for ``hosts`` in ``state_dir`` (private key mode 0600)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sfmigrate Azure twin CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=29))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    material = TlsMaterial(
        ca_file=state_dir / "twin-ca.pem",
        bundle_file=state_dir / "ca-bundle.pem",
        cert_file=state_dir / "twin-server.pem",
        key_file=state_dir / "twin-server.key",
    )
    material.ca_file.write_bytes(ca_pem)
    system = _system_ca_pem()
    material.bundle_file.write_bytes(system + (b"\n" if system and not system.endswith(b"\n") else b"") + ca_pem)
    material.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    key_bytes = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(material.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    return material
