"""The pure readers over raw ARM bodies (migrate.readers), on bodies Azure really returned and on bodies shaped
like them; and one cluster whose issuer list has spaces, read the same way by discovery, checks, planner, the
cutover step and rehearsal."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from migrate import readers
from migrate.checks import run_checks
from migrate.discovery import cluster_view as discovered_cluster, node_type_view
from migrate.planner import make_plan
from migrate.rehearsal import scenario_from_snapshot
from migrate.snapshot import Snapshot
from migrate.steps.convert_cluster import _converted
from snapshots import (
    CLUSTER_ID, GOAL_CN, IDENTITY_ID, NOW, SUB, kv_extension, pki, plan, vmss_id, world,
)

RECORDED: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "recorded_arm_bodies.json").read_text())


def _spaced(thumbprint: str) -> str:
    """As a certificate dialog prints a thumbprint: lower-case pairs separated by spaces."""
    return " ".join(thumbprint[i:i + 2] for i in range(0, len(thumbprint), 2)).lower()


# -- issuer thumbprint lists ------------------------------------------------------------------------------
def test_issuer_list_is_comma_separated_with_spaces_stripped_and_hex_upper_cased() -> None:
    a, b = pki().authority("issuing").thumbprint, pki().authority("issuing2").thumbprint
    assert readers.issuer_thumbprints(f"{a},{b}") == [a, b]
    assert readers.issuer_thumbprints(f" {a.lower()} , {_spaced(b)} ") == [a, b]
    assert readers.issuer_thumbprints("") == [] and readers.issuer_thumbprints("  ") == [] and readers.issuer_thumbprints(None) == []


def test_issuer_list_entries_keep_what_validation_must_report() -> None:
    a = pki().authority("issuing").thumbprint
    assert readers.issuer_list_entries(f"{a},,{a} ") == [a, "", a]  # SFRP rejects empty and duplicated entries
    assert readers.issuer_thumbprints(f"{a},,{a} ") == [a, a]
    assert readers.issuer_list_entries(" ") == []


# -- the declaration --------------------------------------------------------------------------------------
def _cluster(**properties: Any) -> dict[str, Any]:
    body = copy.deepcopy(RECORDED["cluster_created"])
    body["properties"].update(properties)
    return body


def test_declaration_kind_of_real_and_real_shaped_clusters() -> None:
    issuer = pki().authority("issuing").thumbprint
    common = {"commonNames": [{"certificateCommonName": GOAL_CN, "certificateIssuerThumbprint": issuer}], "x509StoreName": "My"}
    assert readers.declaration_kind(RECORDED["cluster_created"]) == readers.NO_DECLARATION  # recorded unsecured cluster
    assert readers.declaration_kind(_cluster(certificate={"thumbprint": "ab" * 20, "x509StoreName": "My"})) == readers.THUMBPRINT
    assert readers.declaration_kind(_cluster(certificateCommonNames=common)) == readers.COMMON_NAME
    # SFRP keeps the thumbprint declaration until a full PUT drops 'certificate'
    assert readers.declaration_kind(_cluster(certificate={"thumbprint": "ab" * 20}, certificateCommonNames=common)) == readers.THUMBPRINT
    assert readers.declaration_kind(_cluster(certificateCommonNames={"commonNames": [], "x509StoreName": "My"})) == readers.NO_DECLARATION
    assert readers.declaration_kind(_cluster(certificate=None, certificateCommonNames=None)) == readers.NO_DECLARATION


def test_declared_thumbprints_are_upper_case() -> None:
    body = _cluster(certificate={"thumbprint": "ab" * 20, "thumbprintSecondary": "cd" * 20, "x509StoreName": "My"})
    assert readers.declared_thumbprints(body) == ("AB" * 20, "CD" * 20)
    assert readers.declared_thumbprints(RECORDED["cluster_created"]) == (None, None)


def test_declares_common_name_compares_issuers_as_read() -> None:
    a, b = pki().authority("issuing").thumbprint, pki().authority("issuing2").thumbprint
    body = _cluster(certificateCommonNames={"commonNames": [
        {"certificateCommonName": "other.contoso.com", "certificateIssuerThumbprint": a},
        {"certificateCommonName": GOAL_CN, "certificateIssuerThumbprint": f"{_spaced(b)}, {a.lower()}"},
    ]})
    assert readers.declares_common_name(body, GOAL_CN, [a, b])
    assert not readers.declares_common_name(body, GOAL_CN, [a])  # exactly the pinned issuers
    assert not readers.declares_common_name(body, GOAL_CN.upper(), [a, b])  # Service Fabric matches the name exactly
    body["properties"]["certificate"] = {"thumbprint": "ab" * 20}
    assert not readers.declares_common_name(body, GOAL_CN, [a, b])  # not converted while 'certificate' is there


# -- still updating ---------------------------------------------------------------------------------------
def test_cluster_states_of_the_recorded_cluster() -> None:
    state, provisioning = readers.cluster_states(RECORDED["cluster_created"])
    assert (state, provisioning) == ("WaitingForNodes", "Succeeded")
    assert not readers.cluster_accepts_updates(state, provisioning)
    assert readers.cluster_still_updating(state, provisioning)


@pytest.mark.parametrize("state, provisioning, accepts, moving", [
    ("Ready", "Succeeded", True, False),
    ("Ready", "Failed", False, False),  # the last update failed: quiet, but SFRP wants Succeeded
    ("Ready", "Updating", False, True),
    ("UpdatingUserCertificate", "Succeeded", False, True),
    ("UpgradeServiceUnreachable", "Failed", False, False),  # stuck, not moving
])
def test_cluster_update_rules(state: str, provisioning: str, accepts: bool, moving: bool) -> None:
    assert readers.cluster_accepts_updates(state, provisioning) is accepts
    assert readers.cluster_still_updating(state, provisioning) is moving


def test_scale_set_still_provisioning_as_recorded() -> None:
    creating, done = RECORDED["vmss_creating"], RECORDED["vmss_succeeded"]
    assert readers.provisioning_state(creating) == "Creating" and readers.still_provisioning("Creating")
    assert readers.provisioning_state(done) == "Succeeded" and not readers.still_provisioning("Succeeded")
    vm = _vm(provisioning="Succeeded")
    assert readers.scale_set_settled(done, [vm])
    assert not readers.scale_set_settled(creating, [vm])
    assert not readers.scale_set_settled(done, [vm, _vm(instance_id="1", provisioning="Updating")])


# -- scale-set VMs ----------------------------------------------------------------------------------------
def _vm(*, instance_id: str = "0", provisioning: str = "Succeeded", view: dict[str, Any] | None = None,
        latest: bool = True) -> dict[str, Any]:
    """A scale-set VM as listed with $expand=instanceView, its instance view the recorded one."""
    return {"instanceId": instance_id, "name": f"vmss_{instance_id}",
            "properties": {"latestModelApplied": latest, "provisioningState": provisioning,
                           "instanceView": RECORDED["vm_instance_view"] if view is None else view}}


def test_update_domain_from_the_recorded_instance_view() -> None:
    assert readers.update_domain(_vm()) == 0
    shifted = dict(RECORDED["vm_instance_view"], platformUpdateDomain=3)
    assert readers.update_domain(_vm(instance_id="7", view=shifted)) == 3
    assert readers.rollout_update_domain(_vm(instance_id="7", view=shifted)) == 3
    # Not reported (the VMs were listed without the instance view): instance id modulo five domains.
    assert readers.update_domain(_vm(instance_id="7", view={})) is None
    assert readers.rollout_update_domain(_vm(instance_id="7", view={})) == 2


def test_extension_statuses_and_latest_model_from_the_recorded_instance_view() -> None:
    statuses = readers.extension_statuses(_vm())
    assert set(statuses) == {"Microsoft.Azure.Security.AntimalwareSignature.AntimalwareConfiguration", "Microsoft.Azure.Geneva.GenevaMonitoring"}
    assert all(s["code"] == "ProvisioningState/succeeded" for s in statuses.values())
    assert statuses["Microsoft.Azure.Geneva.GenevaMonitoring"]["message"] == "ExtensionOperation:enable. Status:Success"
    assert readers.on_latest_model(_vm()) and not readers.on_latest_model(_vm(latest=False))


# -- scale-set extensions ---------------------------------------------------------------------------------
def test_extension_types_of_the_recorded_scale_set() -> None:
    vmss = RECORDED["vmss_succeeded"]
    assert [readers.extension_type(e) for e in readers.extensions(vmss)] == ["AntimalwareConfiguration", "GenevaMonitoring"]
    assert readers.sf_extension(vmss) is None and readers.kv_extension(vmss) is None  # not a node type
    assert not readers.is_linux(vmss)  # osDisk.osType Windows, windowsConfiguration


def _node_type_body(*, linux: bool = False) -> dict[str, Any]:
    body = copy.deepcopy(RECORDED["vmss_succeeded"])
    profile = body["properties"]["virtualMachineProfile"]
    endpoint = f"https://westeurope.servicefabric.azure.com/runtime/clusters/{SUB}/"
    profile["extensionProfile"]["extensions"] += [
        {"name": "nt0_ServiceFabricNode", "properties": {"publisher": "Microsoft.Azure.ServiceFabric",
                                                         "type": "ServiceFabricLinuxNode" if linux else "ServiceFabricNode",
                                                         "typeHandlerVersion": "1.1", "settings": {"clusterEndpoint": endpoint, "nodeTypeRef": "nt0"}}},
        {"name": "KVVMExtension", "properties": {"publisher": "Microsoft.Azure.KeyVault", "type": "KeyVaultForLinux" if linux else "KeyVaultForWindows",
                                                 "typeHandlerVersion": "3.0", "settings": {
                                                     "secretsManagementSettings": {"observedCertificates": ["https://kv.vault.azure.net/secrets/a",
                                                                                                            {"url": "https://kv.vault.azure.net/secrets/b"}]},
                                                     "authenticationSettings": {"msiClientId": "client-1"}}}},
    ]
    if linux:
        profile["storageProfile"]["osDisk"]["osType"] = "Linux"
    return body


def test_node_type_extensions_are_found_by_type() -> None:
    for linux in (False, True):
        body = _node_type_body(linux=linux)
        sf, kv = readers.sf_extension(body), readers.kv_extension(body)
        assert sf is not None and sf["name"] == "nt0_ServiceFabricNode"
        assert kv is not None and readers.extension_type(kv) == ("KeyVaultForLinux" if linux else "KeyVaultForWindows")
        assert readers.is_linux(body) is linux
        settings = kv["properties"]["settings"]
        assert readers.observed_certificate_urls(settings) == ["https://kv.vault.azure.net/secrets/a", "https://kv.vault.azure.net/secrets/b"]
        assert readers.msi_client_id(settings) == "client-1"
        # The cluster endpoint is compared without case or trailing slash.
        assert readers.joins_cluster(body, f"HTTPS://westeurope.servicefabric.azure.com/runtime/clusters/{SUB}")
        assert not readers.joins_cluster(body, "https://westeurope.servicefabric.azure.com/runtime/clusters/other")
        view = node_type_view(body, [_vm()])
        assert view.sf_extension is not None and view.kv_extension is not None
        assert view.os == ("linux" if linux else "windows") and view.instances[0].update_domain == 0


def test_readers_do_not_change_the_body() -> None:
    body = _node_type_body()
    before = copy.deepcopy(body)
    readers.is_linux(body), readers.extensions(body), readers.sf_extension(body), readers.scale_set_settled(body, [_vm()])
    node_type_view(body, [_vm()])
    empty: dict[str, Any] = {}
    readers.is_linux(empty), readers.extensions(empty), readers.declaration_kind(empty), readers.update_domain(empty)
    assert body == before and empty == {}


# -- one cluster whose issuer list has spaces, read the same everywhere -----------------------------------
def _already_cn_world(listed: str) -> Snapshot:
    """A cluster already declared by the goal's common name, the goal's issuer pinned as ``listed``; its view
    comes from discovery over a body shaped like the recorded cluster."""
    body = _cluster(
        clusterState="Ready", clusterCodeVersion="10.1.2493.9590", nodeTypes=[{"name": "nt0", "isPrimary": True}],
        clusterEndpoint=f"https://westeurope.servicefabric.azure.com/runtime/clusters/{SUB}",
        certificateCommonNames={"commonNames": [{"certificateCommonName": GOAL_CN, "certificateIssuerThumbprint": listed}],
                                "x509StoreName": "My"},
    )
    body["id"] = CLUSTER_ID
    return world(cluster=discovered_cluster(body), node_types=[node_type_view(_converted_node_type(), [_vm()])])


def _converted_node_type() -> dict[str, Any]:
    """nt0 after the swap: the Key Vault extension observing the goal, Service Fabric by common name."""
    body = _node_type_body()
    body.update(id=vmss_id("nt0"), name="nt0", location="westeurope",
                identity={"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}})
    sf, kv = readers.sf_extension(body), readers.kv_extension(body)
    assert sf is not None and kv is not None
    sf["properties"]["settings"]["certificate"] = {"commonNames": [GOAL_CN], "x509StoreName": "My"}
    sf["properties"]["provisionAfterExtensions"] = ["KVVMExtension"]
    kv["properties"]["settings"] = kv_extension().settings
    return body


def _reading(listed: str) -> dict[str, Any]:
    snapshot, spec = _already_cn_world(listed), plan()
    assert snapshot.cluster is not None
    codes = {f.code for f in run_checks(snapshot, spec, NOW)}
    scenario, _, _ = scenario_from_snapshot(snapshot, spec, NOW)
    return {
        "declaration": snapshot.cluster.declaration,
        "list_invalid": "ISSUER_LIST_INVALID" in codes,
        "issuer_not_pinned": "ISSUER_NOT_PINNED" in codes,
        "steps": [s.name for s in make_plan(snapshot, spec, NOW).steps],
        "converted": _converted(snapshot.cluster.raw, GOAL_CN, list(spec.goal.pinnedIssuers)),
        "rehearsal_pins": scenario["clusters"][0]["certificate"]["commonNames"][0]["issuers"],
        "rehearsal_goal_pins": scenario["goal"]["pinnedIssuers"],
    }


def test_an_issuer_list_with_spaces_is_read_identically_everywhere() -> None:
    issuer = pki().authority("issuing").thumbprint
    clean = _reading(issuer)
    assert clean["declaration"] == readers.COMMON_NAME and clean["converted"]
    assert not clean["list_invalid"] and not clean["issuer_not_pinned"]
    assert "convert-cluster" not in clean["steps"]
    assert clean["rehearsal_pins"] == clean["rehearsal_goal_pins"]  # the goal issuer's stand-in authority
    for listed in (f" {issuer} ", _spaced(issuer), f"  {_spaced(issuer).upper()}  "):
        assert _reading(listed) == clean, listed


def test_the_same_reading_tells_a_different_issuer_apart() -> None:
    """The control: pinning another issuer is seen as such by every reader (the test above can fail)."""
    other = _reading(_spaced(pki().authority("issuing2").thumbprint))
    assert other["issuer_not_pinned"] and not other["converted"] and "convert-cluster" in other["steps"]
    assert other["rehearsal_pins"] != other["rehearsal_goal_pins"]


def test_a_resumed_run_waits_while_anything_is_still_updating() -> None:
    """commands._busy reads "still updating" through the readers: cluster, scale set, instances."""
    from migrate.commands import _busy

    assert _busy(world()) is None
    for state, provisioning, busy in (("UpdatingUserCertificate", "Succeeded", True), ("Ready", "Updating", True),
                                      ("UpgradeServiceUnreachable", "Failed", False), ("Ready", "Failed", False)):
        snapshot = world()
        assert snapshot.cluster is not None
        snapshot.cluster.cluster_state, snapshot.cluster.provisioning_state = state, provisioning
        assert (_busy(snapshot) == f"cluster {state}/{provisioning}") is busy and (busy or _busy(snapshot) is None)
    snapshot = world()
    snapshot.node_types[0].raw["properties"]["provisioningState"] = "Updating"
    assert _busy(snapshot) == "scale set nt0 updating"
    snapshot = world()
    snapshot.node_types[0].instances[1].provisioning_state = "Creating"
    assert _busy(snapshot) == "instances of nt0 updating"
