"""Checks of the cluster, its node types and what discovery could not see (SFRP constraints,
install before declaring on every node type: https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn)."""

from __future__ import annotations

from typing import Iterator

from .. import readers
from ..arm_ids import is_type
from ..findings import Finding
from ..readers import COMMON_NAME, UPGRADE_SERVICE_UNREACHABLE
from ..snapshot import NodeTypeView
from .catalogue import finding
from .context import Ctx, goal_cn, issuer_list_problem, major

_NOT_FOUND = {"RESOURCE_NOT_FOUND", "NOT_FOUND", "RESOURCENOTFOUND", "RESOURCEGROUPNOTFOUND", "CERTIFICATENOTFOUND", "404"}
_DENIED = {"PERMISSION_DENIED", "FORBIDDEN", "AUTHORIZATIONFAILED", "AUTHORIZATION_FAILED", "ACCESSDENIED", "403"}


# -- discovery problems -----------------------------------------------------------------------------------
def _plan_field(ctx: Ctx, resource_id: str) -> str:
    rid = resource_id.lower()
    if rid == ctx.spec.cluster.id.lower():
        return "cluster.id"
    if rid.startswith(ctx.spec.goal.vaultId.lower()):
        return "goal.vaultId / goal.certificateName"
    if rid == ctx.spec.identity.id.lower():
        return "identity.id"
    if is_type(resource_id, "Microsoft.Compute/virtualMachineScaleSets"):
        return "nodeTypes"
    return "the resource ids"


def check_problems(ctx: Ctx) -> Iterator[Finding]:
    for problem in ctx.snapshot.problems:
        code = problem.code.upper().replace("-", "_")
        if code in _NOT_FOUND:
            if problem.resource_id.lower() == ctx.spec.identity.id.lower():
                continue  # an absent identity is created (IDENTITY_WILL_BE_CREATED), not an error
            yield finding(
                "RESOURCE_NOT_FOUND",
                f"{problem.resource_id} was not found: {problem.message}",
                problem.resource_id,
                f"Check {_plan_field(ctx, problem.resource_id)} in the plan file, and that the credential's "
                "subscription and cloud are the ones that hold the resource.",
            )
        elif code in _DENIED:
            yield finding(
                "PERMISSION_DENIED",
                f"reading {problem.resource_id} was refused: {problem.message}. sfmigrate must see every resource "
                "the migration touches before it plans (discovery is read-only).",
                problem.resource_id,
                "Grant the credential Reader on the cluster's resource group; on the vault, certificates get/list "
                "(access policy) or a role with Microsoft.KeyVault/vaults/certificates/read (RBAC vault).",
            )
        else:
            yield finding(
                "DISCOVERY_INCOMPLETE",
                f"discovery could not read {problem.resource_id} ({problem.code}): {problem.message}",
                problem.resource_id,
                "Run plan again; if it persists, check the resource in the portal and the credential's access.",
            )


# -- the cluster ----------------------------------------------------------------------------------------
def check_cluster(ctx: Ctx) -> Iterator[Finding]:
    cluster = ctx.snapshot.cluster
    if cluster is None:
        if not ctx.problem_about(ctx.spec.cluster.id):
            yield finding("RESOURCE_NOT_FOUND", f"the cluster {ctx.spec.cluster.id} was not found", ctx.spec.cluster.id,
                          "Check cluster.id in the plan file and the credential's subscription.")
        return
    # https://learn.microsoft.com/azure/templates/microsoft.servicefabric/clusters: UpgradeServiceUnreachable "cannot be managed by the Resource Provider".
    if cluster.cluster_state == UPGRADE_SERVICE_UNREACHABLE:
        yield finding(
            "CLUSTER_UNMANAGEABLE",
            "clusterState is UpgradeServiceUnreachable: the cluster's upgrade service no longer polls SFRP, so no "
            "ARM update can reach the cluster (often an issuer or certificate problem already in effect).",
            cluster.id,
            "Restore the cluster's health first (see the Service Fabric troubleshooting guides for untrusted issuer "
            "thumbprints); open an Azure support case if it does not recover.",
        )
    elif not readers.cluster_accepts_updates(cluster.cluster_state, cluster.provisioning_state):
        # SFRP refuses an update while another is in flight (runbooks/findings/CLUSTER_NOT_READY.md).
        yield finding(
            "CLUSTER_NOT_READY",
            f"clusterState is {cluster.cluster_state} and provisioningState {cluster.provisioning_state}; SFRP accepts "
            "a cluster update only when Ready and Succeeded.",
            cluster.id,
            "Wait for the running upgrade to finish (or fix the failed one), then plan again.",
        )
    if cluster.declaration == "none":
        # Add-AzServiceFabricClusterCertificate refuses unsecured clusters too; unsecured -> X509 is blocked by SFRP.
        yield finding(
            "UNSUPPORTED_CLUSTER",
            "the cluster declares no certificate (unsecured): SFRP cannot change its authentication type by adding a "
            "certificate, and there is no thumbprint declaration to convert.",
            cluster.id,
            "Recreate the cluster secured with a certificate declared by common name; sfmigrate converts secure clusters only.",
        )
    elif cluster.declaration == COMMON_NAME:
        names = ", ".join(c.get("certificateCommonName", "?") for c in cluster.common_names)
        yield finding(
            "ALREADY_COMMON_NAME",
            f"the cluster certificate is already declared by common name ({names}); no conversion upgrade is needed.",
            cluster.id,
            "Nothing to convert; the plan only ensures the Key Vault extension, identity and vault access.",
        )
    if cluster.reverse_proxy_thumbprint:
        # https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn: the conversion changes the cluster certificate only.
        yield finding(
            "REVERSE_PROXY_BY_THUMBPRINT",
            f"the reverse proxy certificate is declared by thumbprint ({cluster.reverse_proxy_thumbprint}); the conversion "
            "leaves it as is, so it will not renew itself and still needs a versioned VMSS secret.",
            cluster.id,
            "Plan a separate change to reverseProxyCertificateCommonNames (an ARM template update) once the cluster is converted.",
        )


def check_existing_issuer_lists(ctx: Ctx) -> Iterator[Finding]:
    """An already-CN cluster: its issuer lists must be valid, and cover the goal's issuer (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn)."""
    cluster = ctx.snapshot.cluster
    if cluster is None or cluster.declaration != COMMON_NAME:
        return
    goal = ctx.snapshot.goal
    for index, entry in enumerate(cluster.common_names):
        listed = entry.get("certificateIssuerThumbprint")
        problem = issuer_list_problem(readers.issuer_list_entries(listed))
        where = f"certificateCommonNames.commonNames[{index}].certificateIssuerThumbprint"
        if problem:
            yield finding(
                "ISSUER_LIST_INVALID",
                f"the cluster's {where} {problem}; SFRP rejects the next update of such a list (InvalidCertificateIssuerThumbprints).",
                cluster.id,
                "Correct the list to comma-separated 40-hex-digit thumbprints without duplicates.",
            )
            continue
        pinned = set(readers.issuer_thumbprints(listed))
        if (goal and goal.issuer and pinned and entry.get("certificateCommonName") == goal_cn(ctx)
                and goal.issuer.thumbprint.upper() not in pinned):
            yield finding(
                "ISSUER_NOT_PINNED",
                f"the cluster already validates '{entry.get('certificateCommonName')}' against pinned issuers "
                f"({', '.join(sorted(pinned))}) that do not include the goal's direct issuer {goal.issuer.thumbprint} "
                f"({goal.issuer.subject}); once the Key Vault extension installs the goal, nodes would present a "
                "certificate their peers reject (issuer pinning: https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
                cluster.id,
                "Add the goal's issuer thumbprint to the cluster's issuer list in its own upgrade before delivering the goal.",
            )


# -- node types -----------------------------------------------------------------------------------------
def _node_type_ref(node_type: NodeTypeView) -> str:
    settings = node_type.sf_extension.settings if node_type.sf_extension else {}
    return str(node_type.node_type_ref or settings.get("nodeTypeRef") or node_type.name)


def check_node_types(ctx: Ctx) -> Iterator[Finding]:
    snapshot, spec = ctx.snapshot, ctx.spec
    cluster = snapshot.cluster
    if isinstance(spec.nodeTypes, list):
        for vmss_id in spec.nodeTypes:
            if snapshot.node_type(vmss_id) is None and not ctx.problem_about(vmss_id):
                yield finding("RESOURCE_NOT_FOUND", f"the scale set {vmss_id} listed in nodeTypes was not found", vmss_id,
                              "Correct nodeTypes in the plan file, or use 'discover'.")
    if cluster is None:
        return
    if not snapshot.node_types:
        yield finding(
            "UNSUPPORTED_CLUSTER",
            "no node types found: no scale set's Service Fabric extension points at this cluster, and both "
            "certificates must be installed on every node type before the declaration changes (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
            cluster.id,
            "List the scale sets in nodeTypes, or check that their ServiceFabricNode extension's clusterEndpoint names this cluster.",
        )
        return
    refs = {_node_type_ref(n).lower() for n in snapshot.node_types}
    for name in cluster.node_type_names:
        if name.lower() not in refs:
            yield finding(
                "NODE_TYPE_NOT_COVERED",
                f"the cluster's node type '{name}' has no scale set in this plan; the certificates must be on every node "
                "type before any declaration changes (install before declaring: https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
                cluster.id,
                "Add that node type's scale set to nodeTypes (or use 'discover'), and make sure the credential can read it.",
            )
    for node_type in snapshot.node_types:
        if node_type.sf_extension is None:
            yield finding(
                "SF_EXTENSION_MISSING",
                f"the scale set {node_type.name} has no ServiceFabricNode/ServiceFabricLinuxNode extension, so it is not a node "
                "type of this cluster and its certificate declaration cannot be converted.",
                node_type.vmss_id,
                "Remove it from nodeTypes.",
            )
        if node_type.upgrade_mode.lower() == "manual":
            yield finding(
                "MANUAL_UPGRADE_POLICY",
                f"{node_type.name} has upgradePolicy Manual: model changes (secrets, extensions) reach instances only when "
                "they are upgraded, so sfmigrate upgrades instances itself, in update-domain order (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq).",
                node_type.vmss_id,
                "Nothing to do; rollout.manualBatchPercent sets the batch size.",
            )
        lagging = [i.name for i in node_type.instances if not i.latest_model_applied]
        if lagging:
            yield finding(
                "INSTANCES_NOT_ON_LATEST_MODEL",
                f"{len(lagging)} instance(s) of {node_type.name} ({', '.join(lagging[:5])}{', ...' if len(lagging) > 5 else ''}) "
                "do not run the scale set's latest model; rolling out the migration also applies those pending changes.",
                node_type.vmss_id,
                "Review and roll out (or revert) the pending model changes before migrating.",
            )
        if node_type.os.lower() == "linux":
            # service-fabric-configure-certificates-linux; microsoft/service-fabric#1308 (KeyVaultForLinux unusable).
            yield finding(
                "LINUX_DELIVERY_BY_VMSS_SECRET",
                f"{node_type.name} runs Linux: ServiceFabricLinuxNode reads waagent's <THUMBPRINT>.crt/.prv files and "
                "/var/lib/sfcerts, not KeyVaultForLinux's files (microsoft/service-fabric#1308), and waagent removes the files "
                "of secrets no longer in the model. sfmigrate keeps the goal's latest version as a versioned VMSS secret and "
                "declares the common name, without the Key Vault extension; after each renewal run sfmigrate plan/apply "
                "again: it rotates the new version in (no cluster upgrade).",
                node_type.vmss_id,
                "Nothing to do now; after every renewal of the goal, run sfmigrate plan and apply (the rotation).",
            )
        yield from _existing_kv_extension(node_type)


def _existing_kv_extension(node_type: NodeTypeView) -> Iterator[Finding]:
    extension = node_type.kv_extension
    if extension is None:
        return
    if major(extension.type_handler_version) >= 4:
        # https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows: 4.0 removes linkOnRenewal ("Linking always occurs") and stores keys with CNG (NTE_BAD_PROV_TYPE).
        yield finding(
            "EXTENSION_VERSION_UNSAFE",
            f"{node_type.name} runs {extension.type} {extension.type_handler_version}: 4.x always links renewals by SAN and "
            "stores private keys with CNG, while Service Fabric supports CAPI1 keys only (NTE_BAD_PROV_TYPE).",
            node_type.vmss_id,
            "Pin typeHandlerVersion to 3.0 (or 1.0) with enableAutomaticUpgrade false; changing the major version means "
            "removing the extension and adding it again.",
        )
    if extension.enable_automatic_upgrade:
        yield finding(
            "EXTENSION_AUTO_UPGRADE",
            f"{node_type.name}'s {extension.type} has enableAutomaticUpgrade true: the platform may move it to a version "
            "(4.x) that always links and uses CNG keys, under a running cluster (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).",
            node_type.vmss_id,
            "Set enableAutomaticUpgrade to false and pin typeHandlerVersion.",
        )
    management = extension.settings.get("secretsManagementSettings") if isinstance(extension.settings, dict) else None
    if node_type.os.lower() != "linux" and isinstance(management, dict) and management.get("linkOnRenewal") is True:
        yield finding(
            "LINK_ON_RENEWAL_ENABLED",
            f"{node_type.name}'s {extension.type} has linkOnRenewal true: renewals are linked by SAN only and S-channel "
            "follows the link regardless of subject or issuer, which has taken clusters down (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management).",
            node_type.vmss_id,
            "Set secretsManagementSettings.linkOnRenewal to false (sfmigrate writes false when it installs the extension).",
        )
