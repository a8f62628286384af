"""Chain and revocation of the goal: what nodes need once they validate it by common name.

cluster-security-certificates (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates):
for common-name declarations "revocation errors, partial chain or time-invalid trust errors are considered
fatal"; thumbprint declarations never needed the CRL, so the conversion is where an unreachable one bites.
The documented relaxations (service-fabric-cluster-fabric-settings, Security: ``CrlCheckingFlag`` 0,
``IgnoreCrlOfflineError`` true) are read from the cluster body by ``readers.revocation_relaxation``.
"""

from __future__ import annotations

from typing import Iterator

from ..findings import Finding
from ..readers import COMMON_NAME, revocation_relaxation
from .catalogue import finding
from .context import Ctx


def check_revocation(ctx: Ctx) -> Iterator[Finding]:
    goal, cluster = ctx.snapshot.goal, ctx.snapshot.cluster
    if goal is None or goal.facts.self_signed:
        return  # RESOURCE_NOT_FOUND or GOAL_SELF_SIGNED says why
    crls = [e for e in goal.public_endpoints if e.kind == "crl"]
    for endpoint in crls:
        if endpoint.revoked:
            yield finding("GOAL_REVOKED", f"certificate {endpoint.certificate} ({endpoint.subject}) of the goal's chain is on the CRL at "
                          f"{endpoint.url}: nodes validating by common name reject it (CRYPT_E_REVOKED).", ctx.goal_id,
                          "Issue a new goal certificate (from a CA that is not revoked) and point goal.certificateName at it.")
    unreachable = [e for e in crls if not e.reachable]
    if not unreachable or ctx.spec.checks.acceptUnreachableRevocation:
        return
    if cluster is None or cluster.declaration == COMMON_NAME:
        return  # already by common name: the nodes' own verdict already says whether they reach it
    relaxed = revocation_relaxation(cluster.raw)
    if relaxed:
        return
    listed = "; ".join(f"{e.url} (for {e.subject}: {e.detail})" for e in unreachable)
    yield finding("REVOCATION_UNREACHABLE", f"the CRL of the goal's chain could not be fetched from here: {listed}. Once the cluster "
                  "validates the goal by common name, a node that cannot check revocation rejects it (CRYPT_E_REVOCATION_OFFLINE: "
                  "revocation errors are fatal for common-name declarations), and the cluster's fabricSettings do not relax it "
                  "(Security/CrlCheckingFlag, Security/IgnoreCrlOfflineError).", ctx.goal_id,
                  "Make the CRL Distribution Points reachable from the nodes (and from here), or relax revocation checking in "
                  "fabricSettings first, or, if the nodes do reach them, set checks.acceptUnreachableRevocation: true.")
