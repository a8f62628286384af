"""Why the nodes of one upgrade domain fail a certificate upgrade's health check (a pure rule over node views).

SFRP accepts a certificate upgrade and walks upgrade domains; a domain whose nodes cannot take the new
declaration fails its health check and the upgrade rolls back (FailureAction=Rollback). Which phase a problem
surfaces in is undocumented (pessimistic: the first phase that walks the node): a declared certificate that is
not installed, at ``add-to-validation-list``; a common-name conversion from outside the documented starting
states, at ``switch-presentation``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Callable

from .declaration import COMMON_NAME, THUMBPRINT, Declaration, selects_by_not_after
from .verdict import NodeView, present, usable

if TYPE_CHECKING:
    from ..compute.guest import InstalledCert


def _elsewhere(view: NodeView, x509_store_name: str, matches: Callable[[InstalledCert], bool]) -> str:
    """', it is in CurrentUser\\MY, not in LocalMachine\\My where ...' when the certificate sits in another store."""
    others = sorted({str(c.store) for c in view.store if c.store and matches(c) and not c.in_store(x509_store_name)})
    if not others:
        return ""
    return (f" in LocalMachine\\{x509_store_name}: it is in {', '.join(others)}, and Service Fabric finds certificates only in "
            "LocalMachine\\<x509StoreName> (store mismatch: x509StoreName, certificateStoreName and certificateStoreLocation must agree)")


def domain_problems(views: list[NodeView], now: dt.datetime, code_version: str, old: Declaration, new: Declaration, phase: str) -> list[str]:
    """Why the nodes ``views`` (one upgrade domain, before ``phase`` is applied to them) fail the upgrade from
    ``old`` to ``new`` in ``phase``; empty when they take it."""
    problems: list[str] = []
    if phase == "add-to-validation-list":
        problems += _not_installed(views, now, old, new)
    if phase == "switch-presentation" and old.kind == THUMBPRINT and new.kind == COMMON_NAME:
        problems += _conversion_not_ready(views, now, code_version, new)
    return problems


def _not_installed(views: list[NodeView], now: dt.datetime, old: Declaration, new: Declaration) -> list[str]:
    added_thumbprints = [t for t in new.thumbprints if t not in old.thumbprints]
    old_names = {rule.common_name for rule in old.common_names}
    added_names = [rule.common_name for rule in new.common_names if rule.common_name not in old_names]
    install_rule = (
        "install before declaring: the current and the goal certificate must be on every node of every node type "
        "before the declaration changes"
    )
    problems = []
    for view in views:
        # Windows: only LocalMachine\<x509StoreName> of the new declaration counts (docs/twin.md, "Certificate stores").
        in_store = [c for c in view.store if c.in_store(new.store)]
        for thumbprint in added_thumbprints:
            found = next((c for c in in_store if c.thumbprint == thumbprint), None)
            if found is None or not usable(found, now):
                state = "not installed" if found is None else "installed but expired, not yet valid or without its private key"
                elsewhere = _elsewhere(view, new.store, lambda c: c.thumbprint == thumbprint)
                problems.append(f"certificate {thumbprint} is {state} on node {view.name} (node type {view.node_type}){elsewhere}; {install_rule}")
        for name in added_names:
            # Presentation matches the subject CN exactly and case-sensitively (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates).
            if not any(c.issued.facts.subject_cn == name and usable(c, now) for c in in_store):
                elsewhere = _elsewhere(view, new.store, lambda c: c.issued.facts.subject_cn == name)
                problems.append(f"no certificate with subject common name '{name}' (an exact, case-sensitive match) is installed "
                                f"and valid on node {view.name} (node type {view.node_type}){elsewhere}; {install_rule}")
    return problems


def _conversion_not_ready(views: list[NodeView], now: dt.datetime, code_version: str, new: Declaration) -> list[str]:
    """The thumbprint-to-common-name page's starting states: "the cluster is already using the target certificate
    (declared by thumbprint) at the start of the upgrade to CN"."""
    problems = []
    targets = {rule.common_name for rule in new.common_names}
    by_not_after = selects_by_not_after(code_version)
    for view in views:
        chosen = present(view, now, by_not_after).cert
        subject = chosen.issued.facts.subject_cn if chosen else None
        if subject not in targets:
            shown = f"{chosen.thumbprint} (CN '{subject}')" if chosen else "no certificate"
            problems.append(
                f"node {view.name} presents {shown}, not a certificate for {', '.join(sorted(targets))}: the goal "
                "certificate must first be in the cluster by thumbprint, and be the one presented (Thumbprint: Goal; "
                "Goal + secondary Old; or Old + secondary Goal where Goal has the later NotBefore), before converting "
                "the declaration to common name"
            )
    return problems
