"""The fleet file (migrate.fleet.spec) and its resolution into one plan model per cluster (migrate.fleet.resolve)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.fleet.resolve import labels, resolve
from migrate.fleet.spec import FleetFileError, fleet_schema_text, parse_fleet
from migrate.spec import PlanSpec

SUB = "8b8c54e4-19f5-569e-a801-c746bc199b30"
SUB2 = "0c1d2e3f-0000-4000-8000-000000000002"
ISSUER = "D1007A35C479805BBC473B23C5A06629395C6063"
REPO = Path(__file__).resolve().parents[2]


def cluster(name: str, group: str = "rg-x", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ServiceFabric/clusters/{name}"


def fleet_text(**changes: Any) -> str:
    document: dict[str, Any] = {
        "apiVersion": "sfmigrate/v1",
        "kind": "Fleet",
        "defaults": {
            "goal": {"vaultId": "/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.KeyVault/vaults/kv-{cluster}",
                     "certificateName": "{cluster}-cluster", "pinnedIssuers": [ISSUER]},
            "identity": {"id": "/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{cluster}-kv"},
            "rollout": {"settleMinutes": 5},
        },
        "clusters": [{"id": cluster("sf-a")}, {"id": cluster("sf-b", "rg-y"), "goal": {"certificateName": "special"}, "rollout": {"manualBatchPercent": 50}}],
    }
    document.update(changes)
    return yaml.safe_dump(document)


def resolved(text: str, listed: dict[tuple[str, str | None], list[dict[str, Any]]] | None = None) -> list[Any]:
    return resolve(parse_fleet(text, "fleet.yaml"), "fleet.yaml", (lambda s, g: (listed or {})[(s, g)]))


def test_each_cluster_gets_the_defaults_with_its_own_id_parts_and_its_overrides_deep_merged() -> None:
    first, second = resolved(fleet_text())
    assert isinstance(first.spec, PlanSpec) and first.origin == "clusters[0]"
    assert first.spec.goal.vaultId == f"/subscriptions/{SUB}/resourceGroups/rg-x/providers/Microsoft.KeyVault/vaults/kv-sf-a"
    assert first.spec.goal.certificateName == "sf-a-cluster"
    assert first.spec.identity.id.endswith("/resourceGroups/rg-x/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-sf-a-kv")
    # overrides replace a field and keep the other defaults of the section (deep merge)
    assert second.spec.goal.certificateName == "special"
    assert second.spec.goal.vaultId.endswith("/resourceGroups/rg-y/providers/Microsoft.KeyVault/vaults/kv-sf-b")
    assert second.spec.goal.pinnedIssuers == [ISSUER]
    assert (second.spec.rollout.settleMinutes, second.spec.rollout.manualBatchPercent) == (5, 50)
    assert (first.spec.rollout.settleMinutes, first.spec.rollout.manualBatchPercent) == (5, 100)
    # each resolved cluster is exactly a plan file's model: the same fingerprint as the equivalent plan file
    plan_file = {"apiVersion": "sfmigrate/v1", "cluster": {"id": cluster("sf-a")}, "goal": first.spec.goal.model_dump(),
                 "identity": {"id": first.spec.identity.id}, "rollout": {"settleMinutes": 5}}
    assert PlanSpec.model_validate(plan_file).fingerprint() == first.spec.fingerprint()


def test_a_list_override_replaces_the_default_list() -> None:
    text = fleet_text(clusters=[{"id": cluster("sf-a"), "goal": {"pinnedIssuers": ["A" * 40, "B" * 40]}}])
    [member] = resolved(text)
    assert member.spec.goal.pinnedIssuers == ["A" * 40, "B" * 40]


@pytest.mark.parametrize("changes, message", [
    ({"clusters": [{"id": cluster("sf-a")}, {"id": cluster("sf-b"), "goal": {"vaultId": "not-an-id"}}]},
     "fleet.yaml: clusters[1] (sf-b): goal.vaultId: not an ARM resource id of a Key Vault"),
    ({"clusters": [{"id": cluster("sf-a"), "goal": {"certificateName": "{cluster}.{tenant}"}}]},
     "fleet.yaml: clusters[0] (sf-a): goal.certificateName: unknown placeholder {tenant}"),
    ({"clusters": [{"id": cluster("sf-a"), "goal": {"certificateName": "a_b"}}]},
     "fleet.yaml: clusters[0] (sf-a): goal.certificateName: a Key Vault certificate name has 1-127 letters"),
    ({"clusters": [{"id": cluster("sf-a"), "goal": {"pinnedIssuers": []}}]},
     "fleet.yaml: clusters[0] (sf-a): goal.pinnedIssuers: list the goal certificate's direct issuer"),
    ({"clusters": [{"id": cluster("sf-a"), "rollout": {"settleMinutes": -1}}]},
     "fleet.yaml: clusters[0] (sf-a): rollout.settleMinutes: Input should be greater than or equal to 0"),
    ({"clusters": [{"id": cluster("sf-a"), "cluster": {"id": cluster("sf-z")}}]},
     "fleet.yaml: clusters[0].cluster: unknown field"),
    ({"clusters": [{"id": cluster("sf-a").replace("clusters/", "managedClusters/")}]},
     "fleet.yaml: clusters[0].id: managed clusters"),
    ({"clusters": [{"id": cluster("sf-a")}, {"id": cluster("SF-A")}]}, "fleet.yaml: clusters[1]: 'SF-A' is listed twice"),
    ({"clusters": []}, "fleet.yaml: clusters: list at least one cluster id, or select"),
    ({"kind": "Migration"}, "fleet.yaml: kind: must be 'Fleet'"),
    ({"defaults": {"cloud": {"name": "Custom"}}}, "fleet.yaml: defaults.cloud: unknown field"),
    ({"select": [{"subscription": "nope"}]}, "fleet.yaml: select[0].subscription: must be a subscription id"),
    ({"exclude": ["/subscriptions/x"]}, "fleet.yaml: exclude[0]: not an ARM resource id"),
])
def test_a_bad_fleet_is_one_line_naming_the_cluster_and_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FleetFileError) as caught:
        resolved(fleet_text(**changes))
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text and caught.value.exit_code == 64


def test_selected_clusters_follow_the_explicit_ones_filtered_by_tags_minus_exclusions() -> None:
    listed = [{"id": cluster("sf-c", "rg-z", SUB2), "tags": {"env": "prod", "team": "x"}},
              {"id": cluster("sf-d", "rg-z", SUB2), "tags": {"env": "test"}},
              {"id": cluster("sf-e", "rg-z", SUB2)},
              {"id": cluster("sf-f", "rg-z", SUB2), "tags": {"env": "prod"}},
              {"id": cluster("sf-a", "rg-x", SUB2), "tags": {"env": "prod"}}]
    text = fleet_text(select=[{"subscription": SUB2, "tags": {"env": "prod"}}], exclude=[cluster("sf-f", "rg-z", SUB2)],
                      clusters=[{"id": cluster("sf-a")}])
    members = resolved(text, {(SUB2, None): listed})
    assert [(m.origin, m.cluster_id) for m in members] == [
        ("clusters[0]", cluster("sf-a")), ("select[0]", cluster("sf-a", "rg-x", SUB2)), ("select[0]", cluster("sf-c", "rg-z", SUB2))]
    assert members[2].spec.goal.vaultId == f"/subscriptions/{SUB2}/resourceGroups/rg-z/providers/Microsoft.KeyVault/vaults/kv-sf-c"
    # clusters sharing a name are told apart by resource group, then subscription
    assert sorted(labels(members).values()) == [f"{SUB2}/rg-x/sf-a", f"{SUB}/rg-x/sf-a", "sf-c"]


def test_an_explicit_cluster_also_selected_keeps_its_overrides_once() -> None:
    listed = [{"id": cluster("sf-a"), "tags": {}}]
    text = fleet_text(select=[{"subscription": SUB, "resourceGroup": "rg-x"}],
                      clusters=[{"id": cluster("sf-a"), "goal": {"certificateName": "mine"}}])
    [member] = resolved(text, {(SUB, "rg-x"): listed})
    assert member.origin == "clusters[0]" and member.spec.goal.certificateName == "mine"


def test_the_committed_fleet_schema_is_the_generated_one_and_the_example_resolves() -> None:
    assert (REPO / "plans" / "fleet.schema.json").read_text(encoding="utf-8") == fleet_schema_text()
    schema = json.loads(fleet_schema_text())
    assert schema["properties"]["kind"]["const"] == "Fleet"
    example = parse_fleet((REPO / "plans" / "example-fleet.yaml").read_text(encoding="utf-8"), "example-fleet.yaml")
    members = resolve(example, "example-fleet.yaml", lambda s, g: [])
    assert members and all(isinstance(m.spec, PlanSpec) for m in members)


def test_the_cli_refuses_a_bad_fleet_file_with_exit_64_before_looking_for_a_credential(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = tmp_path / "fleet.yaml"
    path.write_text(fleet_text(clusters=[{"id": cluster("sf-a")}, {"id": cluster("sf-b"), "goal": {"vaultId": "{vault}"}}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "SFMIGRATE_ARM"))}
    for command in (["plan"], ["apply", "--state", str(tmp_path / "state"), "--yes"], ["status", "--state", str(tmp_path / "state")]):
        done = subprocess.run([sys.executable, "-m", "migrate", "fleet", *command[:1], str(path), *command[1:]], cwd=REPO,
                              capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 64, done.stderr
        assert done.stderr == f"sfmigrate: {path}: clusters[1] (sf-b): goal.vaultId: unknown placeholder {{vault}} (use {{subscription}}, {{resourceGroup}} or {{cluster}})\n"
        assert not (tmp_path / "state").exists()
