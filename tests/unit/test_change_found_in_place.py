"""A cluster step that finds its change already in place after an earlier attempt (killed between sending the
upgrade and journaling its operation) takes the upgrade's end as now, so the settle window is not skipped; a first
attempt that finds it in place records nothing (a kill -9 test found the gap)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from migrate.journal.model import StepRecord
from migrate.steps.base import UPGRADE_FINISHED_AT, StepContext

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)


def _context(attempts: int) -> tuple[StepContext, list[int]]:
    saves: list[int] = []
    gateway: Any = SimpleNamespace(clock=SimpleNamespace(now=lambda: NOW))
    record = StepRecord("declare-goal-secondary", "running", attempts)
    return StepContext(gateway, None, record.name, record, lambda: saves.append(1), lambda *a, **k: None), saves  # type: ignore[arg-type]


def test_a_resumed_step_that_finds_its_change_in_place_marks_the_upgrade_end_now_and_saves_it() -> None:
    context, saves = _context(attempts=2)
    context.change_found_in_place()
    assert context.record.observed[UPGRADE_FINISHED_AT] == NOW.isoformat() and saves == [1]


def test_a_first_attempt_that_finds_the_change_in_place_marks_nothing() -> None:
    context, saves = _context(attempts=1)
    context.change_found_in_place()
    assert UPGRADE_FINISHED_AT not in context.record.observed and saves == []


def test_an_upgrade_end_already_journaled_is_kept() -> None:
    context, saves = _context(attempts=3)
    context.record.observed = {UPGRADE_FINISHED_AT: "2026-12-03T11:00:00+00:00"}
    context.change_found_in_place()
    assert context.record.observed[UPGRADE_FINISHED_AT] == "2026-12-03T11:00:00+00:00" and saves == []
