"""Linux node types (issue 10), performed by hand with the real SDK clients; the outcome is read through
``/_emulator/world``. waagent removes the certificate files of secrets no longer in the scale set's model
(rule LinuxSecretsFollowGoalState), and ServiceFabricLinuxNode never reads KeyVaultForLinux's files
(rule LinuxKeyVaultExtensionNotReadBySF, microsoft/service-fabric#1308); docs/twin.md, "Linux node types"."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sfsteps import RG, Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"
VAULT = "kv-sf-linux"


def _nt0(twin: Any) -> dict[str, Any]:
    return next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt0")


def _drop_secrets(clients: Clients) -> None:
    """The wrong step: take the goal's VMSS secret out of the model (a PATCH of osProfile.secrets)."""
    from azure.mgmt.compute.models import (
        VirtualMachineScaleSetUpdate, VirtualMachineScaleSetUpdateOSProfile, VirtualMachineScaleSetUpdateVMProfile,
    )

    update = VirtualMachineScaleSetUpdate(virtual_machine_profile=VirtualMachineScaleSetUpdateVMProfile(
        os_profile=VirtualMachineScaleSetUpdateOSProfile(secrets=[])))
    clients.compute.virtual_machine_scale_sets.begin_update(RG, "nt0", update).result()


def test_removing_the_goal_secret_while_declared_by_thumbprint_breaks_linux_nodes_naming_the_rule(twin_factory: Any) -> None:
    twin = twin_factory("linux-nodetype")
    clients = Clients(twin)
    goal = Step(clients, VAULT).thumbprint("cluster-cert")
    assert world_json(twin)["cluster"]["health_worst"] == "Healthy"
    with pytest.raises(HttpResponseError) as failed:  # every instance takes the model (Automatic): files removed
        _drop_secrets(clients)
    assert "LinuxSecretsFollowGoalState" in str(failed.value) and goal in str(failed.value)
    assert all(goal not in {c["thumbprint"] for c in i["certificates"]} for i in _nt0(twin)["instances"])
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "thumbprint" and cluster["health"] == "Broken"
    assert cluster["health_reasons"] and all(
        "LinuxSecretsFollowGoalState" in r and f"waagent removed /var/lib/waagent/{goal}.crt/.prv" in r for r in cluster["health_reasons"]
    ), cluster["health_reasons"]


def test_a_reimaged_linux_node_gets_only_the_models_secrets(twin_factory: Any) -> None:
    """After the model lost the secret, a reimaged node comes back on a fresh disk with only the model's secrets:
    none, so it cannot find the certificate the cluster declares by thumbprint."""
    twin = twin_factory("linux-nodetype")
    clients = Clients(twin)
    goal = Step(clients, VAULT).thumbprint("cluster-cert")
    with pytest.raises(HttpResponseError):
        _drop_secrets(clients)
    with pytest.raises(HttpResponseError) as failed:
        clients.compute.virtual_machine_scale_set_vms.begin_reimage(RG, "nt0", "1").result()
    assert "LinuxSecretsFollowGoalState" in str(failed.value)
    reimaged = next(i for i in _nt0(twin)["instances"] if i["instanceId"] == "1")
    assert reimaged["certificates"] == []
    reasons = [r for r in world_json(twin)["cluster"]["health_reasons"] if reimaged["name"] in r]
    assert reasons and f"finds no certificate for thumbprint {goal}" in reasons[0] and "LinuxSecretsFollowGoalState" in reasons[0]


def test_key_vault_extension_only_delivery_on_linux_leaves_service_fabric_without_the_certificate(twin_factory: Any) -> None:
    """The Windows recipe on Linux: KeyVaultForLinux observes the goal, the SF extension goes by common name and
    the VMSS secret is removed. The extension installs its PEM files, Service Fabric does not read them."""
    twin = twin_factory("linux-nodetype")
    clients = Clients(twin)
    step = Step(clients, VAULT)
    identity = step.create_identity()
    step.grant_secrets(identity)
    with pytest.raises(HttpResponseError) as failed:
        step.install_kv_extension(identity, ["cluster-cert"], CN, kv_on_linux=True, remove_secrets=True)
    assert "LinuxKeyVaultExtensionNotReadBySF" in str(failed.value)
    for instance in _nt0(twin)["instances"]:
        [installed] = instance["certificates"]
        assert installed["source"] == "kv-extension" and installed["path"].startswith("/var/lib/waagent/Microsoft.Azure.KeyVault.Store/")
        assert instance["extensions"]["KVVMExtension"]["status"] == "succeeded"
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == "Broken"
    assert all("LinuxKeyVaultExtensionNotReadBySF" in r for r in cluster["health_reasons"]), cluster["health_reasons"]


def test_key_vault_extension_beside_the_kept_secret_changes_nothing_for_service_fabric(twin_factory: Any) -> None:
    """With the VMSS secret kept, Service Fabric finds the goal in waagent's files: the extension adds nothing
    it reads, and the cluster stays Healthy."""
    twin = twin_factory("linux-nodetype")
    clients = Clients(twin)
    step = Step(clients, VAULT)
    goal = step.thumbprint("cluster-cert")
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.install_kv_extension(identity, ["cluster-cert"], CN, kv_on_linux=True, remove_secrets=False)
    cluster = world_json(twin)["cluster"]
    assert cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    assert {n["presents"] for t in cluster["node_types"] for n in t["nodes"]} == {goal}
