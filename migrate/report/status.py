"""Rendering of ``sfmigrate status``: the journal, the lock holder and the cluster's current state."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..commands import Status
    from ..journal import JournalState


def _elapsed(state: JournalState) -> str:
    try:
        start = dt.datetime.fromisoformat(state.created_at.replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(state.updated_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return "?"
    seconds = int((end - start).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def status_document(result: Status) -> dict[str, Any]:
    state = result.state
    steps = [] if state is None else [
        {"name": s.name, "status": s.status, "attempts": s.attempts, "started_at": s.started_at,
         "finished_at": s.finished_at, "last_error": s.last_error, "operation_in_flight": bool(s.operation_url)}
        for s in state.steps
    ]
    return {
        "journal": result.location,
        "status": state.status if state else "none",
        "run_id": state.run_id if state else None,
        "created_at": state.created_at if state else None,
        "updated_at": state.updated_at if state else None,
        "elapsed": _elapsed(state) if state else None,
        "counts": {k: sum(1 for s in steps if s["status"] == k) for k in ("done", "running", "failed", "pending")},
        "steps": steps,
        "last_error": state.last_error if state else None,
        "lock_holder": result.holder.to_dict() if result.holder else None,
        "cluster": result.cluster,
    }


def render_status(result: Status, fmt: str = "text") -> str:
    document = status_document(result)
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    lines = [f"journal:   {document['journal']}"]
    if result.state is None:
        lines.append("status:    no migration recorded for this cluster")
    else:
        counts = document["counts"]
        lines.append(
            f"status:    {document['status']}  ({counts['done']} done, {counts['running']} running, "
            f"{counts['failed']} failed, {counts['pending']} pending; elapsed {document['elapsed']})"
        )
        marks = {"done": "✓", "running": "→", "failed": "✗", "pending": "·"}
        for step in document["steps"]:
            extra = " (operation in flight)" if step["operation_in_flight"] else ""
            lines.append(f"  {marks.get(step['status'], '?')} {step['name']:<34} {step['status']}{extra}")
            if step["last_error"]:
                lines.append(f"      error: {step['last_error']}")
        if document["last_error"]:
            lines.append(f"last error: {document['last_error']}")
    cluster = document["cluster"]
    if cluster:
        if "error" in cluster:
            lines.append(f"cluster:   could not be read: {cluster['error']}")
        else:
            lines.append(f"cluster:   {cluster.get('clusterState')} / {cluster.get('provisioningState')}, declared by {cluster.get('declaration')}")
    holder = result.holder
    lines.append(f"lock:      held by {holder.describe()}" if holder else "lock:      free")
    return "\n".join(lines) + "\n"
