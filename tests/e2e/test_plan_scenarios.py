"""Plan on every built-in scenario: starting state, findings, steps and exit code (issue 4 acceptance).

Discovery is GET-only and never reads /secrets (the twin's request log proves it).
"""

from __future__ import annotations

import pytest

from migrate import commands
from twinkit import inprocess_session, requests_json

# scenario -> (starting state, exit code, error codes that must be present, warning codes that must be present, step names)
EXPECTED = {
    "basic": ("GOAL_ABSENT_GOAL_NEWER", 2, set(), set(),
              ["ensure-identity", "grant-vault-access", "stage-goal:nt0", "declare-goal-secondary", "install-kv-extension:nt0", "convert-cluster"]),
    "goal-primary": ("VALID_GOAL_ONLY", 2, set(), set(), ["ensure-identity", "grant-vault-access", "install-kv-extension:nt0", "convert-cluster"]),
    "goal-secondary": ("VALID_GOAL_NEWEST", 2, set(), set(), None),
    "old-primary": ("GOAL_ABSENT_GOAL_NEWER", 2, set(), set(), None),
    "old-newer-than-goal": ("GOAL_ABSENT_OLD_NEWER", 2, set(), set(), None),
    "two-old-certs": ("TWO_OLD", 2, set(), set(), None),
    "already-cn": ("ALREADY_COMMON_NAME", 0, set(), set(), []),
    # Issue 10: Linux keeps the goal as a versioned VMSS secret; no identity, no Key Vault extension.
    "linux-nodetype": ("VALID_GOAL_ONLY", 2, set(), {"LINUX_DELIVERY_BY_VMSS_SECRET"}, ["deliver-by-secret:nt0", "convert-cluster"]),
    "multi-nodetype": ("GOAL_ABSENT_GOAL_NEWER", 2, set(), {"LINUX_DELIVERY_BY_VMSS_SECRET"}, None),
    "rbac-vault": ("GOAL_ABSENT_GOAL_NEWER", 2, set(), set(), None),
    "self-signed-goal": (None, 3, {"GOAL_SELF_SIGNED"}, set(), None),
    "issuer-not-pinned": (None, 3, {"ISSUER_NOT_PINNED"}, set(), None),
    "cn-mismatch": (None, 3, {"CN_MISMATCH"}, set(), None),
    "expiring-goal": (None, 3, {"GOAL_EXPIRING"}, set(), None),
    "cluster-busy": (None, 3, {"CLUSTER_NOT_READY"}, set(), None),
    "not-exportable": (None, 3, {"KEY_NOT_EXPORTABLE"}, set(), None),
    "shared-subject": (None, 2, set(), {"SHARED_SUBJECT"}, None),
    "reverse-proxy-thumbprint": (None, 2, set(), {"REVERSE_PROXY_BY_THUMBPRINT"}, None),
    "no-client-auth-eku": (None, 2, set(), {"CLIENT_AUTH_EKU_MISSING"}, None),
    # Issue 12: nothing in the plan sees the unhealthy node; the conversion rolls back at apply (test_upgrade_rollback).
    "upgrade-rollback": ("VALID_GOAL_ONLY", 2, set(), set(), ["ensure-identity", "grant-vault-access", "install-kv-extension:nt0", "convert-cluster"]),
    "pki-offline": ("VALID_GOAL_ONLY", 3, {"REVOCATION_UNREACHABLE"}, set(), None),
    "issuer-shared-key": (None, 3, {"ISSUER_PIN_INCOMPLETE"}, set(), None),
    "goal-from-other-ca": ("VALID_GOAL_NEWEST", 2, set(), set(), None),
    "vault-firewall": ("GOAL_ABSENT_GOAL_NEWER", 3, {"VAULT_NETWORK_RESTRICTED"}, set(), None),
    "vault-firewall-subnet": ("GOAL_ABSENT_GOAL_NEWER", 2, set(), set(), None),
    "rbac-propagation-delay": ("VALID_GOAL_ONLY", 2, set(), set(), ["ensure-identity", "grant-vault-access", "install-kv-extension:nt0", "convert-cluster"]),
    "identity-recreated": ("ALREADY_COMMON_NAME", 2, set(), {"KV_EXTENSION_CLIENT_ID_STALE"}, ["grant-vault-access", "install-kv-extension:nt0"]),
    "reverse-proxy-renewed": ("VALID_GOAL_ONLY", 2, set(), {"REVERSE_PROXY_BY_THUMBPRINT"}, ["ensure-identity", "grant-vault-access", "install-kv-extension:nt0", "convert-cluster"]),
    "old-expiring": ("GOAL_ABSENT_GOAL_NEWER", 2, set(), {"OLD_CERT_EXPIRING"}, None),
}
STEP_ORDER = ["ensure_identity", "grant_vault_access", "enable_vault_deployment", "stage_goal", "set_cluster_certificate",
              "install_kv_extension", "deliver_by_secret", "convert_cluster", "cleanup_secrets"]


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_plan_on_each_builtin_scenario(twin_factory, scenario: str) -> None:
    state, exit_code, errors, warnings, steps = EXPECTED[scenario]
    twin = twin_factory(scenario)
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    plan = result.plan
    if state:
        assert plan.starting_state == state
    assert result.exit_code == exit_code, [(f.code, f.message) for f in plan.findings]
    codes = {f.code for f in plan.findings}
    assert errors <= {f.code for f in plan.findings if f.severity == "error"}, codes
    assert warnings <= {f.code for f in plan.findings if f.severity == "warning"}, codes
    if exit_code != 3:
        assert not {f.code for f in plan.findings if f.severity == "error"}
    if steps is not None:
        assert [s.name for s in plan.steps] == steps
    # Steps follow the documented order, and every cluster upgrade changes the cluster resource only.
    kinds = [STEP_ORDER.index(s.kind) for s in plan.steps if s.kind != "set_cluster_certificate"]
    assert kinds == sorted(kinds)
    for step in plan.steps:
        assert step.changes, step.name
        assert all(c.path for c in step.changes)
    report = plan.to_report()
    assert {"format_version", "cluster", "starting_state", "has_changes", "blocked", "findings", "steps"} <= set(report)
    assert report["has_changes"] == bool(plan.steps) and report["blocked"] == (exit_code == 3)

    log = requests_json(twin)
    arm_and_vault = [r for r in log["requests"] if not r["path"].startswith(("/_identity", "/_pki"))]
    assert all(r["method"] == "GET" for r in arm_and_vault), [r for r in arm_and_vault if r["method"] != "GET"]
    assert log["mutating"] == 0
    assert not any("/secrets" in r["path"] for r in log["requests"])
