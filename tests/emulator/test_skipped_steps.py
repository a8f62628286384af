"""Skip a documented step and the twin says no, or says the cluster broke, naming the rule.

Each test performs a plausible shortcut by hand through the SDK (research/sf_migration.md §6 lists the
outages these shortcuts caused) and checks the outcome through ``/_emulator/world``.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sfsteps import Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"


def state(twin: Any) -> dict[str, Any]:
    return world_json(twin)["cluster"]


def test_converting_old_primary_directly_rolls_back(twin_factory: Any) -> None:
    """Skip upgrade 1: the goal is on the nodes (Key Vault extension) but not in the cluster by thumbprint. SFRP
    accepts the upgrade; the first domain fails its health check and the upgrade rolls back."""
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.install_kv_extension(identity, ["cluster-cert"], CN)
    with pytest.raises(HttpResponseError) as caught:
        step.put_common_names(CN, [step.authority("contoso-issuing-1")])
    assert "rolled back" in str(caught.value) and "switch-presentation UD0" in str(caught.value)
    assert "must first be in the cluster by thumbprint" in str(caught.value)
    after = state(twin)
    assert after["declaration"] == "thumbprint" and after["health"] == "Healthy" and after["cluster_state"] == "Ready"
    assert after["health_worst"] == "Broken"  # the first domain's nodes failed before the rollback


def test_declaring_the_goal_before_it_is_installed_rolls_back(twin_factory: Any) -> None:
    """Skip 'install before declaring': the goal as secondary by thumbprint, without the VMSS secret."""
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    with pytest.raises(HttpResponseError) as caught:
        step.patch_thumbprints(step.thumbprint("cluster-old"), step.thumbprint("cluster-cert"))
    assert "rolled back" in str(caught.value) and "install before declaring" in str(caught.value)
    assert state(twin)["certificate"].get("thumbprintSecondary") is None


def test_forgetting_the_manual_node_type_rolls_back(twin_factory: Any) -> None:
    """The secret goes into every model, but nt1 (upgrade policy Manual) never takes it: not installed there."""
    twin = twin_factory("multi-nodetype")
    step = Step(Clients(twin), "kv-sf-multi")
    step.add_secret("cluster-cert", manual_upgrade=False)
    with pytest.raises(HttpResponseError) as caught:
        step.patch_thumbprints(step.thumbprint("cluster-old"), step.thumbprint("cluster-cert"))
    assert "rolled back" in str(caught.value) and "node type nt1" in str(caught.value)
    nt1 = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt1")
    assert not any(i["latestModelApplied"] for i in nt1["instances"])


def test_declaring_common_names_before_the_extension_installed_the_certificate_rolls_back(twin_factory: Any) -> None:
    """The extension cannot install the goal (its identity has no access policy); the CN declaration follows anyway."""
    twin = twin_factory("not-exportable")  # any world where the goal is not on the nodes
    step = Step(Clients(twin), "kv-sf-not-exportable")
    identity = step.create_identity()  # no access policy: skipped
    with pytest.raises(HttpResponseError) as vmss_failure:
        step.install_kv_extension(identity, ["cluster-cert"], CN)
    assert "does not have secrets get permission" in str(vmss_failure.value)
    with pytest.raises(HttpResponseError) as caught:
        step.put_common_names(CN, [step.authority("contoso-issuing-1")])
    assert "rolled back" in str(caught.value) and f"'{CN}'" in str(caught.value)
    world = world_json(twin)
    instance = world["scale_sets"][0]["instances"][0]
    assert instance["extensions"]["KVVMExtension"]["status"] == "failed"
    assert "provisions after 'KVVMExtension'" in instance["extensions"]["nt0_ServiceFabricNode"]["message"]
    assert state(twin)["health"] == "Healthy" and state(twin)["declaration"] == "thumbprint"  # rolled back


def test_the_service_fabric_extension_by_common_name_without_provision_after_fails(twin_factory: Any) -> None:
    """provisionAfterExtensions skipped: the SF extension may run before the Key Vault extension installed the goal."""
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    identity = step.create_identity()
    step.grant_secrets(identity)
    with pytest.raises(HttpResponseError) as caught:
        step.install_kv_extension(identity, ["cluster-cert"], CN, provision_after=False)
    assert "Cannot find certificate with 'FindBySubjectName' 'sfcluster.contoso.com'" in str(caught.value)


def test_pinning_issuers_that_miss_the_goals_issuer_is_rolled_back(twin_factory: Any) -> None:
    """The goal pins the root, not the direct issuer: the upgrade breaks the cluster and SFRP rolls it back."""
    twin = twin_factory("issuer-not-pinned")
    step = Step(Clients(twin), "kv-sf-not-pinned")
    with pytest.raises(HttpResponseError) as caught:
        step.convert("cluster-cert", CN, [step.authority("contoso-root")])
    message = str(caught.value)
    assert "ClusterUpgradeFailed" in message and "rolled back" in message
    assert "not among the pinned issuers" in message and "CERT_E_UNTRUSTEDROOT" in message
    after = state(twin)
    assert after["declaration"] == "thumbprint" and after["cluster_state"] == "Ready" and after["health"] == "Healthy"
    assert after["health_worst"] == "Broken" and "direct issuer" in after["health_worst_reasons"][0]


def test_link_on_renewal_with_overlapping_sans_breaks_the_running_cluster(twin_factory: Any) -> None:
    """linkOnRenewal left on while another vault certificate covers the cluster certificate's SANs (seed 003)."""
    twin = twin_factory("shared-subject")
    step = Step(Clients(twin), "kv-sf-shared-subject")
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.install_kv_extension(identity, ["cluster-cert", "apps-cert"], CN, link_on_renewal=True)
    broken = state(twin)
    assert broken["health"] == "Broken" and broken["cluster_state"] == "UpgradeServiceUnreachable"
    assert "linkOnRenewal" in broken["health_reasons"][0]
    assert {h["code"] for h in broken["hazards"]} >= {"LinkOnRenewal", "SharedSubject"}
    with pytest.raises(HttpResponseError) as caught:  # SFRP can no longer manage the cluster
        step.put_common_names(CN, [step.authority("contoso-issuing-1")])
    assert "ClusterUpdateUnavailable" in str(caught.value)


def test_the_same_world_without_link_on_renewal_converts(twin_factory: Any) -> None:
    twin = twin_factory("shared-subject")
    step = Step(Clients(twin), "kv-sf-shared-subject")
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.install_kv_extension(identity, ["cluster-cert", "apps-cert"], CN, link_on_renewal=False)
    step.put_common_names(CN, [step.authority("contoso-issuing-1")])
    after = state(twin)
    assert after["declaration"] == "common_name" and after["health"] == after["health_worst"] == "Healthy"
    assert {h["code"] for h in after["hazards"]} >= {"SharedSubject"}


def test_a_patch_cannot_remove_the_thumbprint_declaration(twin_factory: Any) -> None:
    """research §0.6: the SDK omits ``certificate=None``; the PATCH then holds both forms and SFRP refuses it."""
    from azure.mgmt.servicefabric.models import ClusterUpdateParameters, ServerCertificateCommonName, ServerCertificateCommonNames

    twin = twin_factory("goal-primary")
    step = Step(Clients(twin), "kv-sf-goal-primary")
    names = ServerCertificateCommonNames(
        common_names=[ServerCertificateCommonName(certificate_common_name=CN, certificate_issuer_thumbprint=step.authority("contoso-issuing-1"))],
        x509_store_name="My",
    )
    with pytest.raises(HttpResponseError) as caught:
        step.sf.clusters.begin_update("rg-sf", "sfcluster", ClusterUpdateParameters(certificate=None, certificate_common_names=names)).result()
    assert "InvalidCommonNameThumbprintPair" in str(caught.value)


def test_a_renewal_from_an_unpinned_intermediate_after_the_migration_makes_the_cluster_unreachable(twin_factory: Any) -> None:
    """The DigiCert re-key (research §6.4), through the control API: renew, let the extension poll, look."""
    import json
    import ssl
    import urllib.request

    twin = twin_factory("already-cn")
    context = ssl.create_default_context(cafile=twin.ca_bundle)

    def control(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(twin.base_url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return json.loads(response.read())

    control("/_emulator/pki/authorities", {"name": "contoso-issuing-1-rekeyed", "subject": "Contoso Issuing CA 1", "issuer": "contoso-root", "reuseKeyOf": "contoso-issuing-1"})
    renewed = control("/_emulator/certificates/renew", {"vault": "kv-sf-already-cn", "certificate": "cluster-cert", "issuer": "contoso-issuing-1-rekeyed"})
    control("/_emulator/clock/advance", {"seconds": 3700})
    after = state(twin)
    assert after["health"] == "Broken" and after["cluster_state"] == "UpgradeServiceUnreachable"
    assert renewed["thumbprint"] in after["health_reasons"][0] and "not among the pinned issuers" in after["health_reasons"][0]
    vault_uri = Clients(twin).keyvault.vaults.get("rg-sf", "kv-sf-already-cn").properties.vault_uri
    versions = Clients(twin).certificates(vault_uri).list_properties_of_certificate_versions("cluster-cert")
    assert len(list(versions)) == 2  # the data plane serves the new version too
