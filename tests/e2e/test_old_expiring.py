"""old-expiring: a warning with the old certificate's days left; the migration still converts (issue 11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aztwin.scenario import builtin_path
from migrate import commands
from twinkit import inprocess_session, requests_json, world_json


def test_plan_warns_with_the_days_left_and_apply_converts_before_the_old_certificate_expires(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("old-expiring")
    session = inprocess_session(twin)
    old = world_json(twin)["cluster"]["certificate"]["thumbprint"].upper()

    planned = commands.plan(twin.plan_file, session=session)
    assert planned.exit_code == 2
    [warning] = [f for f in planned.plan.findings if f.code == "OLD_CERT_EXPIRING"]
    assert warning.severity == "warning" and "expires in 12 days" in warning.message and old in warning.message
    assert not [f for f in planned.plan.findings if f.severity == "error"]
    assert requests_json(twin)["mutating"] == 0

    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]

    twin.control().advance_clock(13 * 86400)  # the old certificate expires: nodes present the goal by common name
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]


def test_an_old_certificate_left_to_expire_breaks_the_unmigrated_cluster(twin_factory: Any) -> None:
    """The twin agrees with the warning: without the migration, the cluster breaks when the old certificate expires."""
    twin = twin_factory("old-expiring")
    twin.control().advance_clock(13 * 86400)
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == "Broken" and any("expired" in r for r in cluster["health_reasons"]), cluster["health_reasons"]


def test_plan_blocks_when_the_old_certificate_has_expired_and_the_goal_is_not_declared(twin_factory: Any, tmp_path: Path) -> None:
    scenario = yaml.safe_load(builtin_path("old-expiring").read_text(encoding="utf-8"))
    old = scenario["vaults"][0]["certificates"][0]["versions"][0]
    old["validFrom"], old["validFor"] = "-370d", "365d"  # expired 5 days before the twin's clock starts
    path = tmp_path / "old-expired.yaml"
    path.write_text(yaml.safe_dump(scenario))
    twin = twin_factory(scenario_file=path)
    planned = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert planned.exit_code == 3
    [error] = [f for f in planned.plan.findings if f.code == "OLD_CERT_EXPIRED"]
    assert error.severity == "error" and "expired on" in error.message
    assert "OLD_CERT_EXPIRING" not in {f.code for f in planned.plan.findings}
    assert requests_json(twin)["mutating"] == 0
