"""Rendering of ``sfmigrate status``: the journal, the lock holder and the cluster's current state.

Elapsed times (issue 14): a run still going or interrupted is measured to now; a finished one (complete,
failed, stopped) by the journal's own times (updated_at - created_at). An interrupted or failed run whose step
left an Azure operation in flight says so: that operation goes on in Azure and ``apply`` re-attaches to it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..commands import Status
    from ..journal import JournalState
    from ..journal.model import StepRecord

LIVE = ("running", "interrupted")  # measured to now
IN_FLIGHT_REPORTED = ("interrupted", "failed")


def _moment(text: str | None) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def elapsed_seconds(state: JournalState, now: dt.datetime) -> int | None:
    start = _moment(state.created_at)
    end = now if state.status in LIVE else _moment(state.updated_at)
    return None if start is None or end is None else max(0, int((end - start).total_seconds()))


def current_step(state: JournalState) -> StepRecord | None:
    """The step in flight: the one the journal marks running (an interrupted run leaves it so)."""
    return next((s for s in state.steps if s.status == "running"), None)


def in_flight(state: JournalState) -> StepRecord | None:
    """The step of an interrupted or failed run that left an Azure operation going (``apply`` re-attaches)."""
    if state.status not in IN_FLIGHT_REPORTED:
        return None
    return next((s for s in state.steps if s.operation_url), None)


def in_flight_note(step: str) -> str:
    return f"an Azure operation is still in flight for {step}; `sfmigrate apply` re-attaches to it"


def status_document(result: Status, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.timezone.utc)
    state = result.state
    steps = [] if state is None else [
        {"name": s.name, "status": s.status, "attempts": s.attempts, "started_at": s.started_at,
         "finished_at": s.finished_at, "last_error": s.last_error, "operation_in_flight": bool(s.operation_url)}
        for s in state.steps
    ]
    seconds = elapsed_seconds(state, now) if state else None
    current = current_step(state) if state else None
    current_started = _moment(current.started_at) if current else None
    current_seconds = None if current_started is None else max(0, int((now - current_started).total_seconds()))
    flying = in_flight(state) if state else None
    return {
        "journal": result.location,
        "status": state.status if state else "none",
        "run_id": state.run_id if state else None,
        "created_at": state.created_at if state else None,
        "updated_at": state.updated_at if state else None,
        "elapsed": (_clock(seconds) if seconds is not None else "?") if state else None,
        "elapsed_seconds": seconds,
        "elapsed_to": ("now" if state.status in LIVE else "updated_at") if state else None,
        "current_step": None if current is None else {
            "name": current.name, "started_at": current.started_at, "elapsed_seconds": current_seconds,
            "elapsed": _clock(current_seconds) if current_seconds is not None else "?"},
        "operation_in_flight": None if flying is None else {"step": flying.name, "reattach": True,
                                                            "message": in_flight_note(flying.name)},
        "counts": {k: sum(1 for s in steps if s["status"] == k) for k in ("done", "running", "failed", "pending")},
        "steps": steps,
        "last_error": state.last_error if state else None,
        "lock_holder": result.holder.to_dict() if result.holder else None,
        "cluster": result.cluster,
    }


def render_status(result: Status, fmt: str = "text", now: dt.datetime | None = None) -> str:
    document = status_document(result, now)
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
        current = document["current_step"]
        if current:
            lines.append(f"current:   {current['name']} (elapsed {current['elapsed']})")
        marks = {"done": "✓", "running": "→", "failed": "✗", "pending": "·"}
        for step in document["steps"]:
            extra = " (operation in flight)" if step["operation_in_flight"] else ""
            lines.append(f"  {marks.get(step['status'], '?')} {step['name']:<34} {step['status']}{extra}")
            if step["last_error"]:
                lines.append(f"      error: {step['last_error']}")
        if document["last_error"]:
            lines.append(f"last error: {document['last_error']}")
        if document["operation_in_flight"]:
            lines.append(f"note:      {document['operation_in_flight']['message']}")
    cluster = document["cluster"]
    if cluster:
        if "error" in cluster:
            lines.append(f"cluster:   could not be read: {cluster['error']}")
        else:
            lines.append(f"cluster:   {cluster.get('clusterState')} / {cluster.get('provisioningState')}, declared by {cluster.get('declaration')}")
    holder = result.holder
    lines.append(f"lock:      held by {holder.describe()}" if holder else "lock:      free")
    return "\n".join(lines) + "\n"


def interruption_message(state: JournalState | None) -> str | None:
    """What Ctrl-C (or SIGTERM) during ``apply`` says, once: the step in flight and whether its Azure operation
    goes on (None when the journal shows no interrupted step)."""
    if state is None or state.status != "interrupted":
        return None
    step = current_step(state)
    if step is None:
        return None
    if step.operation_url:
        return (f"interrupted during step {step.name}; the journal is saved. The Azure operation it started continues "
                "in Azure: run `sfmigrate apply` again and it re-attaches to it (runbooks/failures/interrupted.md)")
    return (f"interrupted during step {step.name} (no Azure operation was in flight); the journal is saved: "
            "run `sfmigrate apply` again to resume (runbooks/failures/interrupted.md)")
