"""The cut-over window (issue 10): `apply --postpone-cutover` leaves the cluster declaring the goal by thumbprint
while the Key Vault extension delivers it. A renewal, then a scale-out through ARM (the real compute client,
``sku.capacity``) must not leave the new node without the declared version: sfmigrate keeps the goal's
versioned VMSS secret until after the conversion. Removing it by hand shows what the kept secret prevents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.errors import StoppedAtRequest
from migrate.runner import RunOptions
from twinkit import Clients, inprocess_session, world_json

RG = "rg-sf"
VAULTS = {"old-primary": "kv-sf-old-primary", "goal-primary": "kv-sf-goal-primary"}


def _postponed(twin: Any, state: str) -> Any:
    session = inprocess_session(twin)
    with pytest.raises(StoppedAtRequest):
        commands.apply(twin.plan_file, state_location=state, session=session, options=RunOptions(postpone_cutover=True))
    return session


def _declared_goal(twin: Any) -> str:
    certificate = world_json(twin)["cluster"]["certificate"]
    goal = next(v for v in world_json(twin)["vaults"] if v["name"] == twin.world.goal["vault"].rsplit("/", 1)[-1])
    thumbprints = {ver["thumbprint"] for c in goal["certificates"] if c["name"] == "cluster-cert" for ver in c["versions"]}
    [declared] = [t for t in (certificate.get("thumbprint"), certificate.get("thumbprintSecondary")) if t in thumbprints]
    return str(declared)


def _renew_and_scale_out(twin: Any, scenario: str) -> tuple[dict[str, Any], str]:
    from azure.mgmt.compute.models import Sku, VirtualMachineScaleSetUpdate

    renewed = twin.control().call("POST", "/_emulator/certificates/renew",
                                  {"vault": VAULTS[scenario], "certificate": "cluster-cert", "validFrom": "-1d"})
    compute = Clients(twin).compute
    capacity = compute.virtual_machine_scale_sets.get(RG, "nt0").sku.capacity
    compute.virtual_machine_scale_sets.begin_update(RG, "nt0", VirtualMachineScaleSetUpdate(sku=Sku(capacity=capacity + 1))).result()
    nt0 = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt0")
    assert len(nt0["instances"]) == capacity + 1
    return nt0["instances"][-1], str(renewed["thumbprint"])


def _thumbprints(instance: dict[str, Any]) -> set[str]:
    return {c["thumbprint"] for c in instance["certificates"]}


@pytest.mark.parametrize("scenario", ["old-primary", "goal-primary"])
def test_a_renewal_and_a_scale_out_during_a_postponed_cutover_stay_healthy(twin_factory, tmp_path: Path, scenario: str) -> None:
    twin = twin_factory(scenario)
    state = str(tmp_path / "state")
    session = _postponed(twin, state)
    declared = _declared_goal(twin)
    new, renewed = _renew_and_scale_out(twin, scenario)
    assert {declared, renewed} <= _thumbprints(new)  # the kept VMSS secret and the Key Vault extension
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "thumbprint"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]

    result = commands.apply(twin.plan_file, state_location=state, session=session)
    assert result.state is not None and result.state.status == "complete"
    assert result.state.step("convert-cluster").status == "done"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    assert commands.plan(twin.plan_file, session=session).plan.steps == []


@pytest.mark.parametrize("scenario", ["old-primary", "goal-primary"])
def test_without_the_goal_secret_the_scaled_out_node_lacks_the_declared_thumbprint(twin_factory, tmp_path: Path, scenario: str) -> None:
    """The same flow, with the goal's VMSS secret removed by hand before the conversion (what sfmigrate did
    before issue 10). goal-primary declares the goal alone: the new node cannot present, and the verdict names
    the rule. old-primary still declares Old beside the goal: the new node lacks the goal and presents Old."""
    twin = twin_factory(scenario)
    _postponed(twin, str(tmp_path / "state"))
    declared = _declared_goal(twin)
    compute = Clients(twin).compute
    scale_set = compute.virtual_machine_scale_sets.get(RG, "nt0")
    profile = scale_set.properties.virtual_machine_profile
    for group in profile.os_profile.secrets:
        group.vault_certificates = [c for c in group.vault_certificates if "/secrets/cluster-cert/" not in c.certificate_url]
    profile.os_profile.secrets = [g for g in profile.os_profile.secrets if g.vault_certificates]
    for extension in profile.extension_profile.extensions:  # a GET never returns them: the PUT supplies them again
        if extension.properties.type == "ServiceFabricNode":
            extension.properties.protected_settings = {"StorageAccountKey1": "twin-redacted", "StorageAccountKey2": "twin-redacted"}
    compute.virtual_machine_scale_sets.begin_create_or_update(RG, "nt0", scale_set).result()

    new, renewed = _renew_and_scale_out(twin, scenario)
    assert declared not in _thumbprints(new) and renewed in _thumbprints(new)
    cluster = world_json(twin)["cluster"]
    if scenario == "goal-primary":
        assert cluster["health"] == "Broken"
        [reason] = [r for r in cluster["health_reasons"] if new["name"] in r]
        assert f"finds no certificate for thumbprint {declared}" in reason
        assert "autorefreshed certificate declared by thumbprint" in reason
    else:
        presents = next(n["presents"] for t in cluster["node_types"] for n in t["nodes"] if n["name"] == new["name"])
        assert presents == cluster["certificate"]["thumbprint"] != declared  # Old: still declared, still there
