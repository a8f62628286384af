"""Would the cluster hold together? Presentation and validation on every node (pure functions).

https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates: a node presents, among the certificates matching its presentation declaration, the one with the
latest NotBefore (NotAfter before 7.2 CU4), ignoring expired ones; common-name matching is exact and
case-sensitive. A peer accepts it by thumbprint, or by common name (case-insensitive, a declared '*.'
wildcard covering one label) whose *direct issuer* is pinned, or, with no pinned issuers, whose chain
reaches a trusted root. S-channel follows a renewal link (linkOnRenewal), and Service Fabric cannot use a
CNG key (NTE_BAD_PROV_TYPE). On Windows a node finds its certificates only in ``LocalMachine\\<x509StoreName>``
of the cluster's declaration (cluster-security-certificates; docs/twin.md, "Certificate stores").
"""

from __future__ import annotations

import datetime as dt
import heapq
from itertools import repeat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from ..compute import linux
from .chain import ChainPolicy, chain_problem
from .declaration import COMMON_NAME, THUMBPRINT, Declaration, ValidationList

if TYPE_CHECKING:
    from ...pki import Issued
    from ..compute.guest import InstalledCert

#: An issuing CA's re-issues a node can find (same subject and key, published at its AIA): docs/twin.md, "Issuer siblings".
IssuerSiblings = Callable[["Issued"], Sequence["Issued"]]


def no_siblings(issuer: Issued) -> Sequence[Issued]:
    return ()


@dataclass
class NodeView:
    name: str
    node_type: str
    update_domain: int
    store: list[InstalledCert]
    presentation: Declaration
    validation: ValidationList
    linux: bool = False
    waagent_removed: dict[str, str] = field(default_factory=dict)  # Linux: thumbprint -> when waagent removed it


@dataclass
class Presented:
    cert: InstalledCert | None
    reason: str = ""
    linked_from: str | None = None  # the declared certificate S-channel left for ``cert`` (linkOnRenewal)


@dataclass
class Verdict:
    healthy: bool
    reasons: list[str] = field(default_factory=list)
    presented: dict[str, str | None] = field(default_factory=dict)  # node -> thumbprint

    @property
    def health(self) -> str:
        return "Healthy" if self.healthy else "Broken"


def _valid(cert: InstalledCert, now: dt.datetime) -> bool:
    facts = cert.issued.facts
    return facts.not_before <= now <= facts.not_after


def usable(cert: InstalledCert, now: dt.datetime) -> bool:
    """A certificate a node can present: time-valid, with its private key."""
    return _valid(cert, now) and cert.has_private_key


def present(node: NodeView, now: dt.datetime, by_not_after: bool) -> Presented:
    declaration = node.presentation
    if declaration.kind == THUMBPRINT:
        matching = [c for c in node.store if c.thumbprint in declaration.thumbprints]
        wanted = "thumbprint " + "/".join(declaration.thumbprints)
    elif declaration.kind == COMMON_NAME:
        names = {rule.common_name for rule in declaration.common_names}
        matching = [c for c in node.store if c.issued.facts.subject_cn in names]
        wanted = "common name " + "/".join(sorted(names))
    else:
        return Presented(None, f"node {node.name} has no certificate declaration")
    candidates = [c for c in matching if c.in_store(declaration.store)]
    candidates_usable = [c for c in candidates if usable(c, now)]
    if not candidates_usable:
        detail = "expired or without a private key" if candidates else "not installed"
        elsewhere = sorted({str(c.store) for c in matching if c.store and not c.in_store(declaration.store) and usable(c, now)})
        if elsewhere:  # key-vault-windows installs where certificateStoreName/-Location say; SF reads LocalMachine only
            detail += (f"; a usable one is installed only in {', '.join(elsewhere)}, and Service Fabric finds certificates "
                       f"only in LocalMachine\\{declaration.store} (store mismatch: x509StoreName, certificateStoreName "
                       "and certificateStoreLocation must agree)")
        if node.linux:  # only waagent's files and /var/lib/sfcerts count (docs/twin.md, "Linux node types")
            wanted_thumbprints = set(declaration.thumbprints) if declaration.kind == THUMBPRINT else set()
            detail += linux.hint(node.store, lambda c: c in matching, node.waagent_removed, wanted_thumbprints)
        return Presented(None, f"node {node.name} finds no certificate for {wanted} ({detail}) and cannot present one"
                         + (_autorefresh_hint(node) if declaration.kind == THUMBPRINT and not node.linux else ""))
    # https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates: the latest NotBefore wins (7.2 CU4+); before that, the farthest NotAfter.
    key = (lambda c: c.issued.facts.not_after) if by_not_after else (lambda c: c.issued.facts.not_before)
    declared = max(candidates_usable, key=key)
    chosen, seen = declared, {declared.thumbprint}
    while chosen.linked_to:  # S-channel follows CERT_RENEWAL_PROP_ID regardless of subject or issuer (seed 003)
        target = next((c for c in node.store if c.thumbprint == chosen.linked_to), None)
        if target is None or target.thumbprint in seen:
            break
        seen.add(target.thumbprint)
        chosen = target
    linked_from = declared.thumbprint if chosen is not declared else None
    via = f" (S-channel followed the renewal link from {declared.thumbprint}: linkOnRenewal)" if linked_from else ""
    if not chosen.has_private_key:
        return Presented(None, f"node {node.name} cannot use certificate {chosen.thumbprint}{via}: no private key (SEC_E_UNKNOWN_CREDENTIALS)", linked_from)
    if chosen.key_provider == "CNG":
        return Presented(
            None,
            f"node {node.name} cannot use certificate {chosen.thumbprint}{via}: its key is a CNG key and Service Fabric "
            "supports CAPI1 only (NTE_BAD_PROV_TYPE, Key Vault extension 4.x)",
            linked_from,
        )
    return Presented(chosen, linked_from=linked_from)


def _autorefresh_hint(node: NodeView) -> str:
    """Name the rule when the node holds only what the Key Vault extension installed: it installs a
    certificate's latest version, so a node created after a renewal lacks the declared thumbprint (SF docs:
    no autorefresh provisioning for certificates declared by thumbprint)."""
    refreshed = [c.thumbprint for c in node.store if c.source == "kv-extension"]
    if not refreshed:
        return ""
    return (f"; it holds {', '.join(refreshed)} from the Key Vault extension, which installs the latest version: "
            "an autorefreshed certificate declared by thumbprint (rule: no autorefresh for thumbprint declarations)")


def cn_matches(subject: str, declared: str) -> bool:
    """Validation's common-name match: case-insensitive, and a declared '*.' wildcard covers one label."""
    subject, declared = subject.lower(), declared.lower()
    if subject == declared:
        return True
    return declared.startswith("*.") and "." in subject and subject.split(".", 1)[1] == declared[2:]


def accepts(validation: ValidationList, cert: InstalledCert, now: dt.datetime, trusted_roots: set[str],
            chain: ChainPolicy | None = None, issuer_siblings: IssuerSiblings = no_siblings) -> tuple[bool, str]:
    facts = cert.issued.facts
    if not _valid(cert, now):
        return False, f"certificate {cert.thumbprint} is expired or not yet valid"
    if cert.thumbprint in validation.thumbprints:
        return True, ""
    if chain is not None and any(cn_matches(facts.subject_cn or "", r.common_name) for r in validation.common_names):
        problem = chain_problem(cert.issued, now, chain)  # by common name only (chain.py: partial chain, revocation)
        if problem:
            return False, problem
    reasons = []
    for rule in validation.common_names:
        if not cn_matches(facts.subject_cn or "", rule.common_name):
            continue
        issuer = cert.issued.issuer
        if rule.issuers:
            issuer_thumbprint = issuer.thumbprint if issuer else cert.thumbprint
            # A same-subject, same-key re-issue of the issuer verifies the same signature, so the chain may go
            # through either (SF troubleshooting guide "Common Name Digicert Multiple Issuer Thumbprints";
            # microsoft/service-fabric#1213); which one Windows picks is undocumented: every one must be pinned.
            unpinned = [s for s in (issuer_siblings(issuer) if issuer else ()) if s.thumbprint not in rule.issuers]
            if issuer_thumbprint in rule.issuers and unpinned:
                reasons.append(
                    f"its chain may build through {unpinned[0].thumbprint} ({unpinned[0].facts.subject_cn}), a re-issue of its "
                    f"direct issuer {issuer_thumbprint} with the same subject and key published at its AIA, which is not "
                    f"among the pinned issuers {', '.join(rule.issuers)} of '{rule.common_name}' (CERT_E_UNTRUSTEDROOT; "
                    "pin every issuer sibling)"
                )
                continue
            if issuer_thumbprint in rule.issuers:
                return True, ""
            reasons.append(
                f"its direct issuer {issuer_thumbprint} ({facts.issuer_cn}) is not among the pinned issuers "
                f"{', '.join(rule.issuers)} of '{rule.common_name}' (CERT_E_UNTRUSTEDROOT)"
            )
        else:
            root = cert.issued.root()
            if root is not cert.issued and root.thumbprint in trusted_roots:
                return True, ""
            reasons.append(f"its chain does not build to a trusted root and no issuer is pinned for '{rule.common_name}'")
    if not reasons:
        reasons.append(
            f"neither its thumbprint nor its subject CN '{facts.subject_cn}' is in the validation list "
            f"{validation.public()}"
        )
    return False, "; ".join(reasons)


def evaluate(nodes: Iterable[NodeView], now: dt.datetime, by_not_after: bool, trusted_roots: set[str],
             chain: ChainPolicy | None = None, issuer_siblings: IssuerSiblings = no_siblings) -> Verdict:
    nodes = list(nodes)
    verdict = Verdict(True)
    presented: list[Presented] = []
    for node in nodes:
        shown = present(node, now, by_not_after)
        presented.append(shown)
        verdict.presented[node.name] = shown.cert.thumbprint if shown.cert else None
        if shown.cert is None:
            verdict.healthy = False
            verdict.reasons.append(shown.reason)
    # Mutual authentication: every validator must accept every other node's presented certificate. Acceptance
    # depends only on (validation list, certificate), so it is judged once per distinct pair (docs/twin.md, "Big
    # worlds"): nodes are grouped by validation list, in the order they first appear.
    holders: dict[ValidationList, list[int]] = {}
    for index, node in enumerate(nodes):
        holders.setdefault(node.validation, []).append(index)
    groups = list(holders.items())
    judged: dict[tuple[int, str], tuple[bool, str]] = {}
    for sender_index, shown in enumerate(presented):
        cert = shown.cert
        if cert is None:
            continue
        rejecting: list[tuple[list[int], str]] = []
        for group, (validation, members) in enumerate(groups):
            if len(members) == 1 and members[0] == sender_index:
                continue  # a node does not validate itself
            key = (group, cert.thumbprint)
            if key not in judged:
                judged[key] = accepts(validation, cert, now, trusted_roots, chain, issuer_siblings)
            accepted, why = judged[key]
            if not accepted:
                rejecting.append((members, why))
        if not rejecting:
            continue
        verdict.healthy = False
        if len(verdict.reasons) >= 12:
            continue
        sender = nodes[sender_index]
        via = f" (S-channel followed the renewal link from {shown.linked_from}: linkOnRenewal)" if shown.linked_from else ""
        # the receivers in node order, as a pairwise walk would name them
        for receiver_index, why in heapq.merge(*(zip(members, repeat(why)) for members, why in rejecting)):
            if receiver_index == sender_index:
                continue
            if len(verdict.reasons) >= 12:
                break
            verdict.reasons.append(f"node {nodes[receiver_index].name} rejects {cert.thumbprint} presented by node {sender.name}{via}: {why}")
    return verdict
