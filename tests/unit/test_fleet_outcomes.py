"""fleet apply's exit code from its clusters' outcomes (the worst wins) and the fleet tables' rendering."""

from __future__ import annotations

import pytest

from migrate.errors import ExitCode
from migrate.fleet.apply import ClusterOutcome, FleetApplyResult
from migrate.fleet.report import render_fleet_apply, table
from migrate.fleet.resolve import FleetMember
from migrate.spec import PlanSpec

ID = "/subscriptions/8b8c54e4-19f5-569e-a801-c746bc199b30/resourceGroups/rg/providers/Microsoft.ServiceFabric/clusters/sf-{}"
SPEC = {"apiVersion": "sfmigrate/v1", "goal": {"vaultId": ID.format("x").replace("ServiceFabric/clusters", "KeyVault/vaults"),
                                                "certificateName": "c", "allowUnpinnedIssuers": True},
        "identity": {"id": ID.format("x").replace("ServiceFabric/clusters", "ManagedIdentity/userAssignedIdentities")}}


def _result(*outcomes: str, stopped: str | None = None) -> FleetApplyResult:
    members = [FleetMember(f"clusters[{i}]", PlanSpec.model_validate({**SPEC, "cluster": {"id": ID.format(i)}})) for i in range(len(outcomes))]
    return FleetApplyResult([ClusterOutcome(m, m.name, outcome=o) for m, o in zip(members, outcomes)], stopped)


@pytest.mark.parametrize("outcomes, code", [
    (("done", "nothing-to-do"), ExitCode.OK),
    (("done", "postponed"), ExitCode.STOPPED),
    (("postponed", "skipped-blocked"), ExitCode.BLOCKED),
    (("skipped-blocked", "failed"), ExitCode.FAILED),
    (("done", "not-started"), ExitCode.FAILED),
    (("done", "locked"), ExitCode.FAILED),
    (("failed", "interrupted"), ExitCode.INTERRUPTED),
    ((), ExitCode.OK),
])
def test_the_worst_outcome_gives_the_exit_code(outcomes: tuple[str, ...], code: ExitCode) -> None:
    assert _result(*outcomes).exit_code == code


def test_an_interrupted_fleet_exits_130_even_when_every_cluster_had_finished() -> None:
    assert _result("done", "done", stopped="interrupted").exit_code == ExitCode.INTERRUPTED


def test_tables_keep_one_line_per_cluster_and_escape_markdown_pipes() -> None:
    rows = [{"label": "sf-a", "detail": "line one\nline | two"}, {"label": "sf-b", "detail": None}]
    text = table(rows, (("cluster", "label"), ("detail", "detail")))
    assert text.splitlines() == ["cluster  detail", "sf-a     line one line | two", "sf-b     -"]
    md = table(rows, (("cluster", "label"), ("detail", "detail")), "md")
    assert md.splitlines()[2] == "| sf-a | line one line \\| two |"
    assert "stopped: 1 cluster(s) failed" in render_fleet_apply(_result("failed", "not-started", stopped="1 cluster(s) failed"))


def test_the_html_table_escapes_every_cell() -> None:
    from migrate.fleet.report import PLAN_COLUMNS, html_page

    page = html_page("Fleet <plan>", [{"label": "<script>alert(1)</script>", "blocking_findings": ["A&B"]}], PLAN_COLUMNS)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "A&amp;B" in page
    assert page.startswith("<!DOCTYPE html>") and "Fleet &lt;plan&gt;" in page
