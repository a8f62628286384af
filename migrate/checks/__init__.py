"""Preflight checks: pure functions from (snapshot, plan file, now) to findings. No I/O.

Every finding has a stable ``code`` (a contract: pipelines and runbooks key on it), one severity per code
(``error`` blocks apply), a message saying what and why with the rule it rests on, the resource it is
about, a remedy, and a runbook page ``findings/<CODE>.md``. :data:`CATALOGUE` lists every code.

Rules cite ``DESIGN §2`` and ``research/sf_migration.md`` (``research §x``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .findings import ERROR, INFO, WARNING, Finding, sort_findings
from .snapshot import COMMON_NAME, THUMBPRINT, KnownCertificate, NodeTypeView, Snapshot
from .spec import PlanSpec
from .x509 import CertFacts, normalise_thumbprint

# code -> (severity, one-line summary). One severity per code, so a pipeline can key on the code alone.
CATALOGUE: dict[str, tuple[str, str]] = {
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
    "KEY_NOT_EXPORTABLE": (ERROR, "the goal certificate's key is not exportable"),
    "CN_MISMATCH": (ERROR, "goal.commonName differs from the certificate's subject CN"),
    "SAN_MISSING_CN": (WARNING, "the goal's SANs do not include its subject CN"),
    "CLIENT_AUTH_EKU_MISSING": (WARNING, "the goal certificate lacks the Client Authentication EKU"),
    "GOAL_NOT_PFX": (WARNING, "the goal certificate is stored as PEM; Windows VMSS secrets need PKCS#12"),
    "SHARED_SUBJECT": (WARNING, "another vault certificate shares the goal's subject CN or a SAN"),
    "NEWER_CERT_SAME_CN": (ERROR, "a certificate on the nodes with the goal's CN is newer than the goal"),
    # issuers
    "ISSUER_NOT_PINNED": (ERROR, "the goal's direct issuer is not in the pinned issuer list"),
    "ISSUER_UNVERIFIED": (WARNING, "the goal's direct issuer is unknown, so pinning cannot be verified"),
    "ISSUER_LIST_INVALID": (ERROR, "an issuer thumbprint list is malformed or has duplicates"),
    "ISSUER_PINNING_DISABLED": (WARNING, "no issuers pinned: validation relies on chain trust"),
    # Key Vault VM extension
    "EXTENSION_VERSION_UNSAFE": (ERROR, "Key Vault extension 4.x (always links, CNG keys)"),
    "EXTENSION_AUTO_UPGRADE": (WARNING, "the Key Vault extension may upgrade itself to another version"),
    "LINK_ON_RENEWAL_ENABLED": (ERROR, "linkOnRenewal is on (SAN-based linking has broken clusters)"),
    "INITIAL_SYNC_DISABLED": (WARNING, "requireInitialSync is off"),
    "LINUX_SUPPORT_UNCONFIRMED": (WARNING, "common-name clusters on Linux with the Key Vault extension are unconfirmed"),
    # vault, identity, rollout
    "VAULT_NOT_ENABLED_FOR_DEPLOYMENT": (WARNING, "the vault is not enabled for deployment but the goal must go in as a VMSS secret"),
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
UPGRADE_SERVICE_UNREACHABLE = "UpgradeServiceUnreachable"
# Built-in roles whose data actions include reading secret values (research §3.2: "Key Vault Secrets User").
SECRET_READER_ROLES = {
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}
_NOT_FOUND = {"RESOURCE_NOT_FOUND", "NOT_FOUND", "RESOURCENOTFOUND", "RESOURCEGROUPNOTFOUND", "CERTIFICATENOTFOUND", "404"}
_DENIED = {"PERMISSION_DENIED", "FORBIDDEN", "AUTHORIZATIONFAILED", "AUTHORIZATION_FAILED", "ACCESSDENIED", "403"}
_PEM = "application/x-pem-file"


def runbook(code: str) -> str:
    return f"{RUNBOOK_DIR}/{code}.md"


def finding(code: str, message: str, resource_id: str | None, remedy: str) -> Finding:
    severity, _ = CATALOGUE[code]
    return Finding(code=code, severity=severity, message=message, resource_id=resource_id, remedy=remedy, runbook=runbook(code))


@dataclass(frozen=True)
class _Ctx:
    snapshot: Snapshot
    spec: PlanSpec
    now: dt.datetime

    @property
    def goal_id(self) -> str:
        return f"{self.spec.goal.vaultId}/certificates/{self.spec.goal.certificateName}"

    @property
    def cluster_id(self) -> str:
        return self.snapshot.cluster.id if self.snapshot.cluster else self.spec.cluster.id

    def problem_about(self, resource_id: str) -> bool:
        """Did discovery already report a problem with this resource (or a parent of it)?"""
        wanted = resource_id.lower()
        return any(p.resource_id.lower() == wanted or wanted.startswith(p.resource_id.lower().rstrip("/") + "/")
                   for p in self.snapshot.problems)

    def problem_about_goal(self) -> bool:
        """Also counts data-plane problems (https://<vault>.vault.../certificates/<name>) with the goal."""
        vault_name = self.spec.goal.vaultId.rstrip("/").split("/")[-1].lower()
        return self.problem_about(self.goal_id) or any(
            f"//{vault_name}." in p.resource_id.lower() for p in self.snapshot.problems
        )

    def oses(self) -> set[str]:
        """The operating systems of the node types (both when none were found: check every setting)."""
        found = {n.os.lower() for n in self.snapshot.node_types}
        return found or {"windows", "linux"}


Check = Callable[[_Ctx], Iterable[Finding]]


def run_checks(snapshot: Snapshot, spec: PlanSpec, now: dt.datetime) -> list[Finding]:
    """Every finding for this snapshot and plan file, sorted (errors first) and de-duplicated."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    ctx = _Ctx(snapshot, spec, now)
    out: list[Finding] = []
    for check in CHECKS:
        for item in check(ctx):
            if item not in out:
                out.append(item)
    return sort_findings(out)


# -- discovery problems -----------------------------------------------------------------------------------
def _plan_field(ctx: _Ctx, resource_id: str) -> str:
    rid = resource_id.lower()
    if rid == ctx.spec.cluster.id.lower():
        return "cluster.id"
    if rid.startswith(ctx.spec.goal.vaultId.lower()):
        return "goal.vaultId / goal.certificateName"
    if rid == ctx.spec.identity.id.lower():
        return "identity.id"
    if "/microsoft.compute/virtualmachinescalesets/" in rid:
        return "nodeTypes"
    return "the plan file"


def check_problems(ctx: _Ctx) -> Iterator[Finding]:
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
def check_cluster(ctx: _Ctx) -> Iterator[Finding]:
    cluster = ctx.snapshot.cluster
    if cluster is None:
        if not ctx.problem_about(ctx.spec.cluster.id):
            yield finding("RESOURCE_NOT_FOUND", f"the cluster {ctx.spec.cluster.id} was not found", ctx.spec.cluster.id,
                          "Check cluster.id in the plan file and the credential's subscription.")
        return
    # DESIGN §2 / research §2.1, §7.4: UpgradeServiceUnreachable "cannot be managed by the Resource Provider".
    if cluster.cluster_state == UPGRADE_SERVICE_UNREACHABLE:
        yield finding(
            "CLUSTER_UNMANAGEABLE",
            "clusterState is UpgradeServiceUnreachable: the cluster's upgrade service no longer polls SFRP, so no "
            "ARM update can reach the cluster (often an issuer or certificate problem already in effect).",
            cluster.id,
            "Restore the cluster's health first (see the Service Fabric troubleshooting guides for untrusted issuer "
            "thumbprints); open an Azure support case if it does not recover.",
        )
    elif cluster.cluster_state != "Ready" or cluster.provisioning_state != "Succeeded":
        # SFRP refuses an update while another is in flight (research §7.4).
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
        # DESIGN §2 hazards: the conversion changes the cluster certificate only.
        yield finding(
            "REVERSE_PROXY_BY_THUMBPRINT",
            f"the reverse proxy certificate is declared by thumbprint ({cluster.reverse_proxy_thumbprint}); the conversion "
            "leaves it as is, so it will not renew itself and still needs a versioned VMSS secret.",
            cluster.id,
            "Plan a separate change to reverseProxyCertificateCommonNames (an ARM template update) once the cluster is converted.",
        )


def check_existing_issuer_lists(ctx: _Ctx) -> Iterator[Finding]:
    """An already-CN cluster: its issuer lists must be valid, and cover the goal's issuer (DESIGN §2)."""
    cluster = ctx.snapshot.cluster
    if cluster is None or cluster.declaration != COMMON_NAME:
        return
    goal = ctx.snapshot.goal
    for index, entry in enumerate(cluster.common_names):
        raw = entry.get("certificateIssuerThumbprint") or ""
        problem = _issuer_list_problem([t for t in raw.split(",")] if raw.strip() else [])
        where = f"certificateCommonNames.commonNames[{index}].certificateIssuerThumbprint"
        if problem:
            yield finding(
                "ISSUER_LIST_INVALID",
                f"the cluster's {where} {problem}; SFRP rejects the next update of such a list (InvalidCertificateIssuerThumbprints).",
                cluster.id,
                "Correct the list to comma-separated 40-hex-digit thumbprints without duplicates.",
            )
            continue
        pinned = {t.strip().replace(" ", "").upper() for t in raw.split(",") if t.strip()}
        if (goal and goal.issuer and pinned and entry.get("certificateCommonName") == _goal_cn(ctx)
                and goal.issuer.thumbprint.upper() not in pinned):
            yield finding(
                "ISSUER_NOT_PINNED",
                f"the cluster already validates '{entry.get('certificateCommonName')}' against pinned issuers "
                f"({', '.join(sorted(pinned))}) that do not include the goal's direct issuer {goal.issuer.thumbprint} "
                f"({goal.issuer.subject}); once the Key Vault extension installs the goal, nodes would present a "
                "certificate their peers reject (DESIGN §2: issuer pinning).",
                cluster.id,
                "Add the goal's issuer thumbprint to the cluster's issuer list in its own upgrade before delivering the goal.",
            )


def _issuer_list_problem(items: list[str]) -> str | None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            value = normalise_thumbprint(item.strip())
        except ValueError:
            return f"entry [{index}] {item!r} is not a 40-hex-digit thumbprint"
        if value in seen:
            return f"entry [{index}] {item!r} is listed twice"
        seen.add(value)
    return None


# -- node types -----------------------------------------------------------------------------------------
def _node_type_ref(node_type: NodeTypeView) -> str:
    settings = node_type.sf_extension.settings if node_type.sf_extension else {}
    return str(node_type.node_type_ref or settings.get("nodeTypeRef") or node_type.name)


def check_node_types(ctx: _Ctx) -> Iterator[Finding]:
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
            "certificates must be installed on every node type before the declaration changes (DESIGN §2).",
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
                "type before any declaration changes (DESIGN §2: install before declaring).",
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
                "they are upgraded, so sfmigrate upgrades instances itself, in update-domain order (research §4.1).",
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
            yield finding(
                "LINUX_SUPPORT_UNCONFIRMED",
                f"{node_type.name} runs Linux: Service Fabric reads certificates from /var/lib/sfcerts and how the KeyVaultForLinux "
                "store maps to it is unconfirmed; common-name clusters on Linux have open issues (research §3.3).",
                node_type.vmss_id,
                "Rehearse on a test cluster of the same OS image first (sfmigrate rehearse).",
            )
        yield from _existing_kv_extension(node_type)


def _major(version: str | None) -> int:
    try:
        return int(str(version or "0").split(".")[0])
    except ValueError:
        return 0


def _existing_kv_extension(node_type: NodeTypeView) -> Iterator[Finding]:
    extension = node_type.kv_extension
    if extension is None:
        return
    if _major(extension.type_handler_version) >= 4:
        # research §3.1: 4.0 removes linkOnRenewal ("Linking always occurs") and stores keys with CNG (NTE_BAD_PROV_TYPE).
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
            "(4.x) that always links and uses CNG keys, under a running cluster (research §3.1).",
            node_type.vmss_id,
            "Set enableAutomaticUpgrade to false and pin typeHandlerVersion.",
        )
    management = extension.settings.get("secretsManagementSettings") if isinstance(extension.settings, dict) else None
    if node_type.os.lower() != "linux" and isinstance(management, dict) and management.get("linkOnRenewal") is True:
        yield finding(
            "LINK_ON_RENEWAL_ENABLED",
            f"{node_type.name}'s {extension.type} has linkOnRenewal true: renewals are linked by SAN only and S-channel "
            "follows the link regardless of subject or issuer, which has taken clusters down (research §1.4).",
            node_type.vmss_id,
            "Set secretsManagementSettings.linkOnRenewal to false (sfmigrate writes false when it installs the extension).",
        )


# -- the plan file's extension settings -----------------------------------------------------------------
def check_extension_spec(ctx: _Ctx) -> Iterator[Finding]:
    kv = ctx.spec.keyVaultExtension
    oses = ctx.oses()
    for os_name, field, version in (("windows", "windowsVersion", kv.windowsVersion), ("linux", "linuxVersion", kv.linuxVersion)):
        if os_name in oses and _major(version) >= 4:
            yield finding(
                "EXTENSION_VERSION_UNSAFE",
                f"keyVaultExtension.{field} is {version}: 4.x always links renewals and stores keys with CNG, which Service "
                "Fabric does not support (CAPI1 only; research §0.5, §3.1).",
                ctx.cluster_id,
                f"Set keyVaultExtension.{field} to '3.0' (or '1.0').",
            )
    if kv.linkOnRenewal and "windows" in oses:
        yield finding(
            "LINK_ON_RENEWAL_ENABLED",
            "keyVaultExtension.linkOnRenewal is true: SAN-based linking has caused hard-to-diagnose outages, and the "
            "Service Fabric documentation sets it to false (DESIGN §2).",
            ctx.cluster_id,
            "Set keyVaultExtension.linkOnRenewal: false.",
        )
    if not kv.requireInitialSync:
        yield finding(
            "INITIAL_SYNC_DISABLED",
            "keyVaultExtension.requireInitialSync is false: the Service Fabric extension may start on a new or reimaged "
            "node before the certificate is installed (DESIGN §2: requireInitialSync with provisionAfterExtensions).",
            ctx.cluster_id,
            "Set keyVaultExtension.requireInitialSync: true.",
        )


# -- the goal certificate -------------------------------------------------------------------------------
def _goal_cn(ctx: _Ctx) -> str | None:
    goal = ctx.snapshot.goal
    return ctx.spec.goal.commonName or (goal.facts.subject_cn if goal else None)


def check_goal(ctx: _Ctx) -> Iterator[Finding]:
    goal, spec = ctx.snapshot.goal, ctx.spec
    if goal is None:
        if not ctx.problem_about_goal():
            yield finding("RESOURCE_NOT_FOUND", f"the goal certificate '{spec.goal.certificateName}' was not found in {spec.goal.vaultId}",
                          ctx.goal_id, "Check goal.vaultId and goal.certificateName in the plan file.")
        return
    facts, rid, now = goal.facts, ctx.goal_id, ctx.now
    if not goal.enabled:
        yield finding("GOAL_DISABLED", f"the latest version ({goal.version}) of '{goal.name}' is disabled; VMSS deployments and the "
                      "Key Vault extension cannot fetch a disabled version (research §1.4: disabling a version fails deployments).",
                      rid, "Enable the version in Key Vault, or make an enabled version the latest.")
    if facts.self_signed:
        # research §1.1: "Self-signed certificates are wholly unsuitable for this purpose."
        yield finding("GOAL_SELF_SIGNED", f"the goal certificate ({facts.subject}) is self-signed: common-name declarations rest on "
                      "trust in an issuing PKI, and the documentation calls self-signed certificates wholly unsuitable.",
                      rid, "Issue the goal certificate from a CA (a Key Vault issuer or your PKI) and plan again.")
    if now < facts.not_before:
        yield finding("GOAL_NOT_YET_VALID", f"the goal certificate is not valid before {facts.not_before.isoformat()}: nodes ignore it "
                      "for presentation and peers reject it until then.", rid, "Wait until it is valid, then plan again.")
    days = facts.days_left(now)
    warn_days = spec.checks.expiryWarningDays
    if days < 0 or days < warn_days:
        when = f"expired on {facts.not_after.isoformat()}" if days < 0 else f"expires in {days:.0f} day(s) ({facts.not_after.isoformat()})"
        yield finding("GOAL_EXPIRING", f"the goal certificate {when}, within checks.expiryWarningDays ({warn_days}); converting to a "
                      "certificate about to expire risks an outage before renewal is proven.",
                      rid, "Renew the certificate in Key Vault (a new version with the same subject) and plan again.")
    if goal.exportable is False:
        yield finding("KEY_NOT_EXPORTABLE", "the goal certificate's key policy has exportable: false; VMSS secrets and the Key Vault "
                      "extension install the certificate from its secret, which needs the private key.",
                      rid, "Create a new certificate (or version) whose policy has keyProperties.exportable: true.")
    yield from _cn_checks(ctx)
    if not facts.has_client_auth:
        # research §1.5: public CAs drop the Client Authentication EKU 2025-2027.
        yield finding("CLIENT_AUTH_EKU_MISSING", "the goal certificate has no Client Authentication EKU: node-to-node traffic still "
                      "works, but SFX in a browser, client-certificate callers of port 19080, APIM backends and MITS break.",
                      rid, "Issue from a CA that still includes Client Authentication, or move those callers to other credentials first.")
    if goal.content_type == _PEM and "windows" in {n.os.lower() for n in ctx.snapshot.node_types}:
        yield finding("GOAL_NOT_PFX", "the goal certificate's content type is application/x-pem-file; a Windows VMSS secret "
                      "(osProfile.secrets) expects a PKCS#12 secret.", rid,
                      "Re-import the certificate with content type application/x-pkcs12.")


def _cn_checks(ctx: _Ctx) -> Iterator[Finding]:
    facts, declared, rid = ctx.snapshot.goal.facts, ctx.spec.goal.commonName, ctx.goal_id  # type: ignore[union-attr]
    subject_cn = facts.subject_cn
    if declared is not None and declared.strip().upper().startswith("CN="):
        yield finding("CN_MISMATCH", f"goal.commonName '{declared}' starts with 'CN=': Service Fabric matches the bare common name "
                      "exactly, and a 'CN=' prefix finds no certificate (research §1.4).", rid, "Remove the 'CN=' prefix.")
    elif subject_cn is None:
        yield finding("CN_MISMATCH", f"the goal certificate's subject ({facts.subject}) has no common name, so it cannot be declared by "
                      "common name.", rid, "Issue a certificate whose subject has a CN.")
    elif declared is not None and declared != subject_cn:
        hint = " (they differ only in case; presentation matching is case-sensitive)" if declared.lower() == subject_cn.lower() else ""
        yield finding("CN_MISMATCH", f"goal.commonName '{declared}' is not the certificate's subject CN '{subject_cn}'{hint}; nodes "
                      "present only a certificate whose CN equals the declaration exactly (DESIGN §2).",
                      rid, f"Set goal.commonName to '{subject_cn}' or leave it out.")
    if subject_cn and subject_cn.lower() not in {s.lower() for s in facts.sans}:
        yield finding("SAN_MISSING_CN", f"the goal's SANs ({', '.join(facts.sans) or 'none'}) do not include its subject CN "
                      f"'{subject_cn}'; the Key Vault extension links renewals by SAN, and the documentation asks to include the "
                      "CN in the SANs (research §1.4).", rid, "Issue the certificate with its subject CN among its DNS SANs.")


def check_shared_subject(ctx: _Ctx) -> Iterator[Finding]:
    goal = ctx.snapshot.goal
    if goal is None:
        return
    cn = (goal.facts.subject_cn or "").lower()
    sans = {s.lower() for s in goal.facts.sans}
    for other in ctx.snapshot.vault_certificates:
        if other.name.lower() == goal.name.lower() or other.facts is None:
            continue
        shared = sorted(({(other.facts.subject_cn or "").lower()} & {cn} - {""}) | ({s.lower() for s in other.facts.sans} & sans))
        if shared:
            yield finding(
                "SHARED_SUBJECT",
                f"vault certificate '{other.name}' shares {', '.join(shared)} with the goal: with linking on renewal a node "
                "can link one to the other, and a node observing both may present the wrong one (research §1.4).",
                ctx.snapshot.vault.id if ctx.snapshot.vault else ctx.spec.goal.vaultId,
                f"Give '{other.name}' distinct names, or keep it in another vault; never observe both on the cluster's nodes.",
            )


def _delivered_certificates(ctx: _Ctx) -> Iterator[tuple[str, CertFacts]]:
    """(where, facts) of certificates the nodes hold by declaration or VMSS secret, as far as discovery knows them."""
    snapshot = ctx.snapshot
    seen: set[str] = set()
    if snapshot.cluster:
        for thumbprint in snapshot.cluster.declared_thumbprints:
            known = snapshot.certificate(thumbprint)
            if known and known.thumbprint not in seen:
                seen.add(known.thumbprint)
                yield f"declared certificate {known.thumbprint}", known.facts
    for node_type in snapshot.node_types:
        for secret in node_type.secrets:
            known = _known_by_url(snapshot, secret.certificate_url)
            if known and known.thumbprint not in seen:
                seen.add(known.thumbprint)
                yield f"VMSS secret {secret.certificate_url}", known.facts


def _known_by_url(snapshot: Snapshot, url: str) -> KnownCertificate | None:
    wanted = url.rstrip("/").lower()
    for known in snapshot.known_certificates.values():
        if known.secret_url and known.secret_url.rstrip("/").lower() == wanted:
            return known
    return None


def check_newer_same_cn(ctx: _Ctx) -> Iterator[Finding]:
    """DESIGN §2 presentation: among certificates matching the CN, a node presents the latest NotBefore."""
    goal = ctx.snapshot.goal
    cn = _goal_cn(ctx)
    if goal is None or not cn:
        return
    for where, facts in _delivered_certificates(ctx):
        if facts.thumbprint == goal.facts.thumbprint or facts.subject_cn != cn:
            continue
        if facts.not_before > goal.facts.not_before and facts.not_after > ctx.now:
            yield finding(
                "NEWER_CERT_SAME_CN",
                f"the {where} has the goal's common name '{cn}' and a later NotBefore ({facts.not_before.isoformat()}) than the "
                "goal: after the conversion nodes would present it, not the goal, and peers reject it unless its issuer "
                f"({facts.issuer}) is pinned.",
                ctx.cluster_id,
                "Renew the goal so it is the newest certificate with that CN; removing the other certificate's VMSS secret "
                "does not remove it from the VMs (research §4.1).",
            )


# -- issuers --------------------------------------------------------------------------------------------
def check_issuers(ctx: _Ctx) -> Iterator[Finding]:
    spec, goal = ctx.spec.goal, ctx.snapshot.goal
    problem = _issuer_list_problem(list(spec.pinnedIssuers))
    if problem:
        yield finding("ISSUER_LIST_INVALID", f"goal.pinnedIssuers {problem}; SFRP rejects issuer lists that are not comma-separated "
                      "hex or are duplicated (research §7.1).", ctx.cluster_id, "Correct goal.pinnedIssuers.")
        return
    if not spec.pinnedIssuers:
        yield finding("ISSUER_PINNING_DISABLED", "no issuer is pinned (goal.allowUnpinnedIssuers): any certificate with the common "
                      "name that chains to a trusted root will be accepted, and the documentation calls pinning a best practice "
                      "(unpinned validation might be phased out; research §1.2).", ctx.cluster_id,
                      "List the goal's direct issuer thumbprint(s) in goal.pinnedIssuers.")
        return
    if goal is None or goal.facts.self_signed:
        return  # nothing to verify (RESOURCE_NOT_FOUND or GOAL_SELF_SIGNED already says why)
    pinned = ", ".join(spec.pinnedIssuers)
    issuer = goal.issuer
    if issuer is None:
        yield finding("ISSUER_UNVERIFIED", f"the goal's direct issuer ({goal.facts.issuer}) could not be obtained"
                      f"{': ' + goal.issuer_note if goal.issuer_note else ''}; whether it is among the pinned issuers ({pinned}) "
                      "cannot be verified.", ctx.goal_id,
                      "Add the issuer's certificate to goal.issuerCertificates (a PEM file), or make its AIA URL reachable.")
        return
    if not _issued(goal.facts, issuer):
        yield finding("ISSUER_UNVERIFIED", f"the issuer certificate {issuer.thumbprint} ({issuer.subject}, from {goal.issuer_source or 'unknown'}) "
                      f"does not match the goal's issuer ({goal.facts.issuer}); pinning cannot be verified against it.", ctx.goal_id,
                      "Give the goal's actual direct issuer in goal.issuerCertificates.")
        return
    if issuer.thumbprint.upper() not in {t.replace(" ", "").upper() for t in spec.pinnedIssuers}:
        # DESIGN §2 / research §1.2: peers accept a CN certificate only if its *direct* issuer is pinned.
        yield finding("ISSUER_NOT_PINNED", f"the goal's direct issuer {issuer.thumbprint} ({issuer.subject}) is not in goal.pinnedIssuers "
                      f"({pinned}): peers would reject the goal once declared by common name (CERT_E_UNTRUSTEDROOT). Service "
                      "Fabric compares the direct issuer, not the root.", ctx.goal_id,
                      f"Add {issuer.thumbprint} to goal.pinnedIssuers (and every issuer a renewal may come from).")


def _issued(child: CertFacts, issuer: CertFacts) -> bool:
    """Name and, when both are known, key identifier agree (the signature was checked where the issuer was fetched)."""
    if child.issuer != issuer.subject:
        return False
    return not (child.authority_key_id and issuer.subject_key_id) or child.authority_key_id == issuer.subject_key_id


# -- vault, identity ------------------------------------------------------------------------------------
def _goal_secret_needed(ctx: _Ctx) -> bool:
    """Does the plan have to add the goal as a VMSS secret (to declare it by thumbprint first; DESIGN §2)?"""
    snapshot, goal = ctx.snapshot, ctx.snapshot.goal
    if goal is None or snapshot.cluster is None or snapshot.cluster.declaration != THUMBPRINT:
        return False
    for node_type in snapshot.node_types:
        urls = {s.certificate_url.rstrip("/").lower() for s in node_type.secrets}
        if goal.secret_id.rstrip("/").lower() in urls:
            continue
        if not any((k := _known_by_url(snapshot, u)) and k.thumbprint == goal.facts.thumbprint for u in urls):
            return True
    return False


def check_vault(ctx: _Ctx) -> Iterator[Finding]:
    vault = ctx.snapshot.vault
    if vault is None:
        if not ctx.problem_about(ctx.spec.goal.vaultId):
            yield finding("RESOURCE_NOT_FOUND", f"the vault {ctx.spec.goal.vaultId} was not found", ctx.spec.goal.vaultId,
                          "Check goal.vaultId in the plan file.")
        return
    if _goal_secret_needed(ctx) and not vault.enabled_for_deployment:
        # research §4.1: CRP fetches osProfile.secrets with its first-party identity, which needs enabledForDeployment.
        yield finding("VAULT_NOT_ENABLED_FOR_DEPLOYMENT", f"the goal must first reach the nodes as a versioned VMSS secret, which "
                      f"Compute fetches only from vaults enabled for deployment; {vault.name} is not, so the plan turns "
                      "enabledForDeployment on. That is a vault-wide setting: any VM deployment that references this vault "
                      "can then receive its certificates.", vault.id,
                      f"Review it; enable it yourself (az keyvault update --name {vault.name} --enabled-for-deployment true) "
                      "or keep the goal in a vault dedicated to the cluster.")


def _identity_can_read(ctx: _Ctx) -> bool:
    vault, identity = ctx.snapshot.vault, ctx.snapshot.identity
    if vault is None or identity is None or not identity.exists or not identity.principal_id:
        return False
    principal = identity.principal_id.lower()
    if vault.rbac:
        vault_id = vault.id.lower()
        for assignment in ctx.snapshot.vault_role_assignments:
            role = assignment.role_definition_id.rstrip("/").split("/")[-1].lower()
            scope = assignment.scope.rstrip("/").lower()
            if (assignment.principal_id.lower() == principal and role in SECRET_READER_ROLES
                    and (vault_id == scope or vault_id.startswith(scope + "/"))):
                return True
        return False
    for policy in vault.access_policies:
        if str(policy.get("objectId", "")).lower() != principal:
            continue
        granted = {str(p).lower() for p in ((policy.get("permissions") or {}).get("secrets") or [])}
        if "all" in granted or {"get", "list"} <= granted:
            return True
    return False


def check_identity(ctx: _Ctx) -> Iterator[Finding]:
    snapshot, spec = ctx.snapshot, ctx.spec
    identity_id = spec.identity.id
    if snapshot.identity is None or not snapshot.identity.exists:
        yield finding("IDENTITY_WILL_BE_CREATED", f"the user-assigned identity {identity_id} does not exist; the plan creates it "
                      "(a user-assigned identity avoids the system-assigned deadlock with vault access; research §3.2).",
                      identity_id, "Nothing to do, or create it yourself and plan again; the credential needs Managed Identity Contributor on its resource group.")
    if snapshot.vault and not _identity_can_read(ctx):
        how = ("the 'Key Vault Secrets User' role on the vault (the credential needs Microsoft.Authorization/roleAssignments/write, "
               "e.g. Role Based Access Control Administrator)") if snapshot.vault.rbac else \
              "an access policy with secrets get and list (the credential needs Microsoft.KeyVault/vaults/accessPolicies/write)"
        yield finding("VAULT_ACCESS_WILL_BE_GRANTED", f"the identity cannot read secrets in {snapshot.vault.name} yet; the Key Vault "
                      f"extension needs it, so the plan grants {how}.", snapshot.vault.id,
                      "Nothing to do if the credential has that permission; otherwise grant it first.")
    missing = [n.name for n in snapshot.node_types
               if identity_id.lower() not in {i.lower() for i in n.user_assigned_identities}]
    if missing:
        yield finding("MANAGED_IDENTITY_OPERATOR_NEEDED", f"the plan assigns the identity to {', '.join(missing)}; that needs "
                      "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action (the Managed Identity Operator role) on the "
                      "identity, besides Contributor on the scale sets (research §1.4).", identity_id,
                      "Grant the credential Managed Identity Operator on the identity (or its resource group).")


# -- cleanup --------------------------------------------------------------------------------------------
def check_cleanup(ctx: _Ctx) -> Iterator[Finding]:
    goal = ctx.snapshot.goal
    goal_url = goal.secret_id.rstrip("/").lower() if goal else None
    old = [(n, s) for n in ctx.snapshot.node_types for s in n.secrets if s.certificate_url.rstrip("/").lower() != goal_url]
    if not old:
        return
    names = sorted({n.name for n, _ in old})
    if ctx.spec.cleanup.removeOldSecrets:
        # research §4.1: "This does not remove the certificate from all your VMs."
        yield finding("OLD_CERTS_REMAIN_ON_NODES", f"cleanup.removeOldSecrets removes {len(old)} old VMSS secret(s) from "
                      f"{', '.join(names)}, but that does not remove the certificates from existing VMs: they stay in the "
                      "stores until removed in the guest or the VMs are reimaged.", ctx.cluster_id,
                      "After the run, remove them in the guest (e.g. a Custom Script Extension) or reimage node by node.")
    else:
        yield finding("OLD_SECRETS_KEPT", f"{len(old)} old VMSS secret(s) on {', '.join(names)} stay referenced after the "
                      "conversion (cleanup.removeOldSecrets is false); deleting or disabling those vault secrets later would "
                      "fail scale set deployments (research §1.4).", ctx.cluster_id,
                      "Set cleanup.removeOldSecrets: true in a later plan once the conversion is proven.")


CHECKS: tuple[Check, ...] = (
    check_problems, check_cluster, check_existing_issuer_lists, check_node_types, check_extension_spec,
    check_goal, check_shared_subject, check_newer_same_cn, check_issuers, check_vault, check_identity, check_cleanup,
)
