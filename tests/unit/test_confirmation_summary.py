"""apply's confirmation summary (issue 14): the cluster's declaration before -> after on one line, then the work."""

from __future__ import annotations

from migrate.plan import Change, Plan, Step
from migrate.report.text import confirmation_summary, describe_declaration
from migrate.steps import convert_cluster, set_cluster_certificate

CLUSTER = "/subscriptions/7c0e1f0a-5b8d-4d2e-9f3a-2a6b1c4d8e90/resourceGroups/rg/providers/Microsoft.ServiceFabric/clusters/sf-test"
OLD, GOAL, ISSUER, ISSUER2 = "AB12" + "0" * 36, "CD34" + "1" * 36, "1FB8" + "2" * 36, "77AA" + "3" * 36
COMMON_NAMES = {"commonNames": [{"certificateCommonName": "sf-test.contoso.com", "certificateIssuerThumbprint": f"{ISSUER},{ISSUER2}"}]}


def _plan(steps: list[Step]) -> Plan:
    return Plan(cluster_id=CLUSTER, starting_state="GOAL_ABSENT_GOAL_NEWER", findings=[], steps=steps,
                created_at="2026-06-01T12:00:00+00:00", spec_fingerprint="0123456789abcdef")


def test_two_upgrades_read_as_the_first_declaration_and_the_last() -> None:
    declare = Step("declare-goal-secondary", "set_cluster_certificate", "Declare the goal as secondary", [CLUSTER],
                   [Change("properties.certificate", {"thumbprint": OLD}, {"thumbprint": OLD, "thumbprintSecondary": GOAL})],
                   set_cluster_certificate.Params(cluster_id=CLUSTER, primary=OLD, secondary=GOAL), cluster_upgrade=True)
    convert = Step("convert-cluster", "convert_cluster", "Convert", [CLUSTER],
                   [Change("properties.certificate", {"thumbprint": OLD, "thumbprintSecondary": GOAL}, None),
                    Change("properties.certificateCommonNames", None, COMMON_NAMES)],
                   convert_cluster.Params(cluster_id=CLUSTER, common_name="sf-test.contoso.com", issuers=[ISSUER, ISSUER2]),
                   cluster_upgrade=True)
    assert confirmation_summary(_plan([declare, convert])) == [
        "cluster sf-test: thumbprint AB12…(primary) -> common name sf-test.contoso.com (issuers 1FB8…, 77AA…)",
        "2 steps, 2 cluster upgrades",
    ]


def test_a_plan_that_leaves_the_declaration_alone_says_so() -> None:
    assert confirmation_summary(_plan([])) == ["cluster sf-test: declaration unchanged by this plan", "0 steps, 0 cluster upgrades"]


def test_declarations_in_a_few_words() -> None:
    assert describe_declaration({"thumbprint": OLD, "thumbprintSecondary": GOAL}, None) == "thumbprint AB12…(primary), CD34…(secondary)"
    assert describe_declaration(None, {"commonNames": [{"certificateCommonName": "a.example"}]}) == "common name a.example (no issuer pinned)"
    assert describe_declaration(None, None) == "(none)"
