"""Windows certificate stores and key providers, as the guest sees them (docs/twin.md, "Windows: certificate
stores and the key provider").

Service Fabric finds its certificates only in ``LocalMachine\\<x509StoreName>`` (cluster-security-certificates);
a VMSS secret lands in ``LocalMachine\\<certificateStore>``; the Key Vault extension installs in
``<certificateStoreLocation>\\<certificateStoreName>`` (key-vault-windows). Windows store names are case-insensitive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..keyvault.models import VaultCertificate
    from .guest import InstalledCert


def sf_store(x509_store_name: str) -> str:
    """Where Service Fabric looks on Windows: ``LocalMachine\\<x509StoreName>`` (cluster-security-certificates)."""
    return f"LocalMachine\\{x509_store_name or 'My'}"


def stores_of(store: list[InstalledCert], matches: Callable[[InstalledCert], bool]) -> str:
    """The stores holding the matching certificates, for messages ('CurrentUser\\MY, LocalMachine\\Root')."""
    return ", ".join(sorted({c.store for c in store if c.store and matches(c)}))


def pfx_provider(certificate: VaultCertificate) -> str:
    """The key provider a Windows import picks: CAPI1 only when the PFX carries a CAPI provider name attribute,
    otherwise CNG (key-vault-windows FAQ, PFXImportCertStore's default). CRP's import of VMSS secrets is not
    documented: the twin assumes the same default (pessimistic: undocumented). Linux has no key providers."""
    return "CNG" if certificate.key_provider == "CNG" else "CAPI"


def elsewhere(store: list[InstalledCert], matches: Callable[[InstalledCert], bool], x509_store_name: str) -> str:
    """The store-mismatch detail of a 'Cannot find certificate' message, when the certificate is in another store."""
    others = stores_of(store, lambda c: matches(c) and not c.in_store(x509_store_name))
    if not others:
        return ""
    return (f" It is installed in {others}; Service Fabric finds certificates only in {sf_store(x509_store_name)} "
            "(store mismatch: x509StoreName, certificateStoreName and certificateStoreLocation must agree).")
