"""Scale-out (``sku.capacity``) and reimage deliver only what the scale set's model delivers.

Performed by hand with the real compute client; the outcome is read through ``/_emulator/world``. The cut-over
window (issue 10): between the Key Vault extension and the conversion the cluster declares the goal by
thumbprint; a node created after a renewal must still get the declared version from a VMSS secret.
"""

from __future__ import annotations

from typing import Any

from sfsteps import RG, Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"


def _nt0(twin: Any) -> dict[str, Any]:
    return next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt0")


def _thumbprints(instance: dict[str, Any]) -> set[str]:
    return {c["thumbprint"] for c in instance["certificates"]}


def _presents(cluster: dict[str, Any], node: str) -> str | None:
    return next(n["presents"] for t in cluster["node_types"] for n in t["nodes"] if n["name"] == node)


def _scale_out(clients: Clients, capacity: int) -> None:
    from azure.mgmt.compute.models import Sku, VirtualMachineScaleSetUpdate

    clients.compute.virtual_machine_scale_sets.begin_update(RG, "nt0", VirtualMachineScaleSetUpdate(sku=Sku(capacity=capacity))).result()


def _renew(twin: Any, vault: str) -> dict[str, Any]:
    return twin.control().call("POST", "/_emulator/certificates/renew", {"vault": vault, "certificate": "cluster-cert", "validFrom": "-1d"})


def test_a_scaled_out_instance_gets_what_the_latest_model_delivers(twin_factory: Any) -> None:
    twin = twin_factory("goal-primary")
    clients = Clients(twin)
    goal = Step(clients, "kv-sf-goal-primary").thumbprint("cluster-cert")
    _scale_out(clients, 6)
    nt0 = _nt0(twin)
    assert len(nt0["instances"]) == 6
    new = nt0["instances"][-1]
    assert new["latestModelApplied"] and new["provisioningState"] == "Succeeded"
    assert goal in _thumbprints(new)  # the model's versioned secret
    cluster = world_json(twin)["cluster"]
    assert cluster["health_worst"] == "Healthy" and _presents(cluster, new["name"]) == goal


def _kv_window(twin: Any, *, remove_secrets: bool) -> tuple[str, str]:
    """goal-primary: the Key Vault extension in, the cluster still by thumbprint; then the goal is renewed and
    nt0 scaled out by one. Returns (declared thumbprint, renewed thumbprint)."""
    clients = Clients(twin)
    step = Step(clients, "kv-sf-goal-primary")
    declared = step.thumbprint("cluster-cert")
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.install_kv_extension(identity, ["cluster-cert"], CN, remove_secrets=remove_secrets)
    assert world_json(twin)["cluster"]["health_worst"] == "Healthy"  # old nodes keep what they had
    renewed = _renew(twin, "kv-sf-goal-primary")["thumbprint"]
    _scale_out(clients, 6)
    return declared, renewed


def test_scale_out_after_a_renewal_without_the_goal_secret_breaks_the_cluster_naming_the_rule(twin_factory: Any) -> None:
    """The seed's shortcut (secrets removed with the Key Vault extension) before the conversion: the new node
    gets only the renewed version, whose thumbprint the cluster does not declare."""
    twin = twin_factory("goal-primary")
    declared, renewed = _kv_window(twin, remove_secrets=True)
    new = _nt0(twin)["instances"][-1]
    assert _thumbprints(new) == {renewed}
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "thumbprint" and cluster["health"] == "Broken"
    [reason] = [r for r in cluster["health_reasons"] if new["name"] in r]
    assert f"finds no certificate for thumbprint {declared}" in reason
    assert "autorefreshed certificate declared by thumbprint" in reason and renewed in reason


def test_scale_out_after_a_renewal_with_the_goal_secret_kept_stays_healthy(twin_factory: Any) -> None:
    twin = twin_factory("goal-primary")
    declared, renewed = _kv_window(twin, remove_secrets=False)
    new = _nt0(twin)["instances"][-1]
    assert _thumbprints(new) == {declared, renewed}  # the VMSS secret and the Key Vault extension
    cluster = world_json(twin)["cluster"]
    assert cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    assert _presents(cluster, new["name"]) == declared


def test_reimage_redelivers_from_the_model(twin_factory: Any) -> None:
    """old-primary (Manual policy): the goal is added as a VMSS secret, then taken out of the model again. Every
    node keeps it (removing a secret removes nothing from VMs) until a reimage: the reimaged node comes back
    with the old certificate (still in the model, installed anew) and without the goal."""
    twin = twin_factory("old-primary")
    clients = Clients(twin)
    step = Step(clients, "kv-sf-old-primary")
    old, goal = step.thumbprint("cluster-old"), step.thumbprint("cluster-cert")
    step.add_secret("cluster-cert")
    scale_set = clients.compute.virtual_machine_scale_sets.get(RG, "nt0")
    for group in scale_set.properties.virtual_machine_profile.os_profile.secrets:
        group.vault_certificates = [c for c in group.vault_certificates if "/secrets/cluster-cert/" not in c.certificate_url]
    scale_set.properties.virtual_machine_profile.os_profile.secrets = [
        g for g in scale_set.properties.virtual_machine_profile.os_profile.secrets if g.vault_certificates]
    step._put_vmss("nt0", scale_set)
    before = {i["instanceId"]: i for i in _nt0(twin)["instances"]}
    assert all(goal in _thumbprints(i) for i in before.values())  # still on every node
    twin.control().advance_clock(600)

    clients.compute.virtual_machine_scale_set_vms.begin_reimage(RG, "nt0", "1").result()

    after = {i["instanceId"]: i for i in _nt0(twin)["instances"]}
    assert _thumbprints(after["1"]) == {old}  # the goal is gone, the old certificate is back
    [installed] = after["1"]["certificates"]
    assert installed["source"] == "vmss-secret" and installed["arrived"] > before["1"]["certificates"][0]["arrived"]
    assert goal in _thumbprints(after["0"])  # the others are untouched
    assert after["1"]["latestModelApplied"] and after["1"]["provisioningState"] == "Succeeded"
    assert world_json(twin)["cluster"]["health_worst"] == "Healthy"


def test_reimage_of_an_unknown_instance_is_404(twin_factory: Any) -> None:
    import pytest
    from azure.core.exceptions import ResourceNotFoundError

    twin = twin_factory("goal-primary")
    with pytest.raises(ResourceNotFoundError):
        Clients(twin).compute.virtual_machine_scale_set_vms.begin_reimage(RG, "nt0", "42").result()
