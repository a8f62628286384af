"""OLD_CERT_EXPIRING / OLD_CERT_EXPIRED: the remaining life of the certificate the cluster declares by thumbprint."""

from __future__ import annotations

from typing import Callable

from migrate.checks import run_checks
from migrate.findings import Finding
from migrate.snapshot import Snapshot
from migrate.spec import PlanSpec
from snapshots import NOW, OLD_NAME, cluster_view, goal_cert, known, leaf, plan, world

OLD_VERSION_SOON = "1b2c3d4e5f60718293a4b5c6d7e8f90a"


def old_cert_world(days_left: int, *, goal_secondary: bool = False) -> Snapshot:
    """The baseline world whose declared (self-signed) old certificate has ``days_left`` days left (negative: expired
    that long ago); ``goal_secondary`` declares the goal beside it."""
    old = leaf(f"old-{days_left}", cn="sfprod-old.contoso.com", issuer=None, valid_from_days=days_left - 365, valid_days=365)
    snapshot = world(cluster=cluster_view(thumbprint=old.thumbprint, secondary=goal_cert().thumbprint if goal_secondary else None))
    snapshot.known_certificates[old.thumbprint] = known(old, OLD_NAME, OLD_VERSION_SOON)
    return snapshot


def old_cert_case(days_left: int, *, goal_secondary: bool = False, **plan_overrides: object) -> Callable[[], tuple[Snapshot, PlanSpec]]:
    """A test_checks.py case (snapshot, plan file)."""
    return lambda: (old_cert_world(days_left, goal_secondary=goal_secondary), plan(**plan_overrides))


def _codes(snapshot: Snapshot, spec: PlanSpec | None = None) -> dict[str, Finding]:
    return {f.code: f for f in run_checks(snapshot, spec or plan(), NOW) if f.code.startswith("OLD_CERT_")}


def test_an_old_certificate_with_12_days_left_warns_with_the_days_left() -> None:
    found = _codes(old_cert_world(12))
    assert set(found) == {"OLD_CERT_EXPIRING"}
    warning = found["OLD_CERT_EXPIRING"]
    assert warning.severity == "warning" and "expires in 12 days" in warning.message
    assert "checks.expiryWarningDays (30)" in warning.message and warning.runbook == "findings/OLD_CERT_EXPIRING.md"


def test_the_threshold_is_checks_expiry_warning_days() -> None:
    assert _codes(old_cert_world(40)) == {}
    assert set(_codes(old_cert_world(40), plan(checks={"expiryWarningDays": 60}))) == {"OLD_CERT_EXPIRING"}
    assert _codes(old_cert_world(12), plan(checks={"expiryWarningDays": 10})) == {}


def test_an_expired_old_certificate_without_the_goal_declared_is_an_error() -> None:
    found = _codes(old_cert_world(-3))
    assert set(found) == {"OLD_CERT_EXPIRED"} and found["OLD_CERT_EXPIRED"].severity == "error"
    assert "expired on" in found["OLD_CERT_EXPIRED"].message


def test_an_expired_old_certificate_beside_the_declared_goal_only_warns() -> None:
    found = _codes(old_cert_world(-3, goal_secondary=True))
    assert set(found) == {"OLD_CERT_EXPIRING"} and "expired on" in found["OLD_CERT_EXPIRING"].message


def test_the_goal_itself_is_not_an_old_certificate() -> None:
    goal = leaf("goal-soon", valid_from_days=-355, valid_days=365)
    snapshot = world(cluster=cluster_view(thumbprint=goal.thumbprint))
    from snapshots import goal_view

    snapshot.goal = goal_view(goal)
    snapshot.known_certificates[goal.thumbprint] = known(goal, "sfprod-cluster", "v")
    assert _codes(snapshot) == {}  # GOAL_EXPIRING's business


def test_an_unknown_old_certificate_says_nothing() -> None:
    snapshot = old_cert_world(12)
    snapshot.known_certificates.clear()
    assert _codes(snapshot) == {}
