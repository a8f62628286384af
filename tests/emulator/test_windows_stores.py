"""Windows certificate stores: the Key Vault extension installs where its settings say, Service Fabric looks only
in ``LocalMachine\\<x509StoreName>`` (docs/twin.md, "Certificate stores"). Each test performs the wrong step by
hand through the SDK and reads the outcome through ``/_emulator/world``.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sfsteps import Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"
DAY = 86400


def _cluster(twin: Any) -> dict[str, Any]:
    return world_json(twin)["cluster"]


def _stores(twin: Any, thumbprint: str) -> set[str]:
    """The stores holding a certificate on the first node."""
    instance = world_json(twin)["scale_sets"][0]["instances"][0]
    return {c.get("store") for c in instance["certificates"] if c["thumbprint"] == thumbprint}


def _advance(twin: Any, seconds: float) -> None:
    twin.control().advance_clock(seconds)


def _renew(twin: Any, vault: str) -> dict[str, Any]:
    renewed: dict[str, Any] = twin.control().call("POST", "/_emulator/certificates/renew", {"vault": vault, "certificate": "cluster-cert"})
    return renewed


def _presented(twin: Any) -> set[str | None]:
    return {n["presents"] for g in _cluster(twin)["node_types"] for n in g["nodes"]}


def test_the_extension_installing_to_current_user_leaves_service_fabric_without_the_goal(twin_factory: Any) -> None:
    """old-primary: the goal reaches the nodes only through the Key Vault extension, into CurrentUser\\MY."""
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    goal = step.thumbprint("cluster-cert")
    identity = step.create_identity()
    step.grant_secrets(identity)
    with pytest.raises(HttpResponseError) as extension_failure:
        step.install_kv_extension(identity, ["cluster-cert"], CN, store_location="CurrentUser")
    message = str(extension_failure.value)
    assert f"Cannot find certificate with 'FindBySubjectName' '{CN}' in store 'My'" in message
    assert "installed in CurrentUser\\MY" in message and "only in LocalMachine\\My" in message
    assert _stores(twin, goal) == {"CurrentUser\\MY"}  # the extension did install it, where it was told to
    with pytest.raises(HttpResponseError) as caught:
        step.put_common_names(CN, [step.authority("contoso-issuing-1")])
    assert "rolled back" in str(caught.value) and "store mismatch" in str(caught.value)
    after = _cluster(twin)
    assert after["declaration"] == "thumbprint" and after["health"] == "Healthy"


def test_a_store_name_other_than_x509_store_name_is_not_found_either(twin_factory: Any) -> None:
    """LocalMachine, but TrustedPeople while the Service Fabric extension reads My."""
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    identity = step.create_identity()
    step.grant_secrets(identity)
    with pytest.raises(HttpResponseError) as caught:
        step.install_kv_extension(identity, ["cluster-cert"], CN, store_name="TrustedPeople")
    assert "installed in LocalMachine\\TrustedPeople" in str(caught.value)
    assert _stores(twin, step.thumbprint("cluster-cert")) == {"LocalMachine\\TrustedPeople"}


def test_converting_with_the_extension_on_current_user_breaks_the_cluster_when_the_installed_version_expires(twin_factory: Any) -> None:
    """goal-primary: the conversion works on the copy the VMSS secret left in LocalMachine\\My, but every renewal
    lands in CurrentUser\\MY only; when the last LocalMachine copy expires no node can present a certificate."""
    twin = twin_factory("goal-primary")
    step = Step(Clients(twin), "kv-sf-goal-primary")
    old_goal = step.thumbprint("cluster-cert")
    step.convert("cluster-cert", CN, [step.authority("contoso-issuing-1")], store_location="CurrentUser", polling_seconds=DAY)
    converted = _cluster(twin)
    assert converted["declaration"] == "common_name" and converted["health"] == "Healthy"  # the hazard is latent

    renewed = _renew(twin, "kv-sf-goal-primary")
    _advance(twin, DAY + 60)  # the extension polls and installs the renewal, where it was told to
    assert _stores(twin, renewed["thumbprint"]) == {"CurrentUser\\MY"}
    assert _cluster(twin)["health"] == "Healthy"  # the old version in LocalMachine\My still serves

    _advance(twin, 340 * DAY)  # past the old version's NotAfter
    broken = _cluster(twin)
    assert broken["health"] == "Broken" and broken["cluster_state"] == "UpgradeServiceUnreachable"
    reason = broken["health_reasons"][0]
    assert "CurrentUser\\MY" in reason and "only in LocalMachine\\My" in reason and "store mismatch" in reason
    assert old_goal != renewed["thumbprint"]


def test_the_same_steps_into_local_machine_stay_healthy_past_the_expiry(twin_factory: Any) -> None:
    """The control: the extension's store matches x509StoreName, so the renewal takes over."""
    twin = twin_factory("goal-primary")
    step = Step(Clients(twin), "kv-sf-goal-primary")
    step.convert("cluster-cert", CN, [step.authority("contoso-issuing-1")], polling_seconds=DAY)
    renewed = _renew(twin, "kv-sf-goal-primary")
    _advance(twin, DAY + 60)
    assert _stores(twin, renewed["thumbprint"]) == {"LocalMachine\\MY"}
    _advance(twin, 340 * DAY)
    after = _cluster(twin)
    assert after["health"] == after["health_worst"] == "Healthy"
    assert _presented(twin) == {renewed["thumbprint"]}


# -- the key provider: Service Fabric supports CAPI1 keys only (cluster-security-certificates) ----------------
def _cng_goal_scenario(tmp_path: Any) -> Any:
    """old-primary, but the goal's PFX carries no CAPI1 provider attribute: Windows imports its key with CNG."""
    import yaml

    from aztwin.scenario import builtin_path

    document = yaml.safe_load(builtin_path("old-primary").read_text(encoding="utf-8"))
    document["name"] = "old-primary-cng-goal"
    goal = next(c for c in document["vaults"][0]["certificates"] if c["name"] == "cluster-cert")
    goal["keyProvider"] = "CNG"
    path = tmp_path / "cng-goal.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_declaring_a_goal_with_a_cng_key_is_rolled_back_naming_the_provider(twin_factory: Any, tmp_path: Any) -> None:
    twin = twin_factory(None, scenario_file=_cng_goal_scenario(tmp_path))
    step = Step(Clients(twin), "kv-sf-old-primary")
    goal = step.thumbprint("cluster-cert")
    step.add_secret("cluster-cert")  # the documented first step: the goal as a versioned VMSS secret
    instance = world_json(twin)["scale_sets"][0]["instances"][0]
    assert {c["keyProvider"] for c in instance["certificates"] if c["thumbprint"] == goal} == {"CNG"}
    with pytest.raises(HttpResponseError) as caught:  # goal as secondary: it has the later NotBefore, so it is presented
        step.patch_thumbprints(step.thumbprint("cluster-old"), goal)
    assert "ClusterUpgradeFailed" in str(caught.value) and "NTE_BAD_PROV_TYPE" in str(caught.value)
    after = _cluster(twin)
    assert after["health_worst"] == "Broken" and "CAPI1 only" in after["health_worst_reasons"][0]
    assert after["health"] == "Healthy" and after["certificate"].get("thumbprintSecondary") is None  # rolled back


def test_the_same_goal_with_a_capi1_key_is_declared(twin_factory: Any) -> None:
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    step.add_secret("cluster-cert")
    step.patch_thumbprints(step.thumbprint("cluster-old"), step.thumbprint("cluster-cert"))
    after = _cluster(twin)
    assert after["health"] == after["health_worst"] == "Healthy"
