"""Bench: `plan` on one cluster against the twin — wall time (target < 2 s on loopback) and the requests it
made beside the minimum the plan needs (one read per resource it depends on).

Run: .venv/bin/python bench/plan_speed.py [scenario] [repeats]
"""

from __future__ import annotations

import statistics
import sys
import time

from _common import plan_file, twin

from migrate import commands


def main() -> int:
    scenario = sys.argv[1] if len(sys.argv) > 1 else "multi-nodetype"
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    running = twin(scenario, 120.0)
    try:
        planfile = plan_file(running)
        session = None
        walls, requests = [], []
        result = None
        for _ in range(repeats):
            started = time.perf_counter()
            result = commands.plan(planfile, session=session)
            walls.append(time.perf_counter() - started)
            session = result.session
            requests.append(result.requests)
        assert result is not None
        node_types = len(result.snapshot.node_types)
        vault_certificates = len(result.snapshot.vault_certificates)
        # cluster, scale-set list, instances per node type, vault, identity, goal certificate, its issuer (AIA),
        # the vault's certificate list and each other certificate (shared-subject check), and each distinct
        # secret version the node types reference (old certificates' validity dates).
        secret_versions = len({s.certificate_url for n in result.snapshot.node_types for s in n.secrets})
        minimum = 1 + 1 + node_types + 1 + 1 + 1 + 1 + 1 + vault_certificates + secret_versions
        print(f"scenario {scenario}: {node_types} node types, {vault_certificates} other vault certificates")
        print(f"plan wall time: median {statistics.median(walls):.3f} s, first {walls[0]:.3f} s, best {min(walls):.3f} s (target < 2 s)")
        print(f"requests made (SDK calls): {requests[-1]}; minimum the plan needs: {minimum}; ratio {requests[-1] / minimum:.2f}")
        return 0 if statistics.median(walls) < 2.0 else 1
    finally:
        running.stop()


if __name__ == "__main__":
    sys.exit(main())
