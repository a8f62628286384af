"""DESIGN §2 in whole worlds built in-process on a manual clock: nodes, extensions, upgrades, renewals.

Worlds come from the built-in scenarios (``build_world(..., clock=ManualClock())``); time moves only when a
test advances it, so every phase of an upgrade and every extension poll can be looked at in turn.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aztwin.clock import ManualClock
from aztwin.control import add_authority, renew_certificate
from aztwin.providers.compute.guest import apply_model
from aztwin.scenario import build_world, load_scenario
from aztwin.wire import TwinError
from aztwin.world import World

CN = "sfcluster.contoso.com"


def world_of(name: str) -> World:
    spec, _ = load_scenario(name)
    return build_world(spec, "https://127.0.0.1:1", clock=ManualClock())


def advance(world: World, seconds: float) -> None:
    world.clock.advance(seconds)
    world.events.run_due()


def cluster(world: World) -> Any:
    return next(iter(world.servicefabric.clusters.values()))


def snapshot(world: World) -> dict[str, Any]:
    return world.snapshot()["cluster"]


def thumbprint(world: World, certificate: str, index: int = -1) -> str:
    vault = next(iter(world.keyvault.vaults.values()))
    return vault.certificate(certificate).versions[index].issued.thumbprint


def reapply(world: World, *, initial: bool = True, clear: bool = True) -> Any:
    """Every instance takes its scale set's current model again (certificates cleared: a fresh VM)."""
    scale_set = world.compute.all()[0]
    for instance in scale_set.instances:
        if clear:
            instance.store.clear()
        apply_model(world, scale_set, instance, scale_set.profile, initial=initial)
    return scale_set.instances[0]


def kv_settings(world: World) -> dict[str, Any]:
    scale_set = world.compute.all()[0]
    return scale_set.extension("KVVMExtension")["properties"]["settings"]


def cn_body(world: World, issuers: list[str]) -> dict[str, Any]:
    body = copy.deepcopy(cluster(world).body)
    body["properties"].pop("certificate", None)
    body["properties"]["certificateCommonNames"] = {
        "commonNames": [{"certificateCommonName": CN, "certificateIssuerThumbprint": ",".join(issuers)}], "x509StoreName": "My",
    }
    return body


# -- nodes and their certificate stores ---------------------------------------------------------------
def test_a_removed_vmss_secret_stays_on_the_nodes() -> None:
    # research §4.1: "This does not remove the certificate from all your VMs."
    world = world_of("goal-secondary")
    old = thumbprint(world, "cluster-old")
    scale_set = world.compute.all()[0]
    group = scale_set.profile["osProfile"]["secrets"][0]
    group["vaultCertificates"] = [c for c in group["vaultCertificates"] if "cluster-old" not in c["certificateUrl"]]
    instance = reapply(world, clear=False)
    assert instance.installed(old) is not None and instance.installed(old).source == "vmss-secret"
    assert snapshot(world)["health"] == "Healthy"


@pytest.mark.parametrize(
    "breakage, expected",
    [
        ("no identity", "no managed identity"),
        ("no msiClientId", "msiClientId is required"),
        ("no access policy", "does not have secrets get permission"),
        ("rbac without role", "does not have secrets get permission"),
    ],
)
def test_the_key_vault_extension_fails_without_identity_client_id_or_permission(breakage: str, expected: str) -> None:
    world = world_of("already-cn")
    scale_set = world.compute.all()[0]
    vault = next(iter(world.keyvault.vaults.values()))
    if breakage == "no identity":
        scale_set.body.pop("identity")
    elif breakage == "no msiClientId":
        kv_settings(world).pop("authenticationSettings")
    elif breakage == "no access policy":
        vault.access_policies = [p for p in vault.access_policies if "secrets" not in p["permissions"]]
    else:
        vault.enable_rbac = True
    instance = reapply(world)
    kv, sf = instance.extensions["KVVMExtension"], instance.extensions["nt0_ServiceFabricNode"]
    assert kv.status == "failed" and expected in kv.message, kv.message
    # requireInitialSync + provisionAfterExtensions: the SF extension does not run on a failed sync.
    assert sf.status == "failed" and "provisions after 'KVVMExtension'" in sf.message
    assert not instance.store
    assert snapshot(world)["health"] == "Broken"


def test_an_rbac_vault_needs_key_vault_secrets_user_for_the_extension() -> None:
    world = world_of("already-cn")
    vault = next(iter(world.keyvault.vaults.values()))
    vault.enable_rbac = True
    identity = next(iter(world.msi.identities.values()))
    from aztwin.providers.authorization.models import ROLES_BY_NAME

    world.authorization.assign(vault.rid.id, ROLES_BY_NAME["key vault secrets user"].guid, identity.principal_id,
                               "ServicePrincipal", world.iso_now(), world.default_subscription)
    instance = reapply(world)
    assert instance.extensions["KVVMExtension"].status == "succeeded"
    assert snapshot(world)["health"] == "Healthy"


def test_require_initial_sync_retries_while_transitioning_then_fails() -> None:
    world = world_of("already-cn")
    kv_settings(world).pop("authenticationSettings")
    instance = reapply(world, initial=False)
    assert instance.extensions["KVVMExtension"].status == "transitioning"
    assert "nt0_ServiceFabricNode" not in instance.extensions  # waits for the Key Vault extension
    advance(world, 3600)
    assert instance.extensions["KVVMExtension"].status == "failed"
    assert instance.extensions["nt0_ServiceFabricNode"].status == "failed"


def test_without_require_initial_sync_the_service_fabric_extension_finds_no_certificate() -> None:
    world = world_of("already-cn")
    kv_settings(world)["secretsManagementSettings"]["requireInitialSync"] = False
    kv_settings(world).pop("authenticationSettings")
    instance = reapply(world)
    assert instance.extensions["KVVMExtension"].status == "succeeded"  # "Enabled; certificates not yet retrieved"
    sf = instance.extensions["nt0_ServiceFabricNode"]
    assert sf.status == "failed" and "FindBySubjectName' 'sfcluster.contoso.com'" in sf.message


def test_linux_extension_writes_a_pem_per_version_and_switches_the_symlink_which_sf_does_not_read() -> None:
    world = world_of("already-cn")
    scale_set = world.compute.all()[0]
    scale_set.profile["osProfile"] = {"linuxConfiguration": {"disablePasswordAuthentication": True}}
    assert scale_set.os == "linux"
    extension = scale_set.extension("KVVMExtension")
    extension["properties"]["type"] = "KeyVaultForLinux"
    instance = reapply(world)
    first = thumbprint(world, "cluster-cert")
    renewed = renew_certificate(world, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert"}).body["thumbprint"]
    advance(world, 3600)
    paths = sorted(c.path for c in instance.store)
    assert len(paths) == 2 and all(p.endswith(".pem") for p in paths)
    assert list(instance.symlinks.values()) == [renewed] and first != renewed
    # Issue 10: ServiceFabricLinuxNode does not read KeyVaultForLinux's files (microsoft/service-fabric#1308).
    cluster = snapshot(world)
    assert cluster["health"] == "Broken"
    assert all("LinuxKeyVaultExtensionNotReadBySF" in r for r in cluster["health_reasons"]), cluster["health_reasons"]


# -- the phased upgrade -------------------------------------------------------------------------------
def _start(world: World, body: dict[str, Any]) -> Any:
    operation = world.operations.start("sf-update", cluster(world).rid.id)
    world.servicefabric.start_update(cluster(world), body, operation)
    return operation


def test_the_upgrade_walks_upgrade_domains_phase_by_phase_with_a_verdict_after_each_step() -> None:
    world = world_of("goal-primary")
    operation = _start(world, cn_body(world, [world.pki.authority("contoso-issuing-1").thumbprint]))
    walked = []
    kinds_after_switch_ud0 = None
    while cluster(world).upgrade is not None:
        advance(world, world.settings.ud_walk_seconds)
        upgrade = cluster(world).upgrade
        if upgrade is not None:
            walked.append(upgrade.phase)
            if upgrade.phase == "switch-presentation UD0":
                kinds_after_switch_ud0 = {n: s.presentation.kind for n, s in cluster(world).node_settings.items()}
    assert walked[:2] == ["add-to-validation-list UD0", "add-to-validation-list UD1"]
    assert "switch-presentation UD4" in walked and walked[-1] == "trim-validation-list UD3"
    # Mid-walk, UD0 presents by common name while the other upgrade domains still present by thumbprint.
    assert kinds_after_switch_ud0 == {"nt0_0": "common_name", **{f"nt0_{i}": "thumbprint" for i in range(1, 5)}}
    state = snapshot(world)
    assert operation.status == "Succeeded" and state["cluster_state"] == "Ready"
    assert state["declaration"] == "common_name" and state["health"] == state["health_worst"] == "Healthy"


def test_the_first_violation_rolls_the_upgrade_back() -> None:
    world = world_of("issuer-not-pinned")
    before = copy.deepcopy(cluster(world).body)
    operation = _start(world, cn_body(world, [world.pki.authority("contoso-root").thumbprint]))
    advance(world, 100 * world.settings.ud_walk_seconds)
    state = snapshot(world)
    assert operation.status == "Failed" and operation.error["code"] == "ClusterUpgradeFailed"
    assert "trim-validation-list UD0" in operation.error["message"] and "CERT_E_UNTRUSTEDROOT" in operation.error["message"]
    assert cluster(world).body == before and state["declaration"] == "thumbprint"
    assert state["cluster_state"] == "Ready" and state["health"] == "Healthy" and state["health_worst"] == "Broken"
    assert any(h["phase"] == "trim-validation-list UD0" and h["health"] == "Broken" for h in state["health_history"])


def test_declaring_a_certificate_that_is_not_on_every_node_is_accepted_then_rolled_back() -> None:
    # SFRP accepts the upgrade; the first upgrade domain fails its health check and the upgrade rolls back.
    world = world_of("old-primary")
    before = copy.deepcopy(cluster(world).body)
    body = copy.deepcopy(cluster(world).body)
    body["properties"]["certificate"]["thumbprintSecondary"] = thumbprint(world, "cluster-cert")
    operation = _start(world, body)
    assert snapshot(world)["cluster_state"] == "UpdatingUserCertificate" and "thumbprintSecondary" in cluster(world).properties["certificate"]
    advance(world, 100 * world.settings.ud_walk_seconds)
    state = snapshot(world)
    assert operation.status == "Failed" and "add-to-validation-list UD0" in operation.error["message"]
    assert "install before declaring" in operation.error["message"] and "rolled back" in operation.error["message"]
    assert cluster(world).body == before and state["cluster_state"] == "Ready" and state["health"] == "Healthy"
    assert state["health_worst"] == "Broken"  # the domain's nodes went down before the rollback


def test_a_common_name_upgrade_rolls_back_unless_the_goal_is_presented_by_thumbprint() -> None:
    world = world_of("old-newer-than-goal")  # the goal installed as a secondary would not be presented
    goal = thumbprint(world, "cluster-cert")
    scale_set = world.compute.all()[0]
    for instance in scale_set.instances:
        goal_version = next(iter(world.keyvault.vaults.values())).certificate("cluster-cert").versions[0]
        from aztwin.providers.compute.guest import InstalledCert

        instance.store.append(InstalledCert(goal, goal_version.issued, "vmss-secret", "", world.iso_now()))
    cluster(world).properties["certificate"]["thumbprintSecondary"] = goal
    cluster(world).node_settings.clear()  # nodes pick up the declaration (Old + secondary Goal, Old newer)
    operation = _start(world, cn_body(world, [world.pki.authority("contoso-issuing-1").thumbprint]))
    advance(world, 100 * world.settings.ud_walk_seconds)
    assert operation.status == "Failed" and "switch-presentation UD0" in operation.error["message"]
    assert "must first be in the cluster by thumbprint" in operation.error["message"]
    assert snapshot(world)["declaration"] == "thumbprint" and snapshot(world)["cluster_state"] == "Ready"


# -- renewals on a running cluster --------------------------------------------------------------------
def test_a_renewal_from_the_pinned_issuer_is_picked_up_at_the_next_poll() -> None:
    world = world_of("already-cn")
    renewed = renew_certificate(world, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert"}).body
    assert renewed["issuer"] == "contoso-issuing-1"
    assert set(snapshot(world)["node_types"][0]["nodes"][0]["thumbprints"]) == {thumbprint(world, "cluster-cert", 0)}
    advance(world, 3600)
    state = snapshot(world)
    assert state["health"] == "Healthy" and {n["presents"] for n in state["node_types"][0]["nodes"]} == {renewed["thumbprint"]}
    arrived = state["node_types"][0]["nodes"][0]["certificates"]
    assert [c["source"] for c in arrived] == ["kv-extension", "kv-extension"]


@pytest.mark.parametrize("rekey", [False, True])
def test_a_renewal_from_an_unpinned_issuer_makes_a_running_cluster_unreachable(rekey: bool) -> None:
    # research §6.3-6.4: a new intermediate (or a DigiCert-style re-key sharing the pinned one's key).
    world = world_of("already-cn")
    add_authority(world, {"name": "contoso-issuing-2", "subject": "Contoso Issuing CA 2", "issuer": "contoso-root",
                          **({"reuseKeyOf": "contoso-issuing-1"} if rekey else {})})
    renewed = renew_certificate(world, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert", "issuer": "contoso-issuing-2"}).body
    advance(world, 3600)
    state = snapshot(world)
    assert state["health"] == "Broken" and state["cluster_state"] == "UpgradeServiceUnreachable"
    assert renewed["thumbprint"] in state["health_reasons"][0] and "not among the pinned issuers" in state["health_reasons"][0]


def test_extension_4_breaks_the_cluster_at_the_next_renewal() -> None:
    world = world_of("already-cn")
    extension = world.compute.all()[0].extension("KVVMExtension")
    extension["properties"]["typeHandlerVersion"] = "4.0"
    reapply(world, clear=False)  # the installed (CAPI) certificate stays; nothing breaks yet
    assert snapshot(world)["health"] == "Healthy"
    renew_certificate(world, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert"})
    advance(world, 3600)
    state = snapshot(world)
    assert state["health"] == "Broken" and "NTE_BAD_PROV_TYPE" in state["health_reasons"][0]
    assert {h["code"] for h in state["hazards"]} >= {"KeyVaultExtension4", "LinkOnRenewal"}


def test_an_expired_goal_breaks_the_cluster() -> None:
    world = world_of("expiring-goal")
    assert {h["code"] for h in snapshot(world)["hazards"]} == {"ExpiresSoon"}
    advance(world, 11 * 86400)  # nothing changes on the nodes: the twin notices the expiry by itself
    state = snapshot(world)
    assert state["health"] == "Broken" and "expired" in state["health_reasons"][0]


def test_the_cluster_code_version_decides_newest_not_before_or_farthest_not_after() -> None:
    world = world_of("goal-secondary")  # Old: NotBefore -200d, NotAfter +530d; Goal: NotBefore -5d, NotAfter +360d
    assert {n["presents"] for n in snapshot(world)["node_types"][0]["nodes"]} == {thumbprint(world, "cluster-cert")}
    cluster(world).properties["clusterCodeVersion"] = "7.2.432.9590"  # before 7.2 CU4
    world.servicefabric.on_nodes_changed()
    assert {n["presents"] for n in snapshot(world)["node_types"][0]["nodes"]} == {thumbprint(world, "cluster-old")}


@pytest.mark.parametrize(
    "handler, body, status",
    [
        (renew_certificate, {"vault": "nope", "certificate": "cluster-cert"}, 404),
        (renew_certificate, {"vault": "kv-sf-already-cn", "certificate": "nope"}, 404),
        (renew_certificate, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert", "issuer": "nobody"}, 400),
        (renew_certificate, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert", "validFor": "-1d"}, 400),
        (renew_certificate, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert", "validFrom": "-30000d"}, 400),
        (renew_certificate, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert", "sans": ["no spaces allowed"]}, 400),
        (renew_certificate, {"vault": "kv-sf-already-cn", "certificate": "cluster-cert", "ekus": ["codeSigning"]}, 400),
        (add_authority, {"name": "contoso-root", "subject": "again"}, 409),
        (add_authority, {"name": "new-ca", "subject": "New CA", "issuer": "nobody"}, 400),
        (add_authority, {"name": "bad name", "subject": "New CA"}, 400),
    ],
)
def test_the_control_api_refuses_bad_requests(handler: Any, body: dict[str, Any], status: int) -> None:
    world = world_of("already-cn")
    with pytest.raises(TwinError) as caught:
        handler(world, body)
    assert caught.value.status == status
    assert len(next(iter(world.keyvault.vaults.values())).certificate("cluster-cert").versions) == 1


def test_a_renewal_defaults_to_the_latest_versions_issuer_subject_sans_and_lifetime() -> None:
    world = world_of("shared-subject")
    renewed = renew_certificate(world, {"vault": "kv-sf-shared-subject", "certificate": "apps-cert"}).body
    issued = next(iter(world.keyvault.vaults.values())).certificate("apps-cert").versions[-1].issued
    assert renewed["issuer"] == "fabrikam-issuing" and issued.issuer_thumbprint == world.pki.authority("fabrikam-issuing").thumbprint
    assert issued.facts.subject_cn == CN and set(issued.facts.sans) == {CN, "apps.contoso.com"}
    assert (issued.facts.not_after - issued.facts.not_before).days == 365 and issued.facts.not_before <= world.now()
    self_signed = renew_certificate(world, {"vault": "kv-sf-shared-subject", "certificate": "cluster-cert", "issuer": "self", "validFrom": "1d"}).body
    assert self_signed["issuerThumbprint"] is None and self_signed["notBefore"] > world.now().isoformat()


# -- the world snapshot (contract) --------------------------------------------------------------------
def test_the_world_snapshot_contract() -> None:
    world = world_of("goal-secondary")
    state = world.snapshot()
    cluster_view = state["cluster"]
    assert cluster_view["declaration"] in ("thumbprint", "common_name")
    assert cluster_view["health"] in ("Healthy", "Broken") and cluster_view["health_worst"] in ("Healthy", "Broken")
    assert isinstance(cluster_view["health_reasons"], list) and cluster_view["cluster_state"] == "Ready"
    node = cluster_view["node_types"][0]["nodes"][0]
    assert set(node["thumbprints"]) == {thumbprint(world, "cluster-old"), thumbprint(world, "cluster-cert")}
    assert {c["source"] for c in node["certificates"]} == {"vmss-secret"} and all(c["arrived"] for c in node["certificates"])
    assert state["goal"]["pinnedIssuers"] == [world.pki.authority("contoso-issuing-1").thumbprint]
