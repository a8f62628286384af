"""Preflight checks: pure functions from (snapshot, plan file, now) to findings. No I/O.

Every finding has a stable ``code`` (a contract: pipelines and runbooks key on it), one severity per code
(``error`` blocks apply), a message saying what and why with the rule it rests on, the resource it is
about, a remedy, and a runbook page ``findings/<CODE>.md``. :data:`CATALOGUE` lists every code.

Rules cite the Microsoft Learn pages that state them, or the runbook page that explains them. Modules: ``catalogue`` (the
codes), ``context`` (the inputs and shared helpers), ``cluster`` (cluster, node types, discovery problems),
``certificate`` (the goal and its issuer), ``access`` (Key Vault extension settings, vault, identity, cleanup).
"""

from __future__ import annotations

import datetime as dt

from ..findings import Finding, sort_findings
from ..snapshot import Snapshot
from ..spec import PlanSpec
from .access import check_certificate_stores, check_cleanup, check_extension_spec, check_identity, check_vault
from .catalogue import CATALOGUE, RUNBOOK_DIR, finding, runbook
from .certificate import check_goal, check_issuer_siblings, check_issuers, check_newer_same_cn, check_shared_subject
from .cluster import check_cluster, check_existing_issuer_lists, check_node_types, check_problems
from .context import Check, Ctx
from .revocation import check_revocation
from .network import check_vault_network
from .old_certificate import check_old_certificate_expiry

CHECKS: tuple[Check, ...] = (
    check_problems, check_cluster, check_existing_issuer_lists, check_node_types, check_extension_spec, check_certificate_stores,
    check_goal, check_shared_subject, check_newer_same_cn, check_issuers, check_vault, check_identity, check_cleanup,
    check_revocation,
    check_issuer_siblings,
    check_vault_network,
    check_old_certificate_expiry,
)


def run_checks(snapshot: Snapshot, spec: PlanSpec, now: dt.datetime) -> list[Finding]:
    """Every finding for this snapshot and plan file, sorted (errors first) and de-duplicated."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    ctx = Ctx(snapshot, spec, now)
    out: list[Finding] = []
    for check in CHECKS:
        for item in check(ctx):
            if item not in out:
                out.append(item)
    return sort_findings(out)


__all__ = ["CATALOGUE", "CHECKS", "RUNBOOK_DIR", "finding", "run_checks", "runbook"]
