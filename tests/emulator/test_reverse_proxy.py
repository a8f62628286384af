"""The reverse proxy's certificate is part of the health verdict, on every node including new and reimaged ones.

Performed by hand with Microsoft's SDK clients (sfsteps); the outcome is read through ``/_emulator/world``
(docs/twin.md, "Reverse proxy certificate"; microsoft/service-fabric#1007).
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sfsteps import CLUSTER, RG, Step
from twinkit import Clients, world_json

VAULT = "kv-sf-reverse-proxy"


def _without_secret(step: Step, certificate: str) -> None:
    """Take one certificate's VMSS secret out of nt0's model (every node keeps the certificate it has)."""
    scale_set = step.compute.virtual_machine_scale_sets.get(RG, "nt0")
    profile = scale_set.properties.virtual_machine_profile
    for group in profile.os_profile.secrets:
        group.vault_certificates = [c for c in group.vault_certificates if f"/secrets/{certificate}/" not in c.certificate_url]
    profile.os_profile.secrets = [g for g in profile.os_profile.secrets if g.vault_certificates]
    step._put_vmss("nt0", scale_set)


def _instance(twin: Any, instance_id: str) -> dict[str, Any]:
    nt0 = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt0")
    return next(i for i in nt0["instances"] if i["instanceId"] == instance_id)


def test_a_reimaged_node_without_the_reverse_proxy_certificate_breaks_the_cluster_naming_the_reverse_proxy(twin_factory: Any) -> None:
    twin = twin_factory("reverse-proxy-thumbprint")
    clients = Clients(twin)
    step = Step(clients, VAULT)
    proxy = step.thumbprint("reverse-proxy-cert")
    _without_secret(step, "reverse-proxy-cert")
    assert world_json(twin)["cluster"]["health"] == "Healthy"  # removing a secret removes nothing from VMs

    clients.compute.virtual_machine_scale_set_vms.begin_reimage(RG, "nt0", "1").result()

    node = _instance(twin, "1")
    assert proxy not in {c["thumbprint"] for c in node["certificates"]}
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == "Broken"
    [reason] = cluster["health_reasons"]  # the cluster certificate itself is fine: only the reverse proxy's is missing
    assert f"node {node['name']} finds no certificate for the reverse proxy (thumbprint {proxy}: not installed)" in reason
    assert "ReverseProxyCertificateOnEveryNode" in reason


def test_a_reimaged_node_gets_the_reverse_proxy_certificate_back_while_the_model_delivers_it(twin_factory: Any) -> None:
    twin = twin_factory("reverse-proxy-thumbprint")
    clients = Clients(twin)
    proxy = Step(clients, VAULT).thumbprint("reverse-proxy-cert")
    clients.compute.virtual_machine_scale_set_vms.begin_reimage(RG, "nt0", "1").result()
    assert proxy in {c["thumbprint"] for c in _instance(twin, "1")["certificates"]}
    cluster = world_json(twin)["cluster"]
    assert cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]


def test_an_expired_reverse_proxy_certificate_breaks_the_cluster(twin_factory: Any) -> None:
    """microsoft/service-fabric#1007: the cluster certificate renewed by common name, the reverse proxy's left to expire."""
    twin = twin_factory("reverse-proxy-thumbprint")
    twin.control().advance_clock(336 * 86400)  # the reverse proxy's certificate has 335 days left; the cluster's too
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == "Broken"
    assert any("for the reverse proxy" in r and "expired, not yet valid or without a private key" in r for r in cluster["health_reasons"])


def test_declaring_a_reverse_proxy_common_name_no_node_holds_is_rolled_back_naming_the_reverse_proxy(twin_factory: Any) -> None:
    from azure.mgmt.servicefabric.models import ServerCertificateCommonName, ServerCertificateCommonNames

    twin = twin_factory("goal-primary")
    clients = Clients(twin)
    cluster = clients.servicefabric.clusters.get(RG, CLUSTER)
    cluster.reverse_proxy_certificate_common_names = ServerCertificateCommonNames(
        common_names=[ServerCertificateCommonName(certificate_common_name="rp.contoso.com", certificate_issuer_thumbprint="")], x509_store_name="My")
    with pytest.raises(HttpResponseError) as caught:
        clients.servicefabric.clusters.begin_create_or_update(RG, CLUSTER, cluster).result()
    assert "ClusterUpgradeFailed" in str(caught.value) and "for the reverse proxy (common name rp.contoso.com: not installed)" in str(caught.value)
    after = world_json(twin)["cluster"]
    assert after["health_worst"] == "Broken" and after["health"] == "Healthy"  # rolled back
    assert "reverseProxyCertificateCommonNames" not in (clients.servicefabric.clusters.get(RG, CLUSTER).as_dict())
