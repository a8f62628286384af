"""What every check reads: the snapshot, the plan file and the time, plus small shared helpers (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable

from ..arm_ids import name_of
from ..findings import Finding
from ..snapshot import KnownCertificate, Snapshot
from ..spec import PlanSpec
from ..x509 import normalise_thumbprint


@dataclass(frozen=True)
class Ctx:
    """The inputs of one preflight run."""

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
        vault_name = name_of(self.spec.goal.vaultId).lower()
        return self.problem_about(self.goal_id) or any(
            f"//{vault_name}." in p.resource_id.lower() for p in self.snapshot.problems
        )

    def oses(self) -> set[str]:
        """The operating systems of the node types (both when none were found: check every setting)."""
        found = {n.os.lower() for n in self.snapshot.node_types}
        return found or {"windows", "linux"}


Check = Callable[[Ctx], Iterable[Finding]]


def goal_cn(ctx: Ctx) -> str | None:
    goal = ctx.snapshot.goal
    return ctx.spec.goal.commonName or (goal.facts.subject_cn if goal else None)


def issuer_list_problem(items: list[str]) -> str | None:
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


def known_by_url(snapshot: Snapshot, url: str) -> KnownCertificate | None:
    wanted = url.rstrip("/").lower()
    for known in snapshot.known_certificates.values():
        if known.secret_url and known.secret_url.rstrip("/").lower() == wanted:
            return known
    return None


def major(version: str | None) -> int:
    try:
        return int(str(version or "0").split(".")[0])
    except ValueError:
        return 0
