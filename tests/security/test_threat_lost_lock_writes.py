"""Threat: a run whose lock was broken (``unlock --force`` by an operator who believed it dead, or a lease that
expired) keeps writing while another run takes the cluster over; two writers interleave upgrades.
Defence (issue 13, defect 5; docs/security.md "Locks"): immediately before every mutating request the run journals
its intent, and that save checks the lock first, so a run that lost its lock sends no further write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.journal import LeaseLost, open_store
from twinkit import fast_session, requests_json


def test_lock_broken_during_a_steps_pre_write_wait_sends_no_further_write(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    session = fast_session(twin)
    state = tmp_path / "state"
    steps = commands.plan(twin.plan_file, session=session).plan.steps
    target = steps[1].name  # a step after a first one that wrote: the run is well under way
    broken: dict[str, Any] = {}

    def emit(event: dict[str, Any]) -> None:
        # The step has started and reads the world before its first write: break the lock now
        if event.get("type") == "step-start" and event.get("step") == target and not broken:
            broken["holder"] = open_store(str(state), session.spec.cluster.id).break_lock()
            broken["mutating"] = requests_json(twin)["mutating"]

    with pytest.raises(LeaseLost, match="stopped before writing"):
        commands.apply(twin.plan_file, state_location=str(state), session=session, emit=emit)
    assert broken["holder"] is not None and broken["mutating"] > 0
    assert requests_json(twin)["mutating"] == broken["mutating"], "a run without its lock sent a write"


def test_every_write_the_twin_received_was_journalled_first(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic")
    state = tmp_path / "state"
    commands.apply(twin.plan_file, state_location=str(state), session=fast_session(twin))
    journal = json.loads(next(state.glob("*.journal.json")).read_text())
    intents = [e for e in journal["events"] if e["type"] == "write-intent"]
    received = [r for r in requests_json(twin)["requests"] if r.get("method") in {"PUT", "PATCH", "POST", "DELETE"}
                and "/_emulator/" not in r.get("path", "") and "token" not in r.get("path", "")]
    assert len(intents) == requests_json(twin)["mutating"] == len(received) > 0
    assert [i["detail"]["method"] for i in intents] == [r["method"] for r in received]
    assert all(i["step"] for i in intents), "an intent outside any step"


def test_lease_broken_during_a_steps_pre_write_wait_sends_no_further_write(twin_factory, azurite, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The same with blob state: the lease is broken (unlock --force from another machine) while the step reads."""
    import uuid

    twin = twin_factory("old-primary")
    monkeypatch.setenv("SFMIGRATE_STATE_CONNECTION_STRING", azurite.connection_string)
    session = fast_session(twin)
    state = f"blob:sfm-{uuid.uuid4().hex[:12]}/journals"
    steps = commands.plan(twin.plan_file, session=session).plan.steps
    target = steps[1].name
    broken: dict[str, Any] = {}

    def emit(event: dict[str, Any]) -> None:
        if event.get("type") == "step-start" and event.get("step") == target and not broken:
            broken["holder"] = open_store(state, session.spec.cluster.id).break_lock()
            broken["mutating"] = requests_json(twin)["mutating"]

    with pytest.raises(LeaseLost):
        commands.apply(twin.plan_file, state_location=state, session=session, emit=emit)
    assert broken["holder"] is not None and broken["mutating"] > 0
    assert requests_json(twin)["mutating"] == broken["mutating"], "a run without its lease sent a write"
