"""The settle window's start survives a crash (issue 12): a cluster step journals when its upgrade ended in its
observed facts, before the step is done, and the runner takes the latest of those and the journal's field."""

from __future__ import annotations

from migrate.journal import JournalState
from migrate.runner import journal_upgrade_end
from migrate.steps.base import UPGRADE_FINISHED_AT


def test_a_crashed_steps_mark_counts_and_the_latest_wins() -> None:
    state = JournalState.new("/subscriptions/s/resourceGroups/g/providers/Microsoft.ServiceFabric/clusters/c", "h", "f",
                             ["declare-goal-secondary", "convert-cluster"])
    assert journal_upgrade_end(state) is None
    state.cluster_upgrade_ended_at = "2026-12-03T10:00:00+00:00"
    state.step("convert-cluster").status = "running"  # killed after the upgrade ended, before the step was done
    state.step("convert-cluster").observed[UPGRADE_FINISHED_AT] = "2026-12-03T10:40:00+00:00"
    state.step("declare-goal-secondary").observed[UPGRADE_FINISHED_AT] = "not a time"  # ignored, never trusted
    assert journal_upgrade_end(state) == "2026-12-03T10:40:00+00:00"
