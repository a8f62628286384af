"""Linux guests: where Service Fabric reads certificates, and what the Linux agent (waagent) removes
(docs/twin.md, "Linux node types").

- service-fabric-configure-certificates-linux: Service Fabric on Linux expects its certificates in
  ``/var/lib/sfcerts``; the VMSS secrets waagent delivers land in ``/var/lib/waagent`` as
  ``<THUMBPRINT>.crt``/``<THUMBPRINT>.prv``, the files Service Fabric resolves a declared certificate from.
- microsoft/service-fabric#1308 (open): ``ServiceFabricLinuxNode`` cannot use certificates delivered by
  ``KeyVaultForLinux``; the twin reads that as: the Key Vault extension's PEM files (one per version, in its
  own store folder) are never found by Service Fabric, whatever folder they are written to
  (pessimistic: undocumented).
- Service Fabric Linux Cluster Certificate Rotation and Troubleshooting (Azure/Service-Fabric-Troubleshooting-Guides,
  Security/): waagent removes the certificate files of secrets no longer in the goal state ("incarnation update"),
  so an instance that takes a model without a secret loses that certificate (at its next update, reimage or
  scale-out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .guest import InstalledCert

SF_LINUX_FOLDERS = ("/var/lib/waagent/", "/var/lib/sfcerts/")
KV_NOT_READ_RULE = "LinuxKeyVaultExtensionNotReadBySF"
GOAL_STATE_RULE = "LinuxSecretsFollowGoalState"
CONFIGURE_LINUX_URL = "https://learn.microsoft.com/azure/service-fabric/service-fabric-configure-certificates-linux"
ISSUE_1308_URL = "https://github.com/microsoft/service-fabric/issues/1308"


def sf_reads(cert: InstalledCert) -> bool:
    """Does Service Fabric on Linux find this certificate? Only waagent's files and /var/lib/sfcerts, never the
    Key Vault extension's (microsoft/service-fabric#1308)."""
    return cert.source != "kv-extension" and (cert.path is None or cert.path.startswith(SF_LINUX_FOLDERS))


def hint(store: list[InstalledCert], matches: Callable[[InstalledCert], bool], removed: dict[str, str], wanted: set[str]) -> str:
    """Why a Linux node lacks a certificate, naming the rule: it is only in the Key Vault extension's folder, or
    waagent removed it (or never delivered it) because the model does not carry it as a VMSS secret."""
    parts = []
    kv_paths = sorted({str(c.path) for c in store if matches(c) and c.source == "kv-extension"})
    if kv_paths:
        parts.append(
            f"it is only in {', '.join(kv_paths)} from KeyVaultForLinux, and ServiceFabricLinuxNode reads certificates only "
            f"from waagent's <THUMBPRINT>.crt/.prv files and /var/lib/sfcerts (rule: {KV_NOT_READ_RULE}; {ISSUE_1308_URL})"
        )
    gone = sorted(t for t in wanted if t in removed)
    if gone or (wanted and not kv_paths):
        did = f"waagent removed {', '.join(f'/var/lib/waagent/{t}.crt/.prv' for t in gone)} when the instance took a model without that secret; " if gone else ""
        parts.append(
            f"{did}on Linux a VMSS secret's certificate stays on a node only while the scale set's model delivers it "
            f"(a new or reimaged node gets only the model's secrets) (rule: {GOAL_STATE_RULE})"
        )
    return ("; " + "; ".join(parts)) if parts else ""
