"""The reverse proxy's certificate is part of the health verdict (pure; docs/twin.md, "Reverse proxy certificate").

The reverse proxy runs on every node and identifies itself with the certificate the cluster declares in
``reverseProxyCertificate`` (by thumbprint, with an optional secondary) or ``reverseProxyCertificateCommonNames``
(service-fabric-reverseproxy-configure-secure-communication). Like the cluster certificate, it is looked up only
in ``LocalMachine\\<x509StoreName>`` on Windows (cluster-security-certificates) and must be time-valid with its
private key. A node without one fails: microsoft/service-fabric#1007 (an expired reverse-proxy certificate
declared by thumbprint took seed nodes down after an image upgrade, once the cluster certificate had moved to a
common name). That a node lacking it makes the cluster unhealthy, for a missing as for an expired certificate,
is the pessimistic reading (undocumented). The rule is checked on every node the verdict sees, so new and
reimaged nodes count: they hold only what the scale set's model delivers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .verdict import NodeView, Verdict, usable

if TYPE_CHECKING:
    from ..compute.guest import InstalledCert

RULE = "ReverseProxyCertificateOnEveryNode"
MAX_NODES_NAMED = 5  # the verdict's reasons stay short on large clusters


@dataclass(frozen=True)
class ProxyDeclaration:
    thumbprints: tuple[str, ...] = ()  # upper-case, primary first
    common_names: tuple[str, ...] = ()
    store: str = "My"

    def matches(self, cert: InstalledCert) -> bool:
        """By thumbprint, or by common name: the exact subject CN, as for the cluster certificate's presentation."""
        if self.thumbprints:
            return cert.thumbprint in self.thumbprints
        return (cert.issued.facts.subject_cn or "") in self.common_names

    def describe(self) -> str:
        if self.thumbprints:
            return "thumbprint " + "/".join(self.thumbprints)
        return "common name " + "/".join(self.common_names)


def declared(properties: dict[str, Any]) -> ProxyDeclaration | None:
    """The reverse proxy's certificate declaration of a cluster's properties, or None when it declares none."""
    by_thumbprint = properties.get("reverseProxyCertificate")
    if isinstance(by_thumbprint, dict):
        prints = tuple(str(by_thumbprint[k]).upper() for k in ("thumbprint", "thumbprintSecondary") if by_thumbprint.get(k))
        if prints:
            return ProxyDeclaration(thumbprints=prints, store=str(by_thumbprint.get("x509StoreName") or "My"))
    by_name = properties.get("reverseProxyCertificateCommonNames")
    if isinstance(by_name, dict):
        names = tuple(str(e.get("certificateCommonName")) for e in by_name.get("commonNames") or []
                      if isinstance(e, dict) and e.get("certificateCommonName"))
        if names:
            return ProxyDeclaration(common_names=names, store=str(by_name.get("x509StoreName") or "My"))
    return None


def missing_on(nodes: Iterable[NodeView], declaration: ProxyDeclaration, now: dt.datetime) -> list[tuple[str, str]]:
    """(node, why) for every node that finds no usable certificate for the reverse proxy."""
    out = []
    for node in nodes:
        matching = [c for c in node.store if declaration.matches(c)]
        found = [c for c in matching if c.in_store(declaration.store)]
        if any(usable(c, now) for c in found):
            continue
        if found:
            why = "expired, not yet valid or without a private key"
        elif matching:
            why = f"installed only outside LocalMachine\\{declaration.store}"
        else:
            why = "not installed"
        out.append((node.name, why))
    return out


def judge(verdict: Verdict, properties: dict[str, Any], nodes: Iterable[NodeView], now: dt.datetime) -> None:
    """Mark the verdict Broken, naming the reverse proxy and the nodes, where a node lacks its certificate."""
    declaration = declared(properties)
    if declaration is None:
        return
    missing = missing_on(nodes, declaration, now)
    if not missing:
        return
    verdict.healthy = False
    for node, why in missing[:MAX_NODES_NAMED]:
        verdict.reasons.append(
            f"node {node} finds no certificate for the reverse proxy ({declaration.describe()}: {why}), so the reverse proxy "
            f"cannot start on it (rule: {RULE}; a new or reimaged node gets only what the scale set's model delivers)"
        )
    if len(missing) > MAX_NODES_NAMED:
        verdict.reasons.append(f"{len(missing) - MAX_NODES_NAMED} more node(s) find no certificate for the reverse proxy (rule: {RULE})")
