"""The doc's table, row by row, performed by hand through Microsoft's SDK against the twin.

research/sf_migration.md §1.1 ("Reaching a valid starting state"): each row's upgrades bring the goal
certificate into the cluster by thumbprint; then the conversion (identity, access policy, Key Vault VM
extension, Service Fabric extension by common name, a full cluster PUT with ``certificateCommonNames``)
ends ``Healthy`` by common name, and the worst verdict seen on the way stays ``Healthy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from aztwin.scenario import builtin_path
from sfsteps import Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"


def derived(tmp_path: Path, base: str, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A built-in scenario, renamed and edited (for rows whose starting state has no built-in world)."""
    document = yaml.safe_load(builtin_path(base).read_text(encoding="utf-8"))
    document["name"] = name
    edit(document)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def cluster_state(twin: Any) -> dict[str, Any]:
    return world_json(twin)["cluster"]


def presented(state: dict[str, Any]) -> set[str | None]:
    return {n["presents"] for nt in state["node_types"] for n in nt["nodes"]}


def assert_healthy_throughout(twin: Any) -> dict[str, Any]:
    state = cluster_state(twin)
    assert state["health"] == "Healthy" and state["health_worst"] == "Healthy", state["health_worst_reasons"]
    assert state["cluster_state"] == "Ready"
    return state


def convert_and_check(twin: Any, step: Step, goal: str) -> None:
    """The second upgrade of the doc, then the end state: Healthy by common name, the goal from the extension."""
    state = assert_healthy_throughout(twin)
    assert state["declaration"] == "thumbprint" and presented(state) == {goal}  # a valid starting state
    step.convert("cluster-cert", CN, [step.authority("contoso-issuing-1")])
    state = assert_healthy_throughout(twin)
    assert state["declaration"] == "common_name" and state["certificate"] is None
    assert state["certificateCommonNames"]["commonNames"] == [
        {"certificateCommonName": CN, "certificateIssuerThumbprint": step.authority("contoso-issuing-1")}
    ]
    assert presented(state) == {goal}
    world = world_json(twin)
    for scale_set in world["scale_sets"]:
        linux = any(e["type"] == "ServiceFabricLinuxNode" for e in scale_set["extensions"])
        if linux:  # issue 10: Linux keeps the goal as a VMSS secret, no Key Vault extension
            assert scale_set["secrets"] and not any(e["type"] == "KeyVaultForLinux" for e in scale_set["extensions"])
        else:
            assert scale_set["secrets"] == [] and scale_set["identities"]
        for instance in scale_set["instances"]:
            assert instance["latestModelApplied"], instance["name"]
            if not linux:
                assert instance["extensions"]["KVVMExtension"]["status"] == "succeeded", instance["extensions"]
    assert not any(node["validation"]["thumbprints"] for nt in state["node_types"] for node in nt["nodes"])


def test_row_1_old_primary_goal_newer_adds_the_goal_as_secondary(twin_factory: Any) -> None:
    """Thumbprint: OldCert1, GoalCert newer -> upgrade 1: Thumbprint: OldCert1, ThumbprintSecondary: GoalCert."""
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    old, goal = step.thumbprint("cluster-old"), step.thumbprint("cluster-cert")
    step.add_secret("cluster-cert")  # install before declaring
    step.sf_extension_thumbprints(old, goal)
    step.patch_thumbprints(old, goal)
    convert_and_check(twin, step, goal)


def test_row_2_old_newer_than_goal_swaps_then_drops_the_old_certificate(twin_factory: Any) -> None:
    """Thumbprint: OldCert1, OldCert1 newer -> Thumbprint: GoalCert, ThumbprintSecondary: OldCert1 -> Thumbprint: GoalCert."""
    twin = twin_factory("old-newer-than-goal")
    step = Step(Clients(twin), "kv-sf-old-newer")
    old, goal = step.thumbprint("cluster-old"), step.thumbprint("cluster-cert")
    step.add_secret("cluster-cert")
    step.sf_extension_thumbprints(goal, old)
    step.patch_thumbprints(goal, old)
    assert presented(assert_healthy_throughout(twin)) == {old}  # the newer NotBefore still wins: not yet valid
    step.sf_extension_thumbprints(goal)
    step.patch_thumbprints(goal)
    convert_and_check(twin, step, goal)


def _old_and_goal_declared(primary: str, secondary: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["clusters"][0]["certificate"] = {"thumbprint": f"kv-sf-old-newer/{primary}", "secondary": f"kv-sf-old-newer/{secondary}"}
        document["clusters"][0]["nodeTypes"][0]["secrets"] = ["kv-sf-old-newer/cluster-old", "kv-sf-old-newer/cluster-cert"]

    return edit


@pytest.mark.parametrize(
    "primary, secondary",
    [("cluster-old", "cluster-cert"), ("cluster-cert", "cluster-old")],
    ids=["row-3-old-primary-goal-secondary", "row-4-goal-primary-old-secondary"],
)
def test_rows_3_and_4_old_newer_declared_with_the_goal_drop_the_old_certificate(
    twin_factory: Any, tmp_path: Path, primary: str, secondary: str
) -> None:
    """Old + Goal declared, OldCert1 newer -> upgrade to Thumbprint: GoalCert, ThumbprintSecondary: None."""
    path = derived(tmp_path, "old-newer-than-goal", "doc-row-3-4", _old_and_goal_declared(primary, secondary))
    twin = twin_factory(None, scenario_file=path)
    step = Step(Clients(twin), "kv-sf-old-newer")
    old, goal = step.thumbprint("cluster-old"), step.thumbprint("cluster-cert")
    assert presented(assert_healthy_throughout(twin)) == {old}
    step.sf_extension_thumbprints(goal)
    step.patch_thumbprints(goal)
    convert_and_check(twin, step, goal)


def test_row_5_two_old_certificates_remove_one_then_continue(twin_factory: Any) -> None:
    """Thumbprint: OldCert1, ThumbprintSecondary: OldCert2 -> remove one -> continue from row 1."""
    twin = twin_factory("two-old-certs")
    step = Step(Clients(twin), "kv-sf-two-old")
    old1, goal = step.thumbprint("cluster-old1"), step.thumbprint("cluster-cert")
    step.sf_extension_thumbprints(old1)
    step.patch_thumbprints(old1)
    assert presented(assert_healthy_throughout(twin)) == {old1}
    step.add_secret("cluster-cert")
    step.sf_extension_thumbprints(old1, goal)
    step.patch_thumbprints(old1, goal)
    convert_and_check(twin, step, goal)


@pytest.mark.parametrize("scenario, vault", [("goal-primary", "kv-sf-goal-primary"), ("goal-secondary", "kv-sf-goal-secondary"), ("linux-nodetype", "kv-sf-linux")])
def test_valid_starting_states_convert_in_one_upgrade(twin_factory: Any, scenario: str, vault: str) -> None:
    twin = twin_factory(scenario)
    step = Step(Clients(twin), vault)
    convert_and_check(twin, step, step.thumbprint("cluster-cert"))


def test_row_1_across_three_node_types_with_a_manual_upgrade_policy(twin_factory: Any) -> None:
    """Install before declaring, on every node type: the Manual one takes the model only when upgraded."""
    twin = twin_factory("multi-nodetype")
    step = Step(Clients(twin), "kv-sf-multi")
    old, goal = step.thumbprint("cluster-old"), step.thumbprint("cluster-cert")
    step.add_secret("cluster-cert")
    step.sf_extension_thumbprints(old, goal)
    step.patch_thumbprints(old, goal)
    convert_and_check(twin, step, goal)
    linux = next(nt for nt in cluster_state(twin)["node_types"] if nt["os"] == "linux")
    assert all(c["path"].startswith("/var/lib/waagent/") for n in linux["nodes"] for c in n["certificates"])


def test_row_1_with_an_rbac_vault_grants_key_vault_secrets_user(twin_factory: Any) -> None:
    twin = twin_factory("rbac-vault")
    clients = Clients(twin)
    step = Step(clients, "kv-sf-rbac")
    old, goal = step.thumbprint("cluster-old"), step.thumbprint("cluster-cert")  # readable: operator is Key Vault Reader
    step.add_secret("cluster-cert")
    step.sf_extension_thumbprints(old, goal)
    step.patch_thumbprints(old, goal)
    identity = step.create_identity()
    step.grant_secrets_role(identity)
    twin.control().advance_clock(300)  # as an operator must: the assignment reaches the vault minutes later (docs/twin.md)
    step.install_kv_extension(identity, ["cluster-cert"], CN)
    step.put_common_names(CN, [step.authority("contoso-issuing-1")])
    state = assert_healthy_throughout(twin)
    assert state["declaration"] == "common_name" and presented(state) == {goal}
