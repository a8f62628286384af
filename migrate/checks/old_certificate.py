"""The remaining life of the certificate the cluster declares by thumbprint today (pure; issue 11).

Nodes ignore an expired certificate for presentation (cluster-security-certificates: expired certificates are
not considered), so a cluster whose only declared certificate expires before the goal is declared cannot
authenticate its nodes: the migration must finish (or the goal be declared by thumbprint) before then.
"""

from __future__ import annotations

import math
from typing import Iterator

from ..findings import Finding
from .catalogue import finding
from .context import Ctx

CLUSTER_SECURITY_URL = "https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates"


def _days(days: float) -> str:
    """Whole days left, rounded up (a certificate with 11.6 days left "expires in 12 days")."""
    whole = math.ceil(days)
    return f"{whole} day" if whole == 1 else f"{whole} days"


def _goal_declared(ctx: Ctx) -> bool:
    """Is a version of the goal among the declared thumbprints (same subject CN and issuer as the latest version)?"""
    snapshot = ctx.snapshot
    cluster, goal = snapshot.cluster, snapshot.goal
    if cluster is None or goal is None:
        return False
    for thumbprint in cluster.declared_thumbprints:
        if thumbprint == goal.facts.thumbprint:
            return True
        known = snapshot.certificate(thumbprint)
        if known is not None and known.facts.subject_cn == goal.facts.subject_cn and known.facts.issuer == goal.facts.issuer:
            return True
    return False


def check_old_certificate_expiry(ctx: Ctx) -> Iterator[Finding]:
    """OLD_CERT_EXPIRING (warning) within checks.expiryWarningDays; OLD_CERT_EXPIRED (error) once expired while the
    goal is not yet declared. The goal's own latest version is GOAL_EXPIRING's business."""
    snapshot = ctx.snapshot
    cluster = snapshot.cluster
    if cluster is None:
        return
    goal_thumbprint = snapshot.goal.facts.thumbprint if snapshot.goal else None
    warn_days = ctx.spec.checks.expiryWarningDays
    goal_declared = _goal_declared(ctx)
    for thumbprint in cluster.declared_thumbprints:
        known = snapshot.certificate(thumbprint)
        if known is None or thumbprint == goal_thumbprint:
            continue
        facts = known.facts
        days = facts.days_left(ctx.now)
        what = f"the certificate the cluster declares by thumbprint, {thumbprint} ({facts.subject_cn or facts.subject}),"
        if days < 0 and not goal_declared:
            yield finding(
                "OLD_CERT_EXPIRED",
                f"{what} expired on {facts.not_after.isoformat()} and the goal is not declared yet: nodes ignore an expired "
                f"certificate, so they have no certificate to present ({CLUSTER_SECURITY_URL}); the migration's upgrades need a "
                "cluster whose nodes authenticate each other.",
                cluster.id,
                "Recover the cluster first (runbooks/findings/OLD_CERT_EXPIRED.md), then plan again.",
            )
        elif days < warn_days:
            when = f"expired on {facts.not_after.isoformat()}" if days < 0 else (
                f"expires in {_days(days)} ({facts.not_after.isoformat()})")
            yield finding(
                "OLD_CERT_EXPIRING",
                f"{what} {when}, within checks.expiryWarningDays ({warn_days}). Nodes ignore an expired certificate "
                f"({CLUSTER_SECURITY_URL}): finish the migration, at least up to declaring the goal, before then.",
                cluster.id,
                "Apply now, or declare the goal by thumbprint first (runbooks/findings/OLD_CERT_EXPIRING.md).",
            )
