"""``fleet status``: every cluster's journal (and its state in ARM) at a glance."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..commands import status as cluster_status
from ..report.status import status_document
from .plan import MAX_DISCOVERY_THREADS
from .resolve import FleetMember
from .session import LoadedFleet


def member_status(fleet: LoadedFleet, member: FleetMember, state_location: str | None) -> dict[str, Any]:
    document = status_document(cluster_status(member.cluster_id, state_location, fleet.session.session_for(member.spec)))
    counts = document["counts"]
    return {
        "cluster": member.cluster_id,
        "label": fleet.label(member),
        "status": document["status"],
        "steps_done": counts["done"],
        "steps": sum(counts.values()),
        "last_error": document["last_error"],
        "updated_at": document["updated_at"],
        "lock_holder": document["lock_holder"],
        "cluster_state": (document["cluster"] or {}).get("clusterState"),
        "declaration": (document["cluster"] or {}).get("declaration"),
        "journal": document["journal"],
    }


def fleet_status(fleet: LoadedFleet, state_location: str | None) -> list[dict[str, Any]]:
    if not fleet.members:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_DISCOVERY_THREADS, len(fleet.members))), thread_name_prefix="sfmigrate-status") as pool:
        return list(pool.map(lambda member: member_status(fleet, member, state_location), fleet.members))
