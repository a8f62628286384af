"""Diffs people can read (issue 14): nested, list entries matched by their key, ids relative to the cluster's
resource group, wrapped to the terminal width."""

from __future__ import annotations

import pytest

from migrate.plan import Change, Plan, Step
from migrate.report import render_plan
from migrate.report.diff import diff, relative_ids, render_line
from migrate.steps import stage_goal

SUB = "7c0e1f0a-5b8d-4d2e-9f3a-2a6b1c4d8e90"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-sf/providers/"
OLD = {"certificateUrl": "https://kv.vault.azure.net/secrets/old/1", "certificateStore": "My"}
GOAL = {"certificateUrl": "https://kv.vault.azure.net/secrets/goal/7", "certificateStore": "My"}


def test_one_added_secret_is_one_added_entry() -> None:
    lines = diff("secrets[0].vaultCertificates", [OLD], [OLD, GOAL])
    assert [(l.kind, l.path, l.before, l.after) for l in lines] == [
        ("+", f"secrets[0].vaultCertificates[certificateUrl={GOAL['certificateUrl']}]", None, GOAL)]


def test_a_changed_entry_is_matched_by_its_key_and_shows_only_what_changed() -> None:
    before = [{"name": "KVVMExtension", "properties": {"settings": {"msiClientId": "a"}, "typeHandlerVersion": "3.0"}}]
    after = [{"name": "KVVMExtension", "properties": {"settings": {"msiClientId": "b"}, "typeHandlerVersion": "3.0"}}]
    [line] = diff("extensions", before, after)
    assert (line.kind, line.path, line.before, line.after) == ("~", "extensions[name=KVVMExtension].properties.settings.msiClientId", "a", "b")


def test_nested_objects_show_added_and_removed_keys() -> None:
    lines = diff("properties.certificate", {"thumbprint": "A", "x509StoreName": "My"}, {"thumbprint": "A", "x509StoreName": "My", "thumbprintSecondary": "B"})
    assert [(l.kind, l.path, l.before, l.after) for l in lines] == [("+", "properties.certificate.thumbprintSecondary", None, "B")]
    assert [l.kind for l in diff("x", {"a": 1}, None)] == ["-"]


def test_entries_without_distinct_keys_fall_back_to_the_whole_value() -> None:
    [line] = diff("x", [{"a": 1}], [{"a": 2}])
    assert (line.kind, line.path) == ("~", "x")


def test_ids_in_the_clusters_group_are_relative_and_others_stay_whole() -> None:
    other = f"/subscriptions/{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv"
    text = f'{GROUP}Microsoft.KeyVault/vaults/kv-sf and {other}'
    assert relative_ids(text, "RG-SF") == f"./Microsoft.KeyVault/vaults/kv-sf and {other}"


@pytest.mark.parametrize("width", [60, 100])
def test_long_lines_wrap_to_the_width_with_an_indent(width: int) -> None:
    [line] = diff("properties.virtualMachineProfile.osProfile.secrets", None, [{"sourceVault": {"id": GROUP + "Microsoft.KeyVault/vaults/kv-sf"},
                                                                              "vaultCertificates": [GOAL]}])
    rendered = render_line(line, "rg-sf", width, "    ")
    assert len(rendered) > 1 and all(len(r) <= width for r in rendered)
    assert rendered[0].startswith("    + properties.virtualMachineProfile") and rendered[1].startswith("        ")
    assert "./Microsoft.KeyVault/vaults/kv-sf" in "".join(rendered) and "/subscriptions/" not in "".join(rendered)


def test_the_text_report_shows_one_added_secret_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    vmss = GROUP + "Microsoft.Compute/virtualMachineScaleSets/nt0"
    step = Step("stage-goal:nt0", "stage_goal", "Stage the goal", [vmss],
                [Change("properties.virtualMachineProfile.osProfile.secrets[0].vaultCertificates", [OLD], [OLD, GOAL])],
                stage_goal.Params(vmss_id=vmss, vault_id="/v", secret_url=GOAL["certificateUrl"], primary="A" * 40))
    plan = Plan(cluster_id=GROUP + "Microsoft.ServiceFabric/clusters/sfcluster", starting_state="GOAL_ABSENT_GOAL_NEWER",
                findings=[], steps=[step], created_at="2026-12-03T00:00:00+00:00", spec_fingerprint="f")
    out = render_plan(plan, "text")
    changes = [l.strip() for l in out.splitlines() if l.strip()[:2] in ("+ ", "- ", "~ ")]
    assert changes == [f'+ properties.virtualMachineProfile.osProfile.secrets[0].vaultCertificates[certificateUrl={GOAL["certificateUrl"]}]: '
                       f'(absent) -> {{"certificateStore": "My", "certificateUrl": "{GOAL["certificateUrl"]}"}}']
    assert "on: ./Microsoft.Compute/virtualMachineScaleSets/nt0" in out and "ids ./… are in resource group rg-sf" in out
