"""50 concurrent clients reading and writing the Azure twin for 30 s: no errors, no lost update, no deadlock.

Run: ``.venv/bin/python bench/twin_concurrency.py [--workers 50] [--seconds 30]``. It starts
``sfmigrate emulator serve`` as a child process (its own interpreter, as in a fleet run), points Microsoft's
clients at it through the ready line's ``env`` and makes every worker loop over reads (cluster, scale set,
instances, vault, a Key Vault certificate) and writes that touch shared resources:

- ``accessPolicies/add`` on one vault, each for a principal of its own -> every one must end up in the vault;
- a ``PATCH`` of the scale set's tags, one key per worker -> every worker's last value must be visible.

It prints counts, rates, latency percentiles and ratios, and exits 1 on any error, lost update or worker that
did not stop (a deadlock). ``tests/emulator/test_concurrency.py`` runs the same workload for ~5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RG, CLUSTER, SCALE_SET, VAULT = "rg-sf", "sfcluster", "nt0", "kv-sf-basic"
_NAMESPACE = uuid.UUID("9f6c1f0e-5b7a-4a43-8d2e-2c4f1b9e7a10")


@dataclass
class Report:
    workers: int
    seconds: float
    warmup_seconds: float = 0.0
    operations: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lost_updates: list[str] = field(default_factory=list)
    stuck_workers: int = 0
    twin_requests: int = 0
    twin_mutating: int = 0
    twin_failures: int = 0  # responses >= 400 other than Key Vault's 401 challenge
    twin_busy_seconds: float = 0.0  # time spent in the twin's handlers (excludes TLS and socket I/O)
    added_policies: int = 0

    @property
    def ok(self) -> bool:
        return not (self.errors or self.lost_updates or self.stuck_workers or self.twin_failures)

    def lines(self) -> list[str]:
        total = sum(self.operations.values())
        out = [
            f"workers {self.workers}, {self.seconds:.1f} s wall after {self.warmup_seconds:.1f} s to build clients and connect",
            f"client operations {total} ({total / self.seconds:.1f}/s), twin requests {self.twin_requests} "
            f"({self.twin_requests / self.seconds:.1f}/s), mutating {self.twin_mutating} "
            f"(ratio {self.twin_mutating / max(self.twin_requests, 1):.3f})",
            f"twin handler time {self.twin_busy_seconds:.2f} s (ratio to wall {self.twin_busy_seconds / self.seconds:.3f})",
        ]
        for name in sorted(self.operations):
            samples = sorted(self.latencies.get(name, [])) or [0.0]
            pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000  # noqa: E731
            out.append(f"  {name:<22} n={self.operations[name]:<6} p50={pick(0.5):7.1f} ms  p95={pick(0.95):7.1f} ms  p99={pick(0.99):7.1f} ms")
        out.append(f"access policies added {self.added_policies}, lost updates {len(self.lost_updates)}, "
                   f"errors {len(self.errors)}, twin failures {self.twin_failures}, stuck workers {self.stuck_workers}")
        out.extend(f"  lost: {item}" for item in self.lost_updates[:10])
        out.extend(f"  error: {item}" for item in self.errors[:10])
        out.append("OK" if self.ok else "FAILED")
        return out


def run(base_url: str, ca_bundle: str, subscription: str, tenant: str, *, workers: int = 50, seconds: float = 30.0,
        credential: Any = None) -> Report:
    """Drive the twin at ``base_url`` with ``workers`` threads for ``seconds``; check the world afterwards.

    Every worker first builds its clients and opens its connections (each new TLS connection parses
    ``ca_bundle``: ~100 ms of CPU with the system CAs in it); the clock starts when all are ready.
    """
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.certificates import CertificateClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.keyvault import KeyVaultManagementClient
    from azure.mgmt.servicefabric import ServiceFabricManagementClient

    credential = credential or DefaultAzureCredential()
    kwargs = {"base_url": base_url, "credential_scopes": ["https://management.azure.com/.default"],
              "connection_verify": ca_bundle, "polling_interval": 0.01, "connection_timeout": 20, "read_timeout": 20}
    report = Report(workers, seconds)
    lock = threading.Lock()
    added: list[str] = []
    last_tag: dict[str, str] = {}
    window: list[float] = []  # [start, stop] of the measured run, set when every worker is warm
    logged_before: list[int] = []  # the twin's request count when the clock started

    def start_clock() -> None:
        logged_before.append(_control(base_url, ca_bundle, "/_emulator/requests?since=1000000000")["total"])
        window.extend([time.monotonic(), time.monotonic() + seconds])

    warm = threading.Barrier(workers + 1, action=start_clock)
    vault_uri = KeyVaultManagementClient(credential, subscription, **kwargs).vaults.get(RG, VAULT).properties.vault_uri

    def timed(name: str, action: Any) -> Any:
        started = time.monotonic()
        try:
            return action()
        except Exception as exc:  # every failure is a finding: the workload expects none
            with lock:
                report.errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            return None
        finally:
            with lock:
                report.operations[name] += 1
                report.latencies.setdefault(name, []).append(time.monotonic() - started)

    def worker(index: int) -> None:
        sf = ServiceFabricManagementClient(credential, subscription, **kwargs)  # one client set per worker
        compute = ComputeManagementClient(credential, subscription, **kwargs)
        keyvault = KeyVaultManagementClient(credential, subscription, **kwargs)
        certificates = CertificateClient(vault_uri, credential, verify_challenge_resource=False, connection_verify=ca_bundle)
        try:  # open every client's connection before the clock starts
            sf.clusters.get(RG, CLUSTER), compute.virtual_machine_scale_sets.get(RG, SCALE_SET)
            keyvault.vaults.get(RG, VAULT), certificates.get_certificate("cluster-cert")
        finally:
            warm.wait()
        stop_at = window[1]
        step = 0
        while True:  # writes first, so every worker writes at least once; the deadline is checked per call
            step += 1
            object_id = str(uuid.uuid5(_NAMESPACE, f"{index}/{step}"))
            policy = {"properties": {"accessPolicies": [{"tenantId": tenant, "objectId": object_id, "permissions": {"secrets": ["get"]}}]}}
            key, value = f"w{index:02d}", str(step)
            calls = [
                ("add access policy", lambda: keyvault.vaults.update_access_policy(RG, VAULT, "add", policy),
                 lambda: added.append(object_id)),
                ("patch tags", lambda: compute.virtual_machine_scale_sets.begin_update(RG, SCALE_SET, {"tags": {key: value}}).result(),
                 lambda: last_tag.__setitem__(key, value)),
                ("get cluster", lambda: sf.clusters.get(RG, CLUSTER), None),
                ("get scale set", lambda: compute.virtual_machine_scale_sets.get(RG, SCALE_SET), None),
                ("list instances", lambda: list(compute.virtual_machine_scale_set_vms.list(RG, SCALE_SET)), None),
                ("get vault", lambda: keyvault.vaults.get(RG, VAULT), None),
                ("get certificate", lambda: certificates.get_certificate("cluster-cert"), None),
            ]
            for name, action, record in calls:
                if time.monotonic() >= stop_at:
                    return
                if timed(name, action) is not None and record is not None:
                    with lock:
                        record()

    threads = [threading.Thread(target=worker, args=(i,), name=f"worker-{i}", daemon=True) for i in range(workers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    warm.wait(timeout=300)
    report.warmup_seconds = window[0] - began
    for thread in threads:
        thread.join(timeout=max(0.0, window[1] - time.monotonic()) + 60)
    report.stuck_workers = sum(1 for t in threads if t.is_alive())
    report.seconds = time.monotonic() - window[0]
    report.added_policies = len(added)

    vault = KeyVaultManagementClient(credential, subscription, **kwargs).vaults.get(RG, VAULT)
    present = {p.object_id for p in vault.properties.access_policies}
    report.lost_updates += [f"access policy for {o} missing from the vault" for o in added if o not in present]
    tags = ComputeManagementClient(credential, subscription, **kwargs).virtual_machine_scale_sets.get(RG, SCALE_SET).tags or {}
    report.lost_updates += [f"tag {k}={v} reads {tags.get(k)!r}" for k, v in last_tag.items() if tags.get(k) != v]
    log = _control(base_url, ca_bundle, "/_emulator/requests")
    measured = log["requests"][logged_before[0]:]
    report.twin_requests = len(measured)
    report.twin_mutating = sum(1 for r in measured if r.get("mutating"))
    report.twin_busy_seconds = sum(r.get("duration_ms") or 0 for r in measured) / 1000
    report.twin_failures = sum(
        1 for r in log["requests"] if r["status"] >= 400 and not (r["status"] == 401 and r["path"].startswith("/kv/") and r["caller"] is None)
    )
    return report


def _control(base_url: str, ca_bundle: str, path: str) -> Any:
    from aztwin import ControlClient

    return ControlClient(base_url, ca_bundle).call("GET", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--time-scale", type=float, default=3000.0)
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "migrate", "emulator", "serve", "--scenario", "basic", "--port", "0",
               "--time-scale", str(args.time_scale)]
    repo = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        ready = json.loads(child.stdout.readline())
        os.environ.update(ready["env"])  # DefaultAzureCredential -> the twin's managed-identity endpoint
        report = run(ready["arm_endpoint"], ready["ca_bundle"], ready["subscription_id"], ready["tenant_id"],
                     workers=args.workers, seconds=args.seconds)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
