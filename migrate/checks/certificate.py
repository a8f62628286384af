"""Checks of the goal certificate and its issuer (presentation and validation, issuer pinning:
https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates)."""

from __future__ import annotations

from typing import Iterator

from ..findings import Finding
from ..x509 import CertFacts
from .catalogue import finding
from .context import Ctx, goal_cn, issuer_list_problem, known_by_url

_PEM = "application/x-pem-file"


# -- the goal certificate -------------------------------------------------------------------------------
def check_goal(ctx: Ctx) -> Iterator[Finding]:
    goal, spec = ctx.snapshot.goal, ctx.spec
    if goal is None:
        if not ctx.problem_about_goal():
            yield finding("RESOURCE_NOT_FOUND", f"the goal certificate '{spec.goal.certificateName}' was not found in {spec.goal.vaultId}",
                          ctx.goal_id, "Check goal.vaultId and goal.certificateName in the plan file.")
        return
    facts, rid, now = goal.facts, ctx.goal_id, ctx.now
    if not goal.enabled:
        yield finding("GOAL_DISABLED", f"the latest version ({goal.version}) of '{goal.name}' is disabled; VMSS deployments and the "
                      "Key Vault extension cannot fetch a disabled version (disabling a version fails deployments: https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management).",
                      rid, "Enable the version in Key Vault, or make an enabled version the latest.")
    if facts.self_signed:
        # https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn: "Self-signed certificates are wholly unsuitable for this purpose."
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
        # runbooks/findings/CLIENT_AUTH_EKU_MISSING.md: public CAs drop the Client Authentication EKU 2025-2027.
        yield finding("CLIENT_AUTH_EKU_MISSING", "the goal certificate has no Client Authentication EKU: node-to-node traffic still "
                      "works, but SFX in a browser, client-certificate callers of port 19080, APIM backends and MITS break.",
                      rid, "Issue from a CA that still includes Client Authentication, or move those callers to other credentials first.")
    if facts.key_type.upper().startswith("EC") and "windows" in {n.os.lower() for n in ctx.snapshot.node_types}:
        # cluster-security-certificates: "at this time, Service Fabric only supports CAPI1 certificates" (NTE_BAD_PROV_TYPE);
        # CAPI1 providers hold RSA keys only, so Windows imports an EC key with CNG.
        yield finding("GOAL_KEY_CNG_ONLY", f"the goal certificate's key is {facts.key_type}: only a CNG key storage provider can hold an "
                      "elliptic-curve key on Windows, and Service Fabric supports CAPI1 keys only (NTE_BAD_PROV_TYPE), so no node "
                      "could present it.", rid,
                      "Issue the goal with an RSA key (policy keyProperties.kty: RSA) whose PFX names a CAPI1 provider, and plan again.")
    if goal.content_type == _PEM and "windows" in {n.os.lower() for n in ctx.snapshot.node_types}:
        yield finding("GOAL_NOT_PFX", "the goal certificate's content type is application/x-pem-file; a Windows VMSS secret "
                      "(osProfile.secrets) expects a PKCS#12 secret.", rid,
                      "Re-import the certificate with content type application/x-pkcs12.")


def _cn_checks(ctx: Ctx) -> Iterator[Finding]:
    facts, declared, rid = ctx.snapshot.goal.facts, ctx.spec.goal.commonName, ctx.goal_id  # type: ignore[union-attr]
    subject_cn = facts.subject_cn
    if declared is not None and declared.strip().upper().startswith("CN="):
        yield finding("CN_MISMATCH", f"goal.commonName '{declared}' starts with 'CN=': Service Fabric matches the bare common name "
                      "exactly, and a 'CN=' prefix finds no certificate (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management).", rid, "Remove the 'CN=' prefix.")
    elif subject_cn is None:
        yield finding("CN_MISMATCH", f"the goal certificate's subject ({facts.subject}) has no common name, so it cannot be declared by "
                      "common name.", rid, "Issue a certificate whose subject has a CN.")
    elif declared is not None and declared != subject_cn:
        hint = " (they differ only in case; presentation matching is case-sensitive)" if declared.lower() == subject_cn.lower() else ""
        yield finding("CN_MISMATCH", f"goal.commonName '{declared}' is not the certificate's subject CN '{subject_cn}'{hint}; nodes "
                      "present only a certificate whose CN equals the declaration exactly (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).",
                      rid, f"Set goal.commonName to '{subject_cn}' or leave it out.")
    if subject_cn and subject_cn.lower() not in {s.lower() for s in facts.sans}:
        yield finding("SAN_MISSING_CN", f"the goal's SANs ({', '.join(facts.sans) or 'none'}) do not include its subject CN "
                      f"'{subject_cn}'; the Key Vault extension links renewals by SAN, and the documentation asks to include the "
                      "CN in the SANs (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management).", rid, "Issue the certificate with its subject CN among its DNS SANs.")


def check_shared_subject(ctx: Ctx) -> Iterator[Finding]:
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
                "can link one to the other, and a node observing both may present the wrong one (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management).",
                ctx.snapshot.vault.id if ctx.snapshot.vault else ctx.spec.goal.vaultId,
                f"Give '{other.name}' distinct names, or keep it in another vault; never observe both on the cluster's nodes.",
            )


def _delivered_certificates(ctx: Ctx) -> Iterator[tuple[str, CertFacts]]:
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
            known = known_by_url(snapshot, secret.certificate_url)
            if known and known.thumbprint not in seen:
                seen.add(known.thumbprint)
                yield f"VMSS secret {secret.certificate_url}", known.facts


def check_newer_same_cn(ctx: Ctx) -> Iterator[Finding]:
    """Presentation (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates): among certificates matching the CN, a node presents the latest NotBefore."""
    goal = ctx.snapshot.goal
    cn = goal_cn(ctx)
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
                "does not remove it from the VMs (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq).",
            )


# -- issuers --------------------------------------------------------------------------------------------
def check_issuers(ctx: Ctx) -> Iterator[Finding]:
    spec, goal = ctx.spec.goal, ctx.snapshot.goal
    problem = issuer_list_problem(list(spec.pinnedIssuers))
    if problem:
        yield finding("ISSUER_LIST_INVALID", f"goal.pinnedIssuers {problem}; SFRP rejects issuer lists that are not comma-separated "
                      "hex or are duplicated (https://github.com/microsoft/service-fabric/tree/master/src/prod/src/managed/Api/Dlls/Microsoft.ServiceFabric.ClusterManagementCommon).", ctx.cluster_id, "Correct goal.pinnedIssuers.")
        return
    if not spec.pinnedIssuers:
        yield finding("ISSUER_PINNING_DISABLED", "no issuer is pinned (goal.allowUnpinnedIssuers): any certificate with the common "
                      "name that chains to a trusted root will be accepted, and the documentation calls pinning a best practice "
                      "(unpinned validation might be phased out; https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn).", ctx.cluster_id,
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
        # https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn: peers accept a CN certificate only if its *direct* issuer is pinned.
        yield finding("ISSUER_NOT_PINNED", f"the goal's direct issuer {issuer.thumbprint} ({issuer.subject}) is not in goal.pinnedIssuers "
                      f"({pinned}): peers would reject the goal once declared by common name (CERT_E_UNTRUSTEDROOT). Service "
                      "Fabric compares the direct issuer, not the root.", ctx.goal_id,
                      f"Add {issuer.thumbprint} to goal.pinnedIssuers (and every issuer a renewal may come from).")


def check_issuer_siblings(ctx: Ctx) -> Iterator[Finding]:
    """Every CA certificate seen with the goal issuer's subject and key must be pinned: a re-issue (same subject
    and key, another thumbprint) verifies the goal too, so a node may build the chain through it, and which one
    Windows picks is undocumented (microsoft/service-fabric#1213; docs/twin.md, "Issuer siblings")."""
    goal, spec = ctx.snapshot.goal, ctx.spec.goal
    if goal is None or goal.issuer is None or not spec.pinnedIssuers:
        return
    pinned = {t.replace(" ", "").upper() for t in spec.pinnedIssuers}
    for sibling in ctx.snapshot.possible_issuers.get(goal.facts.thumbprint, []):
        if sibling.thumbprint == goal.issuer.thumbprint or sibling.thumbprint in pinned:
            continue  # the direct issuer itself is ISSUER_NOT_PINNED's business
        yield finding(
            "ISSUER_PIN_INCOMPLETE",
            f"CA certificate {sibling.thumbprint} ({sibling.subject}, valid to {sibling.not_after:%Y-%m-%d}) has the subject "
            f"and key of the goal's direct issuer {goal.issuer.thumbprint} and is published at the goal's AIA or given in "
            "goal.issuerCertificates, but is not in goal.pinnedIssuers: a node may build the goal's chain through it and "
            "then reject the goal (CERT_E_UNTRUSTEDROOT; microsoft/service-fabric#1213).", ctx.goal_id,
            f"Add {sibling.thumbprint} to goal.pinnedIssuers (every certificate of the issuing CA must be pinned).",
        )


def _issued(child: CertFacts, issuer: CertFacts) -> bool:
    """Name and, when both are known, key identifier agree (the signature was checked where the issuer was fetched)."""
    if child.issuer != issuer.subject:
        return False
    return not (child.authority_key_id and issuer.subject_key_id) or child.authority_key_id == issuer.subject_key_id
