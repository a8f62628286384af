"""Issuer siblings and a goal renewed by another pinned CA (issue 11), end to end against the twin.

``issuer-shared-key``: the goal's issuing CA has a same-subject, same-key re-issue published in the .p7c at
the goal's AIA; pinning one of them is ISSUER_PIN_INCOMPLETE (exit 3, zero writes), pinning both converts.
``goal-from-other-ca``: the cluster declares an earlier version of the goal from CA 1, the latest comes from
CA 2, both pinned: that version counts as the goal, so the only cluster upgrade is the conversion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migrate import commands
from twinkit import inprocess_session, requests_json, world_json


def _authority(twin: Any, name: str) -> str:
    return next(a["thumbprint"] for a in world_json(twin)["pki"] if a["name"] == name)


def test_pinning_one_of_two_same_key_issuers_blocks_the_plan_naming_the_other(twin_factory: Any) -> None:
    twin = twin_factory("issuer-shared-key")
    sibling = _authority(twin, "contoso-issuing-1-r2")
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert result.exit_code == 3
    [incomplete] = [f for f in result.plan.findings if f.code == "ISSUER_PIN_INCOMPLETE"]
    assert incomplete.severity == "error" and sibling in incomplete.message and sibling in incomplete.remedy
    assert not any(f.code == "ISSUER_NOT_PINNED" for f in result.plan.findings)  # the direct issuer is pinned
    log = requests_json(twin)
    assert log["mutating"] == 0
    assert any(r["path"].endswith(".p7c") for r in log["requests"])  # the bundle was read, without credentials
    assert all(r.get("caller") is None for r in log["requests"] if r["path"].startswith("/_pki"))


def test_pinning_both_same_key_issuers_converts_and_a_rerun_writes_nothing(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("issuer-shared-key")
    both = [_authority(twin, "contoso-issuing-1"), _authority(twin, "contoso-issuing-1-r2")]
    document = yaml.safe_load(twin.plan_file.read_text())
    document["goal"]["pinnedIssuers"] = both
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(document))
    session = inprocess_session(twin)
    result = commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    assert not any(f.code.startswith("ISSUER_") for f in result.plan.findings), result.plan.findings
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["cluster_state"] == "Ready"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    [common] = cluster["certificateCommonNames"]["commonNames"]
    assert common["certificateIssuerThumbprint"].split(",") == both
    before = requests_json(twin)["mutating"]
    again = commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    assert again.nothing_to_do and requests_json(twin)["mutating"] == before


def test_a_goal_version_from_another_pinned_ca_counts_as_the_goal(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("goal-from-other-ca")
    session = inprocess_session(twin)
    plan = commands.plan(twin.plan_file, session=session).plan
    assert plan.starting_state == "VALID_GOAL_NEWEST"
    upgrades = [s.name for s in plan.steps if s.cluster_upgrade]
    assert upgrades == ["convert-cluster"], upgrades  # no drop-old-certificate, no declare-goal-secondary
    assert not any(s.kind in ("stage_goal", "set_cluster_certificate") for s in plan.steps)
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    vault = next(v for v in world_json(twin)["vaults"] if v["name"] == "kv-sf-other-ca")
    goal_versions = next(c for c in vault["certificates"] if c["name"] == "cluster-cert")["versions"]
    presented = {n["presents"] for nt in cluster["node_types"] for n in nt["nodes"]}
    assert presented == {goal_versions[-1]["thumbprint"]}  # every node presents the latest version (from CA 2)
    before = requests_json(twin)["mutating"]
    again = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert again.nothing_to_do and requests_json(twin)["mutating"] == before


def test_without_the_other_ca_pinned_the_earlier_version_does_not_count(twin_factory: Any, tmp_path: Path) -> None:
    """The same world pinning only CA 2: the earlier version (CA 1) is an old certificate (TWO_OLD), as before."""
    twin = twin_factory("goal-from-other-ca")
    document = yaml.safe_load(twin.plan_file.read_text())
    document["goal"]["pinnedIssuers"] = [_authority(twin, "contoso-issuing-2")]
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(document))
    plan = commands.plan(plan_file, session=inprocess_session(twin)).plan
    assert plan.starting_state == "TWO_OLD"
    assert len([s for s in plan.steps if s.cluster_upgrade]) == 3


def test_the_earlier_version_declared_alone_converts_without_a_thumbprint_upgrade(twin_factory: Any, tmp_path: Path) -> None:
    """Thumbprint: Goal v1 (CA 1) alone, the latest version from CA 2, both pinned: VALID_GOAL_ONLY, one upgrade."""
    from aztwin.scenario import builtin_path

    document = yaml.safe_load(builtin_path("goal-from-other-ca").read_text(encoding="utf-8"))
    document["name"] = "goal-v1-alone"
    document["clusters"][0]["certificate"] = {"thumbprint": "kv-sf-other-ca/cluster-cert@0"}
    document["clusters"][0]["nodeTypes"][0]["secrets"] = ["kv-sf-other-ca/cluster-cert@0"]
    path = tmp_path / "goal-v1-alone.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    twin = twin_factory(None, scenario_file=path)
    session = inprocess_session(twin)
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.plan.starting_state == "VALID_GOAL_ONLY"
    assert [s.name for s in result.plan.steps if s.cluster_upgrade] == ["convert-cluster"]
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
