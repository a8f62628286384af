"""The planner (pure): snapshot + plan file -> starting state and ordered steps with property-level changes.

It plans by convergence: each step is the difference between what is observed and what the rules
require, so planning an already-migrated cluster yields no steps, and re-planning after a partial run
yields exactly the remaining work. The order follows the Service Fabric documentation
(https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn): identity and vault access first; the goal certificate into the cluster by
thumbprint (VMSS secret, then SF extension, then cluster) where the starting state needs it; then the
Key Vault extension swap on every node type; then the conversion of the cluster; then optional cleanup.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, Callable, Collection

from . import plan as states
from . import readers
from .arm_ids import resource_group_of
from .findings import Finding
from .discovery import cluster_view, node_type_view
from .plan import Change, Plan, Step
from .snapshot import COMMON_NAME, NodeTypeView, Snapshot
from .spec import PlanSpec
from .step_types import StepParams
from .steps import (
    cleanup_secrets, convert_cluster, deliver_by_secret, enable_vault_deployment, ensure_identity, grant_vault_access,
    install_kv_extension, set_cluster_certificate,
)
from .steps import stage_goal as stage_goal_step
from .transforms import (
    KNOWN_AFTER, cluster_with_common_name, cluster_with_thumbprints, deliver_by_secret as deliver_goal_by_secret, diff,
    extension_of_type,
    goal_secret_urls, remove_secrets, secret_urls, stage_goal, swap_to_kv_extension,
)

from .vault_access import SECRETS_USER_ROLE, policy_secrets, reads_secrets

Body = dict[str, Any]


def _selects_by_not_after(code_version: str | None) -> bool:
    """Before 7.2.445 (7.2 CU4) the runtime picks the farthest NotAfter, not the latest NotBefore."""
    parts = []
    for piece in str(code_version or "").split(".")[:3]:
        try:
            parts.append(int(piece))
        except ValueError:
            return False
    return bool(parts) and tuple(parts) < (7, 2, 445)


def goal_equivalent(snapshot: Snapshot, thumbprint: str | None, goal_thumbprint: str, pinned: Collection[str] = ()) -> bool:
    """Another version of the goal: same subject CN, not expired, and the same issuer (name and key), or, for a
    version of the goal certificate renewed by another CA, a direct issuer in ``pinned`` (the plan's issuers).
    After a rotation the cluster may declare the previous version by thumbprint; the common-name declaration
    with those issuers accepts both, so it counts as the goal (no extra cluster upgrade)."""
    if not thumbprint:
        return False
    if thumbprint == goal_thumbprint:
        return True
    known, goal = snapshot.certificate(thumbprint), snapshot.certificate(goal_thumbprint)
    if known is None or goal is None:
        return False
    if known.facts.subject_cn != goal.facts.subject_cn or known.facts.self_signed or known.facts.not_after <= snapshot.taken_at:
        return False
    if known.facts.issuer == goal.facts.issuer and known.facts.authority_key_id == goal.facts.authority_key_id:
        return True
    return (known.name or "").lower() == (goal.name or "").lower() and issuers_pinned(snapshot, thumbprint, pinned)


def issuers_pinned(snapshot: Snapshot, thumbprint: str, pinned: Collection[str]) -> bool:
    """Every CA certificate seen that could be the certificate's direct issuer (its issuer and any same-key re-issue:
    a node may chain through either) is pinned, and at least one was seen (direct issuer pinning: https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn)."""
    issuers = snapshot.possible_issuers.get(thumbprint.upper()) or []
    wanted = {t.replace(" ", "").upper() for t in pinned}
    return bool(issuers) and all(issuer.thumbprint in wanted for issuer in issuers)


def declared_goal(snapshot: Snapshot, goal_thumbprint: str, pinned: Collection[str] = ()) -> str:
    """The goal version the thumbprint phase works with: one the cluster already declares, else the latest."""
    cluster = snapshot.cluster
    for thumbprint in (cluster.thumbprint, cluster.thumbprint_secondary) if cluster else ():
        if thumbprint and goal_equivalent(snapshot, thumbprint, goal_thumbprint, pinned):
            return thumbprint
    return goal_thumbprint


def starting_state(snapshot: Snapshot, goal_thumbprint: str) -> tuple[str, list[str]]:
    """Classify the cluster per the doc's table; unknown ordering takes the path that is safe either way."""
    cluster = snapshot.cluster
    assert cluster is not None
    if cluster.declaration == COMMON_NAME:
        return states.ALREADY_COMMON_NAME, []
    if not cluster.thumbprint:
        return states.UNKNOWN, ["the cluster declares no certificate (unsecured clusters are not supported)"]
    by_not_after = _selects_by_not_after(cluster.code_version)
    key = "not_after" if by_not_after else "not_before"
    notes = [f"runtime {cluster.code_version}: nodes present the certificate with the latest {'NotAfter' if by_not_after else 'NotBefore'}"]

    def goal_newer(other: str) -> bool | None:
        goal, old = snapshot.certificate(goal_thumbprint), snapshot.certificate(other)
        if goal is None or old is None:
            notes.append(f"certificate {other} could not be read; its validity dates are unknown")
            return None
        return bool(getattr(goal.facts, key) > getattr(old.facts, key))

    primary, secondary = cluster.thumbprint, cluster.thumbprint_secondary
    if primary == goal_thumbprint and not secondary:
        return states.VALID_GOAL_ONLY, notes
    if goal_thumbprint in (primary, secondary):
        other = secondary if primary == goal_thumbprint else primary
        assert other
        return (states.VALID_GOAL_NEWEST if goal_newer(other) else states.GOAL_PRESENT_OLD_NEWER), notes
    if secondary:
        return states.TWO_OLD, notes
    newer = goal_newer(primary)
    return (states.GOAL_ABSENT_GOAL_NEWER if newer else states.GOAL_ABSENT_OLD_NEWER), notes


def _rollout_change(node_type: NodeTypeView) -> list[Change]:
    """Instances not yet on the scale set's model (e.g. a run stopped between the model update and the
    Manual-policy upgrade): the step must still roll the model out before anything relies on it."""
    stale = [i for i in node_type.instances if not i.latest_model_applied or i.provisioning_state == "Failed"]
    if not stale:
        return []
    total = len(node_type.instances)
    return [Change("instances.latestModelApplied", f"{total - len(stale)}/{total}", f"{total}/{total}")]


def _newest(snapshot: Snapshot, thumbprints: list[str]) -> str:
    """The certificate nodes present (latest NotBefore); when a date is unknown, the primary (listed first)."""
    known = [snapshot.certificate(t) for t in thumbprints]
    if any(k is None for k in known):
        return thumbprints[0]
    return max(thumbprints, key=lambda t: snapshot.certificate(t).facts.not_before)  # type: ignore[union-attr]


def _labels(node_types: list[NodeTypeView]) -> dict[str, str]:
    """Step-name label per scale set: its name, or resource-group/name where two share a name."""
    counts: dict[str, int] = {}
    for node_type in node_types:
        counts[node_type.name.lower()] = counts.get(node_type.name.lower(), 0) + 1
    return {
        n.vmss_id: (f"{resource_group_of(n.vmss_id)}/{n.name}" if counts[n.name.lower()] > 1 else n.name) for n in node_types
    }


class _Planner:
    def __init__(self, snapshot: Snapshot, spec: PlanSpec) -> None:
        self.snapshot, self.spec = snapshot, spec
        self.steps: list[Step] = []
        self.notes: list[str] = []
        self.labels = _labels(snapshot.node_types)

    # -- building blocks ----------------------------------------------------------------------------
    def add(self, name: str, kind: str, title: str, resources: list[str], changes: list[Change],
            params: StepParams, why: str, cluster_upgrade: bool = False) -> None:
        if any(s.name == name for s in self.steps):
            raise ValueError(f"step name '{name}' is used twice in the plan")
        self.steps.append(Step(name, kind, title, resources, changes, params, cluster_upgrade, why))

    # -- staging: every transformation applies to the raw body the previous step left (issue 9 §2) ----
    def stage_scale_set(self, node_type: NodeTypeView, transform: Callable[[Body], Body]) -> list[Change]:
        """Apply ``transform`` to the scale set as the earlier steps left it; the changes are the diff."""
        before = node_type.raw
        after = transform(before)
        node_type.raw = after  # later steps plan against the staged body (this is the planner's copy)
        derived = node_type_view(after, [])  # and the view's body-derived parts follow it
        node_type.secrets, node_type.extensions = derived.secrets, derived.extensions
        node_type.identity_type, node_type.user_assigned_identities = derived.identity_type, derived.user_assigned_identities
        return diff(before, after)

    def stage_cluster(self, transform: Callable[[Body], Body]) -> list[Change]:
        """As for scale sets, and the cluster view is re-derived from the staged body. Changes are per
        certificate property (``properties.certificate``, ``properties.certificateCommonNames``)."""
        cluster = self.snapshot.cluster
        assert cluster is not None
        before = cluster.raw
        after = transform(copy.deepcopy(before))
        self.snapshot.cluster = cluster_view(after)
        old, new = before.get("properties") or {}, after.get("properties") or {}
        return [Change(f"properties.{key}", old.get(key), new.get(key))
                for key in list(old) + [k for k in new if k not in old] if old.get(key) != new.get(key)]

    @property
    def goal_thumbprint(self) -> str:
        """The goal version the thumbprint phase declares (see declared_goal)."""
        assert self.snapshot.goal is not None
        return declared_goal(self.snapshot, self.snapshot.goal.facts.thumbprint, self.spec.goal.pinnedIssuers)

    @property
    def common_name(self) -> str:
        goal = self.snapshot.goal
        assert goal is not None
        return self.spec.goal.commonName or goal.facts.subject_cn or ""

    def client_id(self) -> str:
        identity = self.snapshot.identity
        return identity.client_id if identity and identity.exists and identity.client_id else KNOWN_AFTER

    # -- identity and vault access ------------------------------------------------------------------
    def identity_steps(self) -> None:
        snap, spec = self.snapshot, self.spec
        identity = snap.identity
        if identity is None or not identity.exists:
            location = snap.cluster.location if snap.cluster else ""
            self.add(
                "ensure-identity", "ensure_identity", "Create the user-assigned identity the Key Vault extension uses",
                [spec.identity.id], [Change("resource", None, {"location": location})],
                ensure_identity.Params(identity_id=spec.identity.id, location=location),
                "The Key Vault VM extension authenticates with a user-assigned identity (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
            )
        vault = snap.vault
        assert vault is not None
        principal = identity.principal_id if identity and identity.exists else None
        if principal and reads_secrets(
            rbac=vault.rbac, vault_id=vault.id, principal_id=principal, access_policies=vault.access_policies,
            assignments=[(r.scope, r.role_definition_id, r.principal_id) for r in snap.vault_role_assignments],
        ):
            return
        if vault.rbac:
            self.add(
                "grant-vault-access", "grant_vault_access", "Let the identity read the vault's secrets ('Key Vault Secrets User')",
                [vault.id], [Change("roleAssignments[Key Vault Secrets User]", None, {"principalId": principal or KNOWN_AFTER})],
                grant_vault_access.Params(vault_id=vault.id, rbac=True, identity_id=spec.identity.id, role=SECRETS_USER_ROLE),
                "The extension reads the certificate through /secrets; an RBAC vault needs 'Key Vault Secrets User' (https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).",
            )
            return
        have = policy_secrets(vault.access_policies, principal) if principal else set()
        self.add(
            "grant-vault-access", "grant_vault_access", "Give the identity an access policy: secrets get, list",
            [vault.id], [Change("properties.accessPolicies[identity]", sorted(have) or None, ["get", "list"])],
            grant_vault_access.Params(vault_id=vault.id, rbac=False, identity_id=spec.identity.id, tenant_id=vault.tenant_id),
            "Pre-ACL the vault before the extension is deployed (access policy secrets get/list: https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows).",
        )

    # -- the goal into the cluster by thumbprint (the doc's table, see plan.py) --------------------------
    def thumbprint_steps(self, state: str) -> None:
        snap = self.snapshot
        cluster = snap.cluster
        assert cluster is not None and snap.vault is not None and snap.goal is not None
        goal = self.goal_thumbprint
        primary, secondary = cluster.thumbprint, cluster.thumbprint_secondary
        if state == states.TWO_OLD:
            keep = _newest(snap, [t for t in (primary, secondary) if t])
            self.cluster_step(
                "drop-old-certificate", keep, None,
                "Upgrade 1 of the doc's table: remove one of two old certificates (the one not presented).",
            )
            primary, secondary = keep, None
            state, _ = starting_state(snap, goal)  # the cluster now declares `keep` alone
        if state == states.GOAL_ABSENT_GOAL_NEWER:
            assert primary is not None
            self.stage_steps(primary=primary, secondary=goal)
            self.cluster_step("declare-goal-secondary", primary, goal,
                              "Doc table: Old + secondary Goal (Goal has the later NotBefore) is a valid starting state.")
        elif state == states.GOAL_ABSENT_OLD_NEWER:
            assert primary is not None
            self.stage_steps(primary=goal, secondary=primary)
            self.cluster_step("declare-goal-primary", goal, primary,
                              "Doc table, Old newer than Goal: upgrade 1 declares Goal + secondary Old.")
            self.cluster_step("retire-old-certificate", goal, None,
                              "Doc table, Old newer than Goal: upgrade 2 leaves Goal alone.")
        elif state == states.GOAL_PRESENT_OLD_NEWER:
            self.cluster_step("retire-old-certificate", goal, None,
                              "Doc table: Old newer than Goal with both declared: upgrade to Goal alone.")

    def stage_steps(self, *, primary: str, secondary: str | None) -> None:
        snap = self.snapshot
        assert snap.vault is not None and snap.goal is not None
        self.vault_deployment_step()
        vault_id, secret_url = snap.vault.id, snap.goal.secret_id
        for node_type in snap.node_types:
            params = stage_goal_step.Params(vmss_id=node_type.vmss_id, vault_id=vault_id, secret_url=secret_url,
                                            primary=primary, secondary=secondary)
            changes = self.stage_scale_set(node_type, lambda raw: stage_goal(
                raw, vault_id=vault_id, secret_url=secret_url, primary=primary, secondary=secondary))
            changes += _rollout_change(node_type)
            if changes:
                self.add(
                    f"stage-goal:{self.labels[node_type.vmss_id]}", "stage_goal", f"Install the goal certificate on node type {node_type.name} (VMSS secret) and declare it on its SF extension",
                    [node_type.vmss_id], changes, params,
                    "Install before declaring: the goal must be on every node of every node type first (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
                )
            for instance in node_type.instances:
                instance.latest_model_applied, instance.provisioning_state = True, "Succeeded"

    def vault_deployment_step(self) -> None:
        vault = self.snapshot.vault
        assert vault is not None
        if vault.enabled_for_deployment or any(s.name == "enable-vault-deployment" for s in self.steps):
            return
        self.add(
            "enable-vault-deployment", "enable_vault_deployment", "Enable the vault for deployment (VMSS secrets)",
            [vault.id], [Change("properties.enabledForDeployment", False, True)],
            enable_vault_deployment.Params(vault_id=vault.id),
            "CRP retrieves VMSS secrets only from vaults enabled for deployment (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq).",
        )

    def cluster_step(self, name: str, primary: str, secondary: str | None, why: str) -> None:
        cluster = self.snapshot.cluster
        assert cluster is not None
        cluster_id = cluster.id
        changes = self.stage_cluster(lambda raw: cluster_with_thumbprints(raw, primary, secondary))
        self.add(
            name, "set_cluster_certificate",
            f"Cluster upgrade: declare {primary[:8]}…" + (f" + secondary {secondary[:8]}…" if secondary else " alone"),
            [cluster_id], changes,
            set_cluster_certificate.Params(cluster_id=cluster_id, primary=primary, secondary=secondary),
            why, cluster_upgrade=True,
        )

    # -- the Key Vault extension on every node type ------------------------------------------------
    def swap_steps(self) -> None:
        snap, spec = self.snapshot, self.spec
        assert snap.goal is not None and snap.vault is not None
        # The goal's versioned VMSS secret stays until the cleanup phase: until the conversion the cluster
        # declares the goal by thumbprint, and a node created in between (scale-out, reimage) gets only what
        # the model delivers; the Key Vault extension alone would give it a renewed version (the cut-over window).
        observed_url, client_id, common_name = snap.goal.versionless_secret_url, self.client_id(), self.common_name
        for node_type in snap.node_types:
            if readers.is_linux(node_type.raw):
                self.linux_delivery_step(node_type)
                continue
            params = install_kv_extension.Params(
                vmss_id=node_type.vmss_id, identity_id=spec.identity.id, observed_url=observed_url,
                common_name=common_name, kv=spec.keyVaultExtension, keep_goal_secret=True,
            )
            changes = self.stage_scale_set(node_type, lambda raw: swap_to_kv_extension(
                raw, identity_id=spec.identity.id, client_id=client_id, observed_url=observed_url,
                common_name=common_name, kv=spec.keyVaultExtension, keep_goal_secret=True,
            ))
            changes += _rollout_change(node_type)
            if changes:
                self.add(
                    f"install-kv-extension:{self.labels[node_type.vmss_id]}", "install_kv_extension",
                    f"Node type {node_type.name}: identity, Key Vault extension, SF extension by common name; the goal's VMSS secret stays until cleanup",
                    [node_type.vmss_id], changes, params,
                    "Provisioning must match declaration: the Key Vault extension (latest version) goes with common names (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
                )

    def linux_delivery_step(self, node_type: NodeTypeView) -> None:
        """Linux: the goal's latest version stays a versioned VMSS secret and the SF extension goes by common name,
        without the Key Vault extension (LINUX_DELIVERY_BY_VMSS_SECRET). On a migrated cluster after a renewal this
        is the rotation: the new version's secret and its roll-out, no cluster upgrade."""
        snap = self.snapshot
        assert snap.goal is not None and snap.vault is not None
        vault_id, secret_url, common_name = snap.vault.id, snap.goal.secret_id, self.common_name
        changes = self.stage_scale_set(node_type, lambda raw: deliver_goal_by_secret(
            raw, vault_id=vault_id, secret_url=secret_url, common_name=common_name))
        changes += _rollout_change(node_type)
        if not changes:
            return
        self.vault_deployment_step()
        self.add(
            f"deliver-by-secret:{self.labels[node_type.vmss_id]}", "deliver_by_secret",
            f"Node type {node_type.name} (Linux): the goal's latest version as a VMSS secret, the SF extension by common name",
            [node_type.vmss_id], changes,
            deliver_by_secret.Params(vmss_id=node_type.vmss_id, vault_id=vault_id, secret_url=secret_url, common_name=common_name),
            "ServiceFabricLinuxNode reads waagent's <THUMBPRINT>.crt/.prv files, not KeyVaultForLinux's (microsoft/service-fabric#1308); "
            "waagent removes the files of secrets no longer in the model (runbooks/findings/LINUX_DELIVERY_BY_VMSS_SECRET.md).",
        )

    def convert_step(self) -> None:
        cluster = self.snapshot.cluster
        assert cluster is not None
        issuers = list(self.spec.goal.pinnedIssuers)
        if readers.declares_common_name(cluster.raw, self.common_name, issuers):  # other entries are kept
            return
        common_name = self.common_name
        changes = self.stage_cluster(lambda raw: cluster_with_common_name(raw, common_name, issuers))
        self.add(
            "convert-cluster", "convert_cluster", f"Cluster upgrade: declare the certificate by common name '{common_name}' with pinned issuers",
            [cluster.id], changes,
            convert_cluster.Params(cluster_id=cluster.id, common_name=common_name, issuers=issuers),
            "A full PUT without 'certificate' (a PATCH cannot remove it) and with certificateCommonNames (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
            cluster_upgrade=True,
        )

    def goal_secrets_left(self, node_type: NodeTypeView) -> list[str]:
        """The goal's versioned secrets the cleanup may drop from a scale set as the swap left it: only where
        the Key Vault extension observes the goal (it delivers it once converted), never a version the reverse
        proxy declares by thumbprint (:meth:`proxy_keeps`)."""
        snap = self.snapshot
        assert snap.goal is not None
        versionless = snap.goal.versionless_secret_url
        kv = extension_of_type(node_type.raw, *readers.KV_EXTENSION_TYPES)
        observed = readers.observed_certificate_urls(((kv or {}).get("properties") or {}).get("settings") or {})
        if not any(u.rstrip("/").lower() == versionless.rstrip("/").lower() for u in observed):
            return []
        keeps = self.proxy_keeps()
        return [u for u in goal_secret_urls(node_type.raw, versionless) if not keeps(u)]

    def proxy_keeps(self) -> Callable[[str], bool]:
        """Whether a VMSS secret must stay because the reverse proxy declares its certificate by thumbprint (primary
        or secondary): the conversion leaves ``reverseProxyCertificate`` as it is, and a node created later (scale-out,
        reimage) gets only what the model delivers (microsoft/service-fabric#1007: after an image upgrade, seed nodes
        failed on an unusable reverse-proxy certificate). Each version counts on its own: after a renewal (from another
        issuer, or a re-keyed one) the proxy still declares the version it was given, not the latest. A secret whose
        certificate discovery could not read stays while a declared thumbprint is not matched to a secret."""
        snap = self.snapshot
        declared = set(snap.cluster.reverse_proxy_thumbprints) if snap.cluster is not None else set()
        by_url = {k.secret_url.lower(): k.thumbprint for k in snap.known_certificates.values() if k.secret_url}
        unmatched = declared - set(by_url.values())

        def keeps(url: str) -> bool:
            thumbprint = by_url.get(url.lower())
            return thumbprint in declared if thumbprint else bool(unmatched)

        return keeps

    def older_goal_versions(self, node_type: NodeTypeView) -> list[str]:
        """Linux: the goal's versions older than the one the delivery step rolled out (every instance presents the
        newest by then: common name, latest NotBefore); the cleanup drops them."""
        snap = self.snapshot
        assert snap.goal is not None
        if not readers.is_linux(node_type.raw):
            return []
        latest, keeps = snap.goal.secret_id.lower(), self.proxy_keeps()
        return [u for u in goal_secret_urls(node_type.raw, snap.goal.versionless_secret_url) if u.lower() != latest and not keeps(u)]

    def cleanup_steps(self, old_thumbprints: set[str]) -> None:
        snap = self.snapshot
        keeps = self.proxy_keeps()  # the reverse proxy's certificates stay delivered (still declared by thumbprint)
        for node_type in snap.node_types:
            # The secrets of the scale set as the swap left it (the staged body, not the observed view).
            urls = [url for url in secret_urls(node_type.raw)
                    if not keeps(url) and any(k.secret_url and k.secret_url.lower() == url.lower() and k.thumbprint in old_thumbprints
                                              for k in snap.known_certificates.values())]
            urls += [url for url in self.goal_secrets_left(node_type) + self.older_goal_versions(node_type) if url not in urls]
            if not urls:
                continue
            changes = self.stage_scale_set(node_type, lambda raw: remove_secrets(raw, urls))
            self.add(
                f"cleanup-secrets:{self.labels[node_type.vmss_id]}", "cleanup_secrets",
                f"Node type {node_type.name}: remove the old certificates' and the goal's versioned VMSS secrets",
                [node_type.vmss_id], changes, cleanup_secrets.Params(vmss_id=node_type.vmss_id, urls=urls),
                "Optional cleanup after the conversion: the Key Vault extension now delivers the goal; removing a VMSS "
                "secret does not remove the certificate from VMs (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq).",
            )

    def goal_secret_note(self) -> None:
        """Cleanup off: say that the goal's versioned secret stays, and why that is harmless."""
        kept = sorted(n.name for n in self.snapshot.node_types if self.goal_secrets_left(n))
        if kept:
            self.notes.append(
                f"cleanup.removeOldSecrets is false: the goal's versioned VMSS secret stays on {', '.join(kept)} after "
                "the conversion (it was kept through the cut-over window). Harmless on Windows: Service Fabric picks the "
                "certificate by common name (the latest NotBefore), so the version the Key Vault extension installs wins; "
                "do not disable or delete that secret version while it is referenced (runbooks/steps/cleanup-secrets.md)."
            )


def make_plan(
    snapshot: Snapshot, spec: PlanSpec, now: dt.datetime | None = None,
    checks: Callable[[Snapshot, PlanSpec, dt.datetime], list[Finding]] | None = None,
) -> Plan:
    """Plan the migration of the snapshot's cluster (pure; no I/O)."""
    now = now or snapshot.taken_at
    if checks is None:
        from .checks import run_checks

        checks = run_checks
    findings = checks(snapshot, spec, now)
    work = copy.deepcopy(snapshot)  # the planner walks the cluster through its upgrades on a copy
    planner = _Planner(work, spec)
    state = states.UNKNOWN
    if work.cluster is not None and work.goal is not None and work.vault is not None and work.node_types:
        state, notes = starting_state(work, planner.goal_thumbprint)
        planner.notes.extend(notes)
        if state != states.UNKNOWN:
            latest = work.goal.facts.thumbprint
            old = {t for t in work.cluster.declared_thumbprints if not goal_equivalent(work, t, latest, spec.goal.pinnedIssuers)}
            if not all(readers.is_linux(n.raw) for n in work.node_types):  # Linux goes without the Key Vault extension
                planner.identity_steps()
            if state != states.ALREADY_COMMON_NAME:
                planner.thumbprint_steps(state)
            planner.swap_steps()
            planner.convert_step()
            if spec.cleanup.removeOldSecrets:
                planner.cleanup_steps(old)
            else:
                planner.goal_secret_note()
    return Plan(
        cluster_id=spec.cluster.id,
        starting_state=state,
        findings=findings,
        steps=planner.steps,
        created_at=now.isoformat(),
        spec_fingerprint=spec.fingerprint(),
        fingerprints=snapshot.fingerprints(),
        notes=planner.notes,
    )
