"""sfmigrate and the twin agree on "now": sfmigrate reads it from Azure's Date header (issue 12, "One clock")."""

from __future__ import annotations


def test_plan_takes_now_from_the_twins_date_header(twin_factory) -> None:
    from migrate import commands
    from twinkit import inprocess_session

    twin = twin_factory("goal-primary")
    twin.control().advance_clock(400 * 86400)  # 400 simulated days: the goal (valid 365 d from -30 d) has expired
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    expiring = [f for f in result.plan.findings if f.code == "GOAL_EXPIRING"]
    assert expiring and "expired" in expiring[0].message  # by this machine's clock it has 335 days left
