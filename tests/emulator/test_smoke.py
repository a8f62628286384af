"""The twin answers Microsoft's own clients, unchanged, over HTTPS with its generated CA."""

from __future__ import annotations

from twinkit import Clients, requests_json, world_json


def test_sdk_clients_read_the_basic_world(twin, clients: Clients) -> None:
    clusters = list(clients.servicefabric.clusters.list())
    assert [c.name for c in clusters] == ["sfcluster"]
    assert clusters[0].cluster_state == "Ready"
    assert clusters[0].certificate is not None and clusters[0].certificate_common_names is None
    scale_sets = list(clients.compute.virtual_machine_scale_sets.list_all())
    assert [s.name for s in scale_sets] == ["nt0"]
    instances = list(clients.compute.virtual_machine_scale_set_vms.list("rg-sf", "nt0"))
    assert len(instances) == 3 and all(i.latest_model_applied for i in instances)
    vaults = list(clients.keyvault.vaults.list_by_subscription())
    assert len(vaults) == 1
    certificate = clients.certificates(vaults[0].properties.vault_uri).get_certificate("cluster-cert")
    assert certificate.policy.exportable is True
    world = world_json(twin)
    assert world["cluster"]["health"] == "Healthy"
    assert world["cluster"]["declaration"] == "thumbprint"
    log = requests_json(twin)
    assert log["mutating"] == 0
    assert all(r["caller"] for r in log["requests"] if r["status"] < 400 and "/oauth2/" not in r["path"] and "/_identity/" not in r["path"])
