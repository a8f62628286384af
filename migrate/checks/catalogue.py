"""The finding codes: one severity and summary per code (a contract: pipelines and runbooks key on the code)."""

from __future__ import annotations

from ..findings import ERROR, INFO, WARNING, Finding, Severity

# code -> (severity, one-line summary). One severity per code, so a pipeline can key on the code alone.
CATALOGUE: dict[str, tuple[Severity, str]] = {
    # discovery
    "RESOURCE_NOT_FOUND": (ERROR, "a resource the plan names does not exist or is not visible"),
    "PERMISSION_DENIED": (ERROR, "the credential may not read a resource the plan needs"),
    "DISCOVERY_INCOMPLETE": (ERROR, "discovery could not read a resource for another reason"),
    # cluster
    "CLUSTER_UNMANAGEABLE": (ERROR, "clusterState UpgradeServiceUnreachable: SFRP cannot manage the cluster"),
    "CLUSTER_NOT_READY": (ERROR, "the cluster is not Ready/Succeeded, so SFRP refuses an update"),
    "UNSUPPORTED_CLUSTER": (ERROR, "unsecured cluster, or no node types found"),
    "NODE_TYPE_NOT_COVERED": (ERROR, "a cluster node type has no scale set in the plan"),
    "SF_EXTENSION_MISSING": (ERROR, "a scale set has no Service Fabric node extension"),
    "ALREADY_COMMON_NAME": (INFO, "the cluster certificate is already declared by common name"),
    "REVERSE_PROXY_BY_THUMBPRINT": (WARNING, "the reverse proxy certificate stays declared by thumbprint"),
    # goal certificate
    "GOAL_DISABLED": (ERROR, "the goal certificate's latest version is disabled"),
    "GOAL_SELF_SIGNED": (ERROR, "the goal certificate is self-signed"),
    "GOAL_NOT_YET_VALID": (ERROR, "the goal certificate's NotBefore is in the future"),
    "GOAL_EXPIRING": (ERROR, "the goal certificate has expired or expires within checks.expiryWarningDays"),
    # the certificate the cluster declares by thumbprint today (issue 11)
    "OLD_CERT_EXPIRING": (WARNING, "a certificate the cluster declares by thumbprint expires within checks.expiryWarningDays"),
    "OLD_CERT_EXPIRED": (ERROR, "the certificate the cluster declares by thumbprint has expired and the goal is not declared yet"),
    "KEY_NOT_EXPORTABLE": (ERROR, "the goal certificate's key is not exportable"),
    "CN_MISMATCH": (ERROR, "goal.commonName differs from the certificate's subject CN"),
    "SAN_MISSING_CN": (WARNING, "the goal's SANs do not include its subject CN"),
    "CLIENT_AUTH_EKU_MISSING": (WARNING, "the goal certificate lacks the Client Authentication EKU"),
    "GOAL_KEY_CNG_ONLY": (ERROR, "the goal's key type (elliptic curve) needs a CNG provider; Service Fabric supports CAPI1 keys only"),
        "GOAL_NOT_PFX": (WARNING, "the goal certificate is stored as PEM; Windows VMSS secrets need PKCS#12"),
    "SHARED_SUBJECT": (WARNING, "another vault certificate shares the goal's subject CN or a SAN"),
    "NEWER_CERT_SAME_CN": (ERROR, "a certificate on the nodes with the goal's CN is newer than the goal"),
    # issuers
    "ISSUER_NOT_PINNED": (ERROR, "the goal's direct issuer is not in the pinned issuer list"),
    "ISSUER_UNVERIFIED": (WARNING, "the goal's direct issuer is unknown, so pinning cannot be verified"),
    "ISSUER_LIST_INVALID": (ERROR, "an issuer thumbprint list is malformed or has duplicates"),
    "ISSUER_PINNING_DISABLED": (WARNING, "no issuers pinned: validation relies on chain trust"),
    # chain and revocation
    "REVOCATION_UNREACHABLE": (ERROR, "a CRL of the goal's chain cannot be fetched, and fabricSettings do not relax revocation checking"),
    "GOAL_REVOKED": (ERROR, "the goal certificate or a CA of its chain is on its issuer's CRL"),
    "ISSUER_PIN_INCOMPLETE": (ERROR, "another CA certificate with the goal issuer's subject and key is not pinned"),
    # Key Vault VM extension
    "EXTENSION_VERSION_UNSAFE": (ERROR, "Key Vault extension 4.x (always links, CNG keys)"),
    "EXTENSION_AUTO_UPGRADE": (WARNING, "the Key Vault extension may upgrade itself to another version"),
    "KV_EXTENSION_IDENTITY_CONFLICT": (ERROR, "an existing Key Vault extension reads other certificates with another identity"),
    "KV_EXTENSION_CLIENT_ID_STALE": (WARNING, "the Key Vault extension names a client id its identity no longer has (identity recreated)"),
    "LINK_ON_RENEWAL_ENABLED": (ERROR, "linkOnRenewal is on (SAN-based linking has broken clusters)"),
    "INITIAL_SYNC_DISABLED": (WARNING, "requireInitialSync is off"),
    "CERTIFICATE_STORE_MISMATCH": (ERROR, "the Key Vault extension's store is not the LocalMachine store Service Fabric reads (x509StoreName)"),
    "LINUX_DELIVERY_BY_VMSS_SECRET": (WARNING, "a Linux node type keeps the goal as a versioned VMSS secret (no Key Vault extension); renewals are rotations"),
    # vault, identity, rollout
    "VAULT_NOT_ENABLED_FOR_DEPLOYMENT": (WARNING, "the vault is not enabled for deployment but the goal must go in as a VMSS secret"),
    "VAULT_NETWORK_RESTRICTED": (ERROR, "the vault's network rules refuse how a node type fetches the goal (Key Vault extension from its subnet, or VMSS secrets via the trusted service)"),
    "IDENTITY_WILL_BE_CREATED": (INFO, "the user-assigned identity does not exist and will be created"),
    "VAULT_ACCESS_WILL_BE_GRANTED": (INFO, "the identity cannot read the vault's secrets yet; the plan grants it"),
    "MANAGED_IDENTITY_OPERATOR_NEEDED": (INFO, "assigning the identity to scale sets needs Managed Identity Operator"),
    "MANUAL_UPGRADE_POLICY": (INFO, "a scale set has a Manual upgrade policy; sfmigrate rolls instances itself"),
    "INSTANCES_NOT_ON_LATEST_MODEL": (WARNING, "some instances lag their scale set's model; the rollout will apply those changes too"),
    # cleanup
    "OLD_CERTS_REMAIN_ON_NODES": (WARNING, "removing VMSS secrets does not remove certificates from VMs"),
    "OLD_SECRETS_KEPT": (INFO, "old certificates stay referenced as VMSS secrets after conversion"),
}

RUNBOOK_DIR = "findings"


def runbook(code: str) -> str:
    return f"{RUNBOOK_DIR}/{code}.md"


def finding(code: str, message: str, resource_id: str | None, remedy: str) -> Finding:
    severity, _ = CATALOGUE[code]
    return Finding(code=code, severity=severity, message=message, resource_id=resource_id, remedy=remedy, runbook=runbook(code))
