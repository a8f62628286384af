"""Checks of the Key Vault extension settings, the vault, the identity and cleanup (Key Vault VM extension:
https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows; VMSS secrets: https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq)."""

from __future__ import annotations

from typing import Iterator

from .. import readers
from ..findings import Finding
from ..readers import THUMBPRINT
from ..vault_access import reads_secrets
from .catalogue import finding
from .context import Ctx, known_by_url, major

# Built-in roles whose data actions include reading secret values ("Key Vault Secrets User": https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).


# -- the plan file's extension settings -----------------------------------------------------------------
def check_extension_spec(ctx: Ctx) -> Iterator[Finding]:
    kv = ctx.spec.keyVaultExtension
    oses = ctx.oses()
    for os_name, field, version in (("windows", "windowsVersion", kv.windowsVersion), ("linux", "linuxVersion", kv.linuxVersion)):
        if os_name in oses and major(version) >= 4:
            yield finding(
                "EXTENSION_VERSION_UNSAFE",
                f"keyVaultExtension.{field} is {version}: 4.x always links renewals and stores keys with CNG, which Service "
                "Fabric does not support (CAPI1 only; https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).",
                ctx.cluster_id,
                f"Set keyVaultExtension.{field} to '3.0' (or '1.0').",
            )
    if kv.linkOnRenewal and "windows" in oses:
        yield finding(
            "LINK_ON_RENEWAL_ENABLED",
            "keyVaultExtension.linkOnRenewal is true: SAN-based linking has caused hard-to-diagnose outages, and the "
            "Service Fabric documentation sets it to false (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
            ctx.cluster_id,
            "Set keyVaultExtension.linkOnRenewal: false.",
        )
    if not kv.requireInitialSync:
        yield finding(
            "INITIAL_SYNC_DISABLED",
            "keyVaultExtension.requireInitialSync is false: the Service Fabric extension may start on a new or reimaged "
            "node before the certificate is installed (requireInitialSync with provisionAfterExtensions: https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
            ctx.cluster_id,
            "Set keyVaultExtension.requireInitialSync: true.",
        )


def _sf_store_names(settings: dict[str, object]) -> list[str]:
    """The x509StoreName of the Service Fabric extension's certificate and certificateSecondary."""
    names = []
    for key in ("certificate", "certificateSecondary"):
        declared = settings.get(key)
        if isinstance(declared, dict):
            names.append(str(declared.get("x509StoreName") or "My"))
    return names


def check_certificate_stores(ctx: Ctx) -> Iterator[Finding]:
    """Windows: the Key Vault extension installs in certificateStoreLocation\\certificateStoreName (key-vault-windows),
    Service Fabric finds cluster certificates only in LocalMachine\\<x509StoreName> (cluster-security-certificates).
    Store names are case-insensitive on Windows. Linux node types ignore these settings."""
    kv = ctx.spec.keyVaultExtension
    windows = [n for n in ctx.snapshot.node_types if n.os.lower() == "windows"]
    if not windows:
        return
    remedy = "Set keyVaultExtension.certificateStoreLocation: LocalMachine and certificateStoreName to the x509StoreName " \
             "the cluster and the Service Fabric extensions declare (usually My); see runbooks/findings/CERTIFICATE_STORE_MISMATCH.md."
    if kv.certificateStoreLocation != "LocalMachine":
        yield finding(
            "CERTIFICATE_STORE_MISMATCH",
            f"keyVaultExtension.certificateStoreLocation is {kv.certificateStoreLocation}: the Key Vault extension would install "
            f"the goal in {kv.certificateStoreLocation}\\{kv.certificateStoreName}, and Service Fabric finds cluster certificates only "
            "in LocalMachine\\<x509StoreName>, so no node could find the goal once the cluster declares it.",
            ctx.cluster_id, remedy,
        )
    wanted = kv.certificateStoreName
    cluster = ctx.snapshot.cluster
    if cluster is not None and cluster.x509_store_name.lower() != wanted.lower():
        yield finding(
            "CERTIFICATE_STORE_MISMATCH",
            f"keyVaultExtension.certificateStoreName is {wanted} but the cluster declares x509StoreName {cluster.x509_store_name}: "
            f"the nodes would look for the goal in LocalMachine\\{cluster.x509_store_name}, where the Key Vault extension does not put it.",
            cluster.id, remedy,
        )
    for node_type in windows:
        sf = node_type.sf_extension
        for name in sorted({n for n in _sf_store_names(sf.settings) if n.lower() != wanted.lower()} if sf else set()):
            yield finding(
                "CERTIFICATE_STORE_MISMATCH",
                f"keyVaultExtension.certificateStoreName is {wanted} but {node_type.name}'s Service Fabric extension declares "
                f"x509StoreName {name}: it would not find the goal in LocalMachine\\{name}, and new or reimaged nodes could not join.",
                node_type.vmss_id, remedy,
            )


# -- vault, identity ------------------------------------------------------------------------------------
def _goal_secret_needed(ctx: Ctx) -> bool:
    """Does the plan have to add the goal as a VMSS secret (to declare it by thumbprint first: https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn)?"""
    snapshot, goal = ctx.snapshot, ctx.snapshot.goal
    if goal is None or snapshot.cluster is None or snapshot.cluster.declaration != THUMBPRINT:
        return False
    for node_type in snapshot.node_types:
        urls = {s.certificate_url.rstrip("/").lower() for s in node_type.secrets}
        if goal.secret_id.rstrip("/").lower() in urls:
            continue
        if not any((k := known_by_url(snapshot, u)) and k.thumbprint == goal.facts.thumbprint for u in urls):
            return True
    return False


def check_vault(ctx: Ctx) -> Iterator[Finding]:
    vault = ctx.snapshot.vault
    if vault is None:
        if not ctx.problem_about(ctx.spec.goal.vaultId):
            yield finding("RESOURCE_NOT_FOUND", f"the vault {ctx.spec.goal.vaultId} was not found", ctx.spec.goal.vaultId,
                          "Check goal.vaultId in the plan file.")
        return
    if _goal_secret_needed(ctx) and not vault.enabled_for_deployment:
        # runbooks/findings/VAULT_NOT_ENABLED_FOR_DEPLOYMENT.md: CRP fetches osProfile.secrets with its first-party identity, which needs enabledForDeployment.
        yield finding("VAULT_NOT_ENABLED_FOR_DEPLOYMENT", f"the goal must first reach the nodes as a versioned VMSS secret, which "
                      f"Compute fetches only from vaults enabled for deployment; {vault.name} is not, so the plan turns "
                      "enabledForDeployment on. That is a vault-wide setting: any VM deployment that references this vault "
                      "can then receive its certificates.", vault.id,
                      f"Review it; enable it yourself (az keyvault update --name {vault.name} --enabled-for-deployment true) "
                      "or keep the goal in a vault dedicated to the cluster.")


def _identity_can_read(ctx: Ctx) -> bool:
    vault, identity = ctx.snapshot.vault, ctx.snapshot.identity
    if vault is None or identity is None or not identity.exists or not identity.principal_id:
        return False
    return reads_secrets(
        rbac=vault.rbac, vault_id=vault.id, principal_id=identity.principal_id, access_policies=vault.access_policies,
        assignments=[(a.scope, a.role_definition_id, a.principal_id) for a in ctx.snapshot.vault_role_assignments],
    )


def check_identity(ctx: Ctx) -> Iterator[Finding]:
    snapshot, spec = ctx.snapshot, ctx.spec
    identity_id = spec.identity.id
    if snapshot.node_types and all(n.os.lower() == "linux" for n in snapshot.node_types):
        return  # Linux node types go without the Key Vault extension, so the plan uses no identity (LINUX_DELIVERY_BY_VMSS_SECRET)
    if snapshot.identity is None or not snapshot.identity.exists:
        yield finding("IDENTITY_WILL_BE_CREATED", f"the user-assigned identity {identity_id} does not exist; the plan creates it "
                      "(a user-assigned identity avoids the system-assigned deadlock with vault access; https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).",
                      identity_id, "Nothing to do, or create it yourself and plan again; the credential needs Managed Identity Contributor on its resource group.")
    if snapshot.vault and not _identity_can_read(ctx):
        how = ("the 'Key Vault Secrets User' role on the vault (the credential needs Microsoft.Authorization/roleAssignments/write, "
               "e.g. Role Based Access Control Administrator)") if snapshot.vault.rbac else \
              "an access policy with secrets get and list (the credential needs Microsoft.KeyVault/vaults/accessPolicies/write)"
        yield finding("VAULT_ACCESS_WILL_BE_GRANTED", f"the identity cannot read secrets in {snapshot.vault.name} yet; the Key Vault "
                      f"extension needs it, so the plan grants {how}.", snapshot.vault.id,
                      "Nothing to do if the credential has that permission; otherwise grant it first.")
    yield from _extension_identity_conflicts(ctx)
    yield from _stale_client_ids(ctx)
    missing = [n.name for n in snapshot.node_types if n.os.lower() != "linux"
               and identity_id.lower() not in {i.lower() for i in n.user_assigned_identities}]
    if missing:
        yield finding("MANAGED_IDENTITY_OPERATOR_NEEDED", f"the plan assigns the identity to {', '.join(missing)}; that needs "
                      "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action (the Managed Identity Operator role) on the "
                      "identity, besides Contributor on the scale sets (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management).", identity_id,
                      "Grant the credential Managed Identity Operator on the identity (or its resource group).")


def _extension_identity_conflicts(ctx: Ctx) -> Iterator[Finding]:
    """The migration points an existing Key Vault extension at the plan's identity: if that extension also
    reads other certificates with another identity, they would fail on every node (and, with
    requireInitialSync, the Service Fabric extension could not provision on new nodes)."""
    snapshot, spec = ctx.snapshot, ctx.spec
    plan_client = snapshot.identity.client_id if snapshot.identity and snapshot.identity.exists else None
    goal_url = snapshot.goal.versionless_secret_url.rstrip("/").lower() if snapshot.goal else ""
    for node_type in snapshot.node_types:
        kv = node_type.kv_extension
        if kv is None:
            continue
        client = readers.msi_client_id(kv.settings)
        urls = readers.observed_certificate_urls(kv.settings)
        others = [u for u in urls if u.rstrip("/").lower() != goal_url]
        if client and others and (plan_client is None or client.lower() != plan_client.lower()):
            yield finding(
                "KV_EXTENSION_IDENTITY_CONFLICT",
                f"{node_type.name}'s Key Vault extension already reads {', '.join(others)} as identity client id {client}; "
                f"the plan would switch it to {spec.identity.id}, which may not read those, and the extension would fail "
                "on every node (with requireInitialSync, new nodes could not join).",
                node_type.vmss_id,
                f"Set identity.id to the identity whose client id is {client} (the plan grants it the goal's vault), "
                "or move the other certificates to it first.",
            )


def _stale_client_ids(ctx: Ctx) -> Iterator[Finding]:
    """A scale set lists the plan's identity, but its Key Vault extension authenticates with another client id: the
    identity was deleted and created again, which gives it new client and principal ids. IMDS refuses the old client
    id, so renewals no longer reach the nodes and a new or reimaged node cannot join; the plan repairs it."""
    identity = ctx.snapshot.identity
    if identity is None or not identity.exists or not identity.client_id:
        return
    for node_type in ctx.snapshot.node_types:
        kv = node_type.kv_extension
        client = readers.msi_client_id(kv.settings) if kv else ""
        assigned = {i.lower() for i in node_type.user_assigned_identities}
        if not client or client.lower() == identity.client_id.lower() or ctx.spec.identity.id.lower() not in assigned:
            continue
        if any(client.lower() == (other or "").lower() for other in _other_client_ids(ctx, node_type.vmss_id)):
            continue  # another identity of the scale set: KV_EXTENSION_IDENTITY_CONFLICT's case, not a recreated one
        yield finding(
            "KV_EXTENSION_CLIENT_ID_STALE",
            f"{node_type.name}'s Key Vault extension authenticates with client id {client}, but {ctx.spec.identity.id} now has "
            f"client id {identity.client_id}: the identity was deleted and created again, which gives it new ids. IMDS refuses "
            "the old one, so renewals no longer reach these nodes and a new or reimaged node cannot join. The plan sets "
            "msiClientId to the new client id and grants the new principal read access to the vault.",
            node_type.vmss_id,
            "Review and apply the plan; avoid deleting identities a scale set uses (runbooks/findings/KV_EXTENSION_CLIENT_ID_STALE.md).",
        )


def _other_client_ids(ctx: Ctx, vmss_id: str) -> list[str]:
    """Client ids of the scale set's other user-assigned identities, as its GET reports them."""
    node_type = next((n for n in ctx.snapshot.node_types if n.vmss_id == vmss_id), None)
    identities = ((node_type.raw.get("identity") or {}).get("userAssignedIdentities") or {}) if node_type else {}
    return [str((value or {}).get("clientId") or "") for key, value in identities.items()
            if key.lower() != ctx.spec.identity.id.lower() and isinstance(value, dict)]


# -- cleanup --------------------------------------------------------------------------------------------
def check_cleanup(ctx: Ctx) -> Iterator[Finding]:
    goal = ctx.snapshot.goal
    goal_url = goal.secret_id.rstrip("/").lower() if goal else None
    old = [(n, s) for n in ctx.snapshot.node_types for s in n.secrets if s.certificate_url.rstrip("/").lower() != goal_url]
    if not old:
        return
    names = sorted({n.name for n, _ in old})
    if ctx.spec.cleanup.removeOldSecrets:
        # https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq: "This does not remove the certificate from all your VMs."
        yield finding("OLD_CERTS_REMAIN_ON_NODES", f"cleanup.removeOldSecrets removes {len(old)} old VMSS secret(s) from "
                      f"{', '.join(names)}, but that does not remove the certificates from existing VMs: they stay in the "
                      "stores until removed in the guest or the VMs are reimaged.", ctx.cluster_id,
                      "After the run, remove them in the guest (e.g. a Custom Script Extension) or reimage node by node.")
    else:
        yield finding("OLD_SECRETS_KEPT", f"{len(old)} old VMSS secret(s) on {', '.join(names)} stay referenced after the "
                      "conversion (cleanup.removeOldSecrets is false); deleting or disabling those vault secrets later would "
                      "fail scale set deployments (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management).", ctx.cluster_id,
                      "Set cleanup.removeOldSecrets: true before applying (it removes the secrets of the certificates the cluster declares "
                      "by thumbprint now, after the conversion; a resumed run keeps it); once converted, remove them by hand "
                      "(runbooks/steps/cleanup-secrets.md).")
