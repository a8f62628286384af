"""Revocation checks and readers (pure): REVOCATION_UNREACHABLE and GOAL_REVOKED, and the documented
fabricSettings that relax revocation checking (service-fabric-cluster-fabric-settings, Security)."""

from __future__ import annotations

from typing import Any

import pytest

from migrate.checks import run_checks
from migrate.cloud.endpoints import PUBLIC
from migrate.cloud.gateway import Gateway
from migrate.errors import OperationalError
from migrate.readers import revocation_relaxation
from migrate.snapshot import PublicEndpoint, Snapshot
from migrate.spec import PlanSpec
from snapshots import NOW, cluster_view, plan_dict, world

CRL = "http://pki.contoso.example/issuing.crl"


def security(**parameters: str) -> dict[str, Any]:
    return {"properties": {"fabricSettings": [
        {"name": "Security", "parameters": [{"name": k, "value": v} for k, v in parameters.items()]}]}}


@pytest.mark.parametrize("body, relaxed", [
    (security(), False),
    (security(IgnoreCrlOfflineError="true"), True),
    (security(IgnoreCrlOfflineError="False"), False),
    (security(IgnoreSvrCrlOfflineError="true"), False),  # the client side only: a node accepting a peer is a server
    (security(CrlCheckingFlag="0"), True),
    (security(CrlCheckingFlag="0x40000000"), False),
    (security(CrlCheckingFlag="junk"), False),
    ({"properties": {"vmImage": "Linux"}}, True),  # CrlCheckingFlag defaults to 0 on Linux
    ({"properties": {"vmImage": "Linux", **security(CrlCheckingFlag="0x40000000")["properties"]}}, False),
])
def test_revocation_relaxation_reads_the_documented_settings(body: dict[str, Any], relaxed: bool) -> None:
    assert (revocation_relaxation(body) is not None) == relaxed


def offline_world(*, revoked: bool | None = None, reachable: bool = False, body: dict[str, Any] | None = None) -> Snapshot:
    snapshot = world()
    assert snapshot.goal is not None and snapshot.cluster is not None
    snapshot.goal.public_endpoints = [PublicEndpoint("crl", CRL, snapshot.goal.facts.thumbprint, snapshot.goal.facts.subject,
                                                     reachable, "" if reachable else "connection refused", revoked)]
    if body is not None:
        snapshot.cluster.raw["properties"].update(body["properties"])
    return snapshot


def codes(snapshot: Snapshot, **plan: Any) -> set[str]:
    return {f.code for f in run_checks(snapshot, PlanSpec.model_validate(plan_dict(**plan)), NOW)}


def test_an_unreachable_crl_is_an_error_naming_the_url() -> None:
    findings = run_checks(offline_world(), PlanSpec.model_validate(plan_dict()), NOW)
    [finding] = [f for f in findings if f.code == "REVOCATION_UNREACHABLE"]
    assert finding.severity == "error" and CRL in finding.message and "connection refused" in finding.message


def test_relaxed_acknowledged_or_reachable_is_not_an_error() -> None:
    assert "REVOCATION_UNREACHABLE" not in codes(offline_world(body=security(IgnoreCrlOfflineError="true")))
    assert "REVOCATION_UNREACHABLE" not in codes(offline_world(), checks={"acceptUnreachableRevocation": True})
    assert "REVOCATION_UNREACHABLE" not in codes(offline_world(reachable=True, revoked=False))


def test_already_common_name_is_left_to_the_nodes_verdict() -> None:
    snapshot = offline_world()
    snapshot.cluster = cluster_view(common_names=[{"certificateCommonName": "sfprod.contoso.com", "certificateIssuerThumbprint": ""}])
    assert "REVOCATION_UNREACHABLE" not in codes(snapshot)


def test_a_revoked_goal_is_an_error_even_when_acknowledged() -> None:
    assert "GOAL_REVOKED" in codes(offline_world(reachable=True, revoked=True), checks={"acceptUnreachableRevocation": True})


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ldap://ca.contoso.example/cn=crl", "ftp://x/y.crl"])
def test_fetch_public_refuses_anything_but_http_and_https(url: str) -> None:
    gateway = Gateway(PUBLIC["AzureCloud"], credential=None)
    with pytest.raises(OperationalError, match="only http and https"):
        gateway.fetch_public(url)
