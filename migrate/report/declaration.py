"""The cluster's certificate declaration before and after, in words a reviewer reads at a glance.

Pure: :func:`plan_declaration` folds the cluster steps' property changes over the declaration they start from
(so a saved plan, with no snapshot, still shows it); :func:`run_declaration` folds the changes of the steps
a journal records as done and adds what the last cluster step observed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..readers import issuer_thumbprints

if TYPE_CHECKING:
    from ..journal.model import JournalState
    from ..plan import Change, Plan
    from ..snapshot import Snapshot

# The cluster resource's declaration properties (Microsoft.ServiceFabric/clusters): the cluster certificate
# and the reverse proxy's, each by thumbprint or by common names.
PATHS = ("properties.certificate", "properties.certificateCommonNames",
         "properties.reverseProxyCertificate", "properties.reverseProxyCertificateCommonNames")


@dataclass(frozen=True)
class Line:
    """One declared certificate: ``by`` thumbprint or common name, its value, and the issuers it pins."""

    role: str  # cluster | reverse proxy
    by: str  # thumbprint | thumbprint (secondary) | common name
    value: str
    issuers: tuple[str, ...] = ()
    subject: str = ""  # the certificate's common name, when the snapshot knows it


@dataclass(frozen=True)
class Declaration:
    lines: tuple[Line, ...]
    known: bool = True  # False: nothing tells what it is (no cluster step, no snapshot)

    @property
    def kind(self) -> str:
        cluster = [line for line in self.lines if line.role == "cluster"]
        if not cluster:
            return "unknown" if not self.known else "none"
        return "common name" if all(line.by == "common name" for line in cluster) else "thumbprint"


@dataclass(frozen=True)
class BeforeAfter:
    before: Declaration
    after: Declaration
    changes: bool
    observed: dict[str, Any] = field(default_factory=dict)  # a run: what the last cluster step saw
    observed_by: str = ""  # that step's name


def _lines(properties: Mapping[str, Any], names: Mapping[str, str]) -> tuple[Line, ...]:
    out: list[Line] = []
    for role, thumb_key, names_key in (("cluster", "certificate", "certificateCommonNames"),
                                       ("reverse proxy", "reverseProxyCertificate", "reverseProxyCertificateCommonNames")):
        by_thumbprint = properties.get(thumb_key)
        if isinstance(by_thumbprint, Mapping):
            for key, label in (("thumbprint", "thumbprint"), ("thumbprintSecondary", "thumbprint (secondary)")):
                value = by_thumbprint.get(key)
                if isinstance(value, str) and value:
                    out.append(Line(role, label, value.upper(), (), names.get(value.upper(), "")))
        by_name = properties.get(names_key)
        entries = by_name.get("commonNames") if isinstance(by_name, Mapping) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, Mapping) and entry.get("certificateCommonName"):
                out.append(Line(role, "common name", str(entry["certificateCommonName"]),
                                tuple(issuer_thumbprints(entry.get("certificateIssuerThumbprint")))))
    return tuple(out)


def _fold(start: Mapping[str, Any], changes: Iterable[Change]) -> dict[str, Any]:
    properties = dict(start)
    for change in changes:
        if change.path in PATHS:
            properties[change.path.split(".", 1)[1]] = change.after
    return properties


def _start(changes: list[Change]) -> dict[str, Any]:
    """Each declaration property as the first change to it found it."""
    start: dict[str, Any] = {}
    for change in changes:
        if change.path in PATHS:
            start.setdefault(change.path.split(".", 1)[1], change.before)
    return start


def names_from_snapshot(snapshot: Snapshot | None) -> dict[str, str]:
    """Thumbprint -> subject common name of every certificate the snapshot knows."""
    if snapshot is None:
        return {}
    return {t.upper(): k.facts.subject_cn or "" for t, k in snapshot.known_certificates.items() if k.facts.subject_cn}


def _snapshot_properties(snapshot: Snapshot | None) -> dict[str, Any] | None:
    if snapshot is None or snapshot.cluster is None:
        return None
    raw = snapshot.cluster.raw.get("properties") or {}
    return {key.split(".", 1)[1]: raw.get(key.split(".", 1)[1]) for key in PATHS}


def plan_declaration(plan: Plan, snapshot: Snapshot | None = None) -> BeforeAfter:
    """The declaration the plan starts from (the snapshot's, else what its cluster steps change) and the one
    it leaves once every step is applied."""
    names = names_from_snapshot(snapshot)
    changes = [c for step in plan.steps if step.cluster_upgrade for c in step.changes]
    start = _snapshot_properties(snapshot)
    known = start is not None or bool(changes)
    if start is None:
        start = _start(changes)
    before = Declaration(_lines(start, names), known)
    after = Declaration(_lines(_fold(start, changes), names), known)
    return BeforeAfter(before, after, before != after)


def run_declaration(state: JournalState) -> BeforeAfter:
    """Before the run (what its first cluster step changed), and after the steps the journal records as done."""
    records = [r for r in state.steps if r.step is not None and r.step.cluster_upgrade]
    all_changes = [c for r in records if r.step is not None for c in r.step.changes]
    start = _start(all_changes)
    done = [c for r in records if r.status == "done" and r.step is not None for c in r.step.changes]
    before = Declaration(_lines(start, {}), bool(all_changes))
    after = Declaration(_lines(_fold(start, done), {}), bool(all_changes))
    observed_by = next((r for r in reversed(records) if r.status == "done" and r.observed), None)
    observed = {k: ", ".join(str(i) for i in v) if isinstance(v, list) else v
                for k, v in (observed_by.observed if observed_by else {}).items()
                if k in ("declaration", "common_name", "issuers", "thumbprint", "thumbprintSecondary", "cluster_state")}
    return BeforeAfter(before, after, before != after, observed, observed_by.name if observed_by else "")
