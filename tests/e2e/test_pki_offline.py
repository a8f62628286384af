"""Chain and revocation, end to end: discovery fetches the goal's chain and CRLs without credentials, and
an unreachable CRL blocks unless fabricSettings relax it or the plan file acknowledges it (issue 11).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aztwin.scenario import builtin_path
from migrate import commands
from migrate.errors import Blocked
from twinkit import inprocess_session, requests_json, world_json

RELAXED = {"Security": {"IgnoreCrlOfflineError": "true"}}


def relaxed_world(tmp_path: Path) -> Path:
    """pki-offline, with the documented relaxation already in the cluster's fabricSettings."""
    document = yaml.safe_load(builtin_path("pki-offline").read_text(encoding="utf-8"))
    document["name"] = "pki-offline-relaxed"
    document["clusters"][0]["fabricSettings"] = RELAXED
    path = tmp_path / "pki-offline-relaxed.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def codes(result: Any) -> set[str]:
    return {f.code for f in result.plan.findings}


def test_pki_offline_blocks_naming_the_crl_and_fetches_without_credentials(twin_factory: Any) -> None:
    twin = twin_factory("pki-offline")
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert result.exit_code == 3
    [finding] = [f for f in result.plan.findings if f.code == "REVOCATION_UNREACHABLE"]
    assert finding.severity == "error" and "/_pki/contoso-issuing-1.crl" in finding.message
    assert finding.runbook == "findings/REVOCATION_UNREACHABLE.md"
    crls = [e for e in result.snapshot.goal.public_endpoints if e.kind == "crl"]
    assert crls and not any(e.reachable for e in crls) and "504" in crls[0].detail
    pki_requests = [r for r in requests_json(twin)["requests"] if r["path"].startswith("/_pki/")]
    assert {r["path"] for r in pki_requests} >= {"/_pki/contoso-issuing-1.crl", "/_pki/contoso-issuing-1.cer"}
    assert all(r["method"] == "GET" and r["caller"] is None for r in pki_requests)  # no credential was sent


def test_pki_offline_apply_writes_nothing(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("pki-offline")
    with pytest.raises(Blocked):
        commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    assert requests_json(twin)["mutating"] == 0
    assert world_json(twin)["cluster"]["declaration"] == "thumbprint"


def test_the_acknowledgement_unblocks_the_plan(twin_factory: Any, tmp_path: Path) -> None:
    """Plan level only: with the PKI really unreachable from the nodes, applying would break the cluster."""
    twin = twin_factory("pki-offline")
    document = yaml.safe_load(twin.plan_file.read_text(encoding="utf-8"))
    document["checks"] = {"acceptUnreachableRevocation": True}
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = commands.plan(plan_file, session=inprocess_session(twin))
    assert "REVOCATION_UNREACHABLE" not in codes(result)
    assert result.exit_code == 2, [(f.code, f.message) for f in result.plan.findings]
    assert [s.name for s in result.plan.steps][-1] == "convert-cluster"


def test_the_documented_relaxation_converts_healthy(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory(None, scenario_file=relaxed_world(tmp_path))
    session = inprocess_session(twin)
    planned = commands.plan(twin.plan_file, session=session)
    assert "REVOCATION_UNREACHABLE" not in codes(planned) and planned.exit_code == 2
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    mutating = requests_json(twin)["mutating"]
    assert commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session).nothing_to_do
    assert requests_json(twin)["mutating"] == mutating


def test_a_reachable_crl_is_read_and_a_revoked_goal_blocks(twin_factory: Any) -> None:
    twin = twin_factory("goal-primary")
    session = inprocess_session(twin)
    clean = commands.plan(twin.plan_file, session=session)
    goal = clean.snapshot.goal
    assert goal.chain_complete is True and [c.subject_cn for c in goal.chain] == ["Contoso Issuing CA 1", "Contoso Root CA"]
    crls = {e.url.rsplit("/", 1)[-1]: e for e in goal.public_endpoints if e.kind == "crl"}
    assert set(crls) == {"contoso-issuing-1.crl", "contoso-root.crl"}  # the goal's and its intermediate's
    crl = crls["contoso-issuing-1.crl"]
    assert crl.reachable and crl.revoked is False and crl.certificate == goal.facts.thumbprint
    assert not {"REVOCATION_UNREACHABLE", "GOAL_REVOKED"} & codes(clean)
    twin.control().call("POST", "/_emulator/pki/revoke", {"thumbprint": goal.facts.thumbprint})
    revoked = commands.plan(twin.plan_file, session=session)
    assert revoked.exit_code == 3 and "GOAL_REVOKED" in codes(revoked)
