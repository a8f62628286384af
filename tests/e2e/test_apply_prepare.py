"""apply = prepare_apply (lock, resume, re-plan, stale check, carried-over steps) + execute (the runner).
Preparing writes nothing to the journal and holds the lock until released."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate import commands
from migrate.errors import Locked
from twinkit import fast_session, requests_json


def test_preparing_holds_the_lock_writes_no_journal_and_sends_no_change(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic")
    session = fast_session(twin)
    state = tmp_path / "state"
    prepared = commands.prepare_apply(twin.plan_file, state_location=str(state), session=session)
    try:
        assert [s.name for s in prepared.plan.steps][:2] == ["ensure-identity", "grant-vault-access"]
        assert prepared.journal is None and not list(state.glob("*.journal.json"))
        assert requests_json(twin)["mutating"] == 0  # the twin saw reads only
        with pytest.raises(Locked):
            commands.prepare_apply(twin.plan_file, state_location=str(state), session=fast_session(twin))
        result = commands.execute(prepared)
    finally:
        prepared.release()
    assert result.state is not None and result.state.status == "complete"
    assert {r.status for r in result.state.steps} == {"done"}
    assert requests_json(twin)["mutating"] > 0
    again = commands.prepare_apply(twin.plan_file, state_location=str(state), session=session)  # the lock was released
    try:
        assert again.nothing_to_do and again.journal is not None and again.journal.status == "complete"
    finally:
        again.release()
