"""Many concurrent clients, reading and writing shared resources: no errors, no lost update, no deadlock.

The 30-second, 50-client run is ``bench/twin_concurrency.py``; this runs the same workload for ~5 s against
an in-process twin, then hammers one vault and one scale set with raw writes to catch lost updates.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

from twinkit import requests_json, world_json
from wirekit import API, Wire

BENCH = Path(__file__).resolve().parents[2] / "bench" / "twin_concurrency.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("twin_concurrency", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_fifty_sdk_clients_for_five_seconds(twin) -> None:
    # Trusting the twin's CA alone keeps 200 TLS handshakes cheap (the bench uses the full bundle).
    report = _bench().run(twin.base_url, str(twin.server.tls.ca_file), twin.world.default_subscription,
                          twin.world.identity.tenant_id, workers=50, seconds=5)
    # Events the workload guarantees whatever the machine's speed (how far each worker gets in 5 s does not
    # count): no errors, lost updates or stuck workers; every worker's first call is a write, so 50 policies
    # at least; every worker read the certificate while connecting, and the twin answered each of those reads.
    assert report.ok, "\n".join(report.lines())
    assert report.added_policies >= 50
    vault = next(v for v in world_json(twin)["vaults"] if v["name"] == "kv-sf-basic")
    assert len(vault["accessPolicies"]) >= report.added_policies  # (the scenario's own policy is there too)
    log = requests_json(twin)["requests"]
    certificate_reads = [r for r in log if r["method"] == "GET" and r["path"].startswith("/kv/kv-sf-basic/certificates/cluster-cert")]
    assert sum(1 for r in certificate_reads if r["status"] == 200) >= 50
    assert not [r for r in log if r["status"] >= 500]


def test_concurrent_raw_writes_lose_nothing(twin) -> None:
    wire = Wire(twin)
    wire.token()  # fetch once; requests.Session is shared read-only below
    tenant = twin.world.identity.tenant_id
    vault = f"{wire.rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic"
    scale_set = f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0"
    local = threading.local()

    def session_wire() -> Wire:
        if not hasattr(local, "wire"):
            local.wire = Wire(twin)
            local.wire._tokens = dict(wire._tokens)
        return local.wire

    def write(n: int) -> tuple[str, int, int]:
        me = session_wire()
        object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"twin-concurrency/{n}"))
        body = {"properties": {"accessPolicies": [{"tenantId": tenant, "objectId": object_id, "permissions": {"secrets": ["get"]}}]}}
        added = me.request("PUT", f"{vault}/accessPolicies/add", body, api=API["keyvault"]).status_code
        tagged = me.request("PATCH", scale_set, {"tags": {f"t{n % 40:02d}": str(n)}}, api=API["compute"]).status_code
        return object_id, added, tagged

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(write, range(300)))
    assert {(a, t) for _, a, t in results} == {(200, 200)}
    policies = {p["objectId"] for p in wire.get_json(vault, API["keyvault"])["properties"]["accessPolicies"]}
    assert {o for o, _, _ in results} <= policies
    tags = wire.get_json(scale_set, API["compute"])["tags"]
    assert {f"t{k:02d}" for k in range(40)} <= set(tags)
    log = requests_json(twin)
    assert log["mutating"] == 600 and not [r for r in log["requests"] if r["status"] >= 500]


def test_the_bench_report_fails_on_any_finding() -> None:
    report_type = _bench().Report
    assert report_type(workers=1, seconds=1.0).ok
    for finding in ({"errors": ["get cluster: ServiceResponseError"]}, {"lost_updates": ["tag w00=3 reads '2'"]},
                    {"stuck_workers": 1}, {"twin_failures": 2}):
        report = report_type(workers=1, seconds=1.0, **finding)
        assert not report.ok and report.lines()[-1] == "FAILED"
