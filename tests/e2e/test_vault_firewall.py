"""Vault network rules, end to end (issue 11 acceptance): a vault the nodes cannot reach blocks before any write;
an admitted subnet converts; the operator's own refused reads say "firewall", without a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aztwin import builtin_path
from migrate import commands
from migrate.errors import Blocked
from twinkit import inprocess_session, requests_json, world_json

NETWORK_GETS = ("/providers/microsoft.network/",)


def _variant(tmp_path: Path, base: str, change: Any) -> Path:
    data = yaml.safe_load(builtin_path(base).read_text(encoding="utf-8"))
    data["name"] = f"{base}-variant"
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_vault_firewall_blocks_naming_the_node_type_and_subnet_and_apply_writes_nothing(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("vault-firewall")
    session = inprocess_session(twin)
    result = commands.plan(twin.plan_file, session=session)
    assert result.exit_code == 3
    restricted = [f for f in result.plan.findings if f.code == "VAULT_NETWORK_RESTRICTED"]
    assert [f.severity for f in restricted] == ["error"]
    [finding] = restricted
    assert "node type nt0" in finding.message and "/virtualNetworks/vnet-sf/subnets/nt0" in finding.message
    assert "virtualNetworkRules" in finding.remedy and "Microsoft.KeyVault" in finding.remedy
    assert finding.runbook == "findings/VAULT_NETWORK_RESTRICTED.md"
    gets = [r["path"].lower() for r in requests_json(twin)["requests"] if r["method"] == "GET"]
    assert any("/subnets/nt0" in p for p in gets)  # discovery read the subnet's service endpoints
    with pytest.raises(Blocked):
        commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert requests_json(twin)["mutating"] == 0
    assert world_json(twin)["cluster"]["declaration"] == "thumbprint"


def test_vault_firewall_subnet_converts_healthy_and_a_rerun_writes_nothing(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("vault-firewall-subnet")
    session = inprocess_session(twin)
    plan = commands.plan(twin.plan_file, session=session)
    assert plan.exit_code == 2 and not [f for f in plan.plan.findings if f.severity == "error"]
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == "Healthy" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    extension_messages = [i["extensions"]["KVVMExtension"]["message"] for s in world_json(twin)["scale_sets"] for i in s["instances"]]
    assert extension_messages and all(m == "Certificates are up to date." for m in extension_messages)
    mutating = requests_json(twin)["mutating"]
    again = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert again.nothing_to_do
    assert requests_json(twin)["mutating"] == mutating


def test_an_open_vault_costs_no_network_reads(twin_factory: Any) -> None:
    twin = twin_factory("old-primary")
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert not any(f.code == "VAULT_NETWORK_RESTRICTED" for f in result.plan.findings)
    assert not any(m in r["path"].lower() for r in requests_json(twin)["requests"] for m in NETWORK_GETS)


def test_bypass_none_blocks_the_vmss_secrets_the_migration_stages(twin_factory: Any, tmp_path: Path) -> None:
    """The subnet is admitted, but CRP (a trusted service) is not: staging the goal as a VMSS secret would fail."""
    def bypass_none(data: dict[str, Any]) -> None:
        data["vaults"][0]["networkAcls"]["bypass"] = "None"
        data["clusters"][0]["nodeTypes"][0]["secrets"] = []  # else the scenario's own VMSS secret cannot install at start
        data["clusters"][0]["nodeTypes"][0]["os"] = "windows"

    twin = twin_factory(None, scenario_file=_variant(tmp_path, "vault-firewall-subnet", bypass_none))
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert result.exit_code == 3
    [finding] = [f for f in result.plan.findings if f.code == "VAULT_NETWORK_RESTRICTED"]
    assert "Azure Virtual Machines deployment service" in finding.message and "bypass" in finding.remedy


def test_the_operators_refused_reads_name_the_firewall_without_a_traceback(twin_factory: Any, tmp_path: Path, capsys: Any) -> None:
    def elsewhere(data: dict[str, Any]) -> None:
        data["network"]["callerAddress"] = "198.51.100.7"  # not in the vault's ipRules

    twin = twin_factory(None, scenario_file=_variant(tmp_path, "vault-firewall", elsewhere))
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert result.exit_code == 1  # PERMISSION_DENIED: the resources could not be read (runbooks/exit-codes.md)
    denied = [f for f in result.plan.findings if f.code == "PERMISSION_DENIED"]
    assert denied and all("firewall" in f.message and "ipRules" in f.message for f in denied), [f.message for f in denied]
    assert "Traceback" not in capsys.readouterr().err
