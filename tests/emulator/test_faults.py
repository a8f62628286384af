"""With 20% of requests failing transiently, Microsoft's clients still finish by their own retry policies.

The twin injects 429/503 (with ``Retry-After``), 500 and connection resets (idempotent methods only unless
named: aztwin/faults.py). The clients keep azure-core's RetryPolicy; the only change is a small
``retry_backoff_factor`` (a constructor kwarg) so the suite stays fast.

Assertions are on events in the twin's request log (which fault hit which request, and what answered the
retry), never on the share of requests that failed: how many polls an operation takes depends on the
machine's speed, so a rate measured over a few dozen requests is not a property of the twin or the clients.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.mgmt.servicefabric.models import ClusterUpdateParameters

from aztwin.faults import FaultPlan, FaultSpecError
from twinkit import Clients, requests_json, world_json
from wirekit import Wire

RG = "rg-sf"


def _fast_retries(clients: Clients) -> Clients:
    clients.kwargs["retry_backoff_factor"] = 0.05
    return clients


# One of each kind on the first request its rule matches (rate=1, limit=1), so every kind fires whatever the
# order of requests; then a seeded 20% of all requests, the test's real weather. Regexes hold no ',' or ';'.
EACH_KIND_ONCE = ";".join([
    "match=^GET .*/clusters/sfcluster$,kinds=429,rate=1,limit=1",
    "match=^GET .*/virtualMachines$,kinds=500,rate=1,limit=1",
    "match=^GET /kv/,kinds=503,rate=1,limit=1",
    "match=^GET .*/operation,kinds=reset,rate=1,limit=1",  # an LRO poll: reset only where a retry is safe
])


def _survived(log: list[dict[str, Any]], index: int) -> bool:
    """A later request for the same method and path got a real answer (the client's retry went through)."""
    faulted = log[index]
    return any(r["method"] == faulted["method"] and r["path"] == faulted["path"] and not r["fault"] and 200 <= r["status"] < 400
               for r in log[index + 1:])


@pytest.mark.parametrize("seed", [1, 7, 23])
def test_reads_and_lros_complete_through_twenty_percent_faults(twin_factory, seed: int) -> None:
    twin = twin_factory("basic", faults=f"{EACH_KIND_ONCE};rate=0.2,seed={seed}")
    clients = _fast_retries(Clients(twin))
    sf, compute = clients.servicefabric, clients.compute
    vault = clients.keyvault.vaults.get(RG, "kv-sf-basic")
    certificates = clients.certificates(vault.properties.vault_uri)
    for round_ in range(4):
        assert sf.clusters.get(RG, "sfcluster").name == "sfcluster"
        assert len(list(compute.virtual_machine_scale_set_vms.list(RG, "nt0", expand="instanceView"))) == 3
        assert certificates.get_certificate("cluster-cert").name == "cluster-cert"
        cluster = sf.clusters.begin_update(RG, "sfcluster", ClusterUpdateParameters(tags={"round": str(round_)})).result()
        assert cluster.tags["round"] == str(round_) and cluster.cluster_state == "Ready"
        scale_set = compute.virtual_machine_scale_sets.begin_update(RG, "nt0", {"tags": {"round": str(round_)}}).result()
        assert scale_set.tags["round"] == str(round_)
        compute.virtual_machine_scale_sets.begin_update_instances(RG, "nt0", {"instanceIds": ["0", "1", "2"]}).result()
    log = requests_json(twin)["requests"]
    faulted = [i for i, r in enumerate(log) if r["fault"]]
    assert {log[i]["fault"] for i in faulted} == {"429", "500", "503", "reset"}  # every kind fired
    assert [log[i] for i in faulted if not _survived(log, i)] == []  # and every faulted request was retried through
    assert all(log[i]["status"] == (0 if log[i]["fault"] == "reset" else int(log[i]["fault"])) for i in faulted)
    assert not any(r["fault"] == "reset" and r["method"] in ("POST", "PATCH") for r in log)
    assert not any(r["fault"] for r in log if r["path"].startswith(("/_identity", "/_emulator")))
    world = world_json(twin)
    assert world["cluster"]["cluster_state"] == "Ready"
    assert all(i["latestModelApplied"] for i in world["scale_sets"][0]["instances"])


def test_named_reset_hits_patch_and_the_sdk_does_not_retry_it(twin_factory) -> None:
    """A dropped PATCH is not transient for the client, so azure-core gives up: why reset is opt-in there."""
    twin = twin_factory("basic", faults="match=^PATCH ,kinds=reset,rate=1,limit=1")
    compute = _fast_retries(Clients(twin)).compute
    with pytest.raises(ServiceResponseError):
        compute.virtual_machine_scale_sets.begin_update(RG, "nt0", {"tags": {"a": "b"}})
    assert compute.virtual_machine_scale_sets.begin_update(RG, "nt0", {"tags": {"a": "b"}}).result().tags["a"] == "b"


def test_throttling_carries_integer_retry_after(twin_factory) -> None:
    twin = twin_factory("basic", faults="kinds=429,rate=1,limit=1,retry_after_ms=2400")
    wire = Wire(twin)
    response = wire.request("GET", f"{wire.rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster", api="2021-06-01")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2" and response.headers["retry-after-ms"] == "2400"
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert wire.request("GET", f"{wire.rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster", api="2021-06-01").status_code == 200


def test_fault_plan_is_reproducible_from_its_seed() -> None:
    def draw(spec: str) -> list[str | None]:
        plan = FaultPlan.parse(spec)
        return [getattr(plan.decide(m, "/subscriptions/x")[0], "kind", None) for m in ["GET", "PATCH", "POST", "PUT"] * 50]

    assert draw("rate=0.2,seed=5") == draw("rate=0.2,seed=5") != draw("rate=0.2,seed=6")
    assert draw("rate=0") == [None] * 200
    plan = FaultPlan.parse("latency=25;match=/vaults/,rate=1,kinds=503")
    assert plan.decide("GET", "/subscriptions/x/clusters/c") == (None, 25)
    fault, latency = plan.decide("GET", "/subscriptions/x/vaults/v")
    assert fault is not None and fault.kind == "503" and latency == 25


@pytest.mark.parametrize("spec", ["rate=2", "kinds=418", "nonsense", "latency=soon", "match=(", "speed=1"])
def test_bad_fault_specs_are_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        FaultPlan.parse(spec)
