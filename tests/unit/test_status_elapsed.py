"""``sfmigrate status`` measures time to now for a run that is not over, the current step's too, and says when an
interrupted or failed run left an Azure operation in flight (issue 14); Ctrl-C's message names the step."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from migrate.commands import Status
from migrate.journal import JournalState
from migrate.report.status import interruption_message, render_status, status_document

CREATED = "2026-12-03T10:00:00Z"
SAVED = "2026-12-03T10:20:00Z"
STEP_STARTED = "2026-12-03T10:15:00Z"
NOW = dt.datetime(2026, 12, 3, 11, 0, 0, tzinfo=dt.timezone.utc)
OPERATION = "https://management.azure.com/subscriptions/s/providers/Microsoft.ServiceFabric/locations/l/operationResults/1"


def journal(status: str, *, in_flight: bool = True) -> JournalState:
    state = JournalState.new("/subscriptions/s/resourceGroups/g/providers/Microsoft.ServiceFabric/clusters/c", "h", "f",
                             ["ensure-identity", "declare-goal-secondary", "convert-cluster"])
    state.created_at, state.updated_at, state.status = CREATED, SAVED, status  # type: ignore[assignment]
    done, upgrading = state.steps[0], state.steps[1]
    done.status, done.started_at, done.finished_at = "done", CREATED, CREATED
    upgrading.status, upgrading.started_at = ("running" if status != "failed" else "failed"), STEP_STARTED
    upgrading.operation_url = OPERATION if in_flight else None
    return state


def document(state: JournalState, now: dt.datetime = NOW) -> dict:
    return status_document(Status("/tmp/state", state, None), now)


@pytest.mark.parametrize("status", ["running", "interrupted"])
def test_a_run_not_over_is_measured_to_now_and_advances(status: str) -> None:
    first = document(journal(status))
    later = document(journal(status), NOW + dt.timedelta(minutes=5))
    assert first["elapsed_seconds"] == 3600 and first["elapsed"] == "1h00m00s" and first["elapsed_to"] == "now"
    assert later["elapsed_seconds"] == 3600 + 300
    assert first["current_step"] == {"name": "declare-goal-secondary", "started_at": STEP_STARTED,
                                     "elapsed_seconds": 45 * 60, "elapsed": "0h45m00s"}
    assert later["current_step"]["elapsed_seconds"] == 50 * 60


@pytest.mark.parametrize("status", ["complete", "failed", "stopped"])
def test_a_finished_run_keeps_the_journals_own_length(status: str) -> None:
    state = journal(status)
    if status == "complete":
        for record in state.steps:
            record.status, record.operation_url = "done", None
    for now in (NOW, NOW + dt.timedelta(days=2)):
        assert document(state, now)["elapsed_seconds"] == 20 * 60 and document(state, now)["elapsed_to"] == "updated_at"


@pytest.mark.parametrize("status", ["interrupted", "failed"])
def test_an_operation_left_in_flight_is_named_with_re_attach(status: str) -> None:
    state = journal(status)
    flying = document(state)["operation_in_flight"]
    assert flying["step"] == "declare-goal-secondary" and flying["reattach"] is True
    text = render_status(Status("/tmp/state", state, None), "text", NOW)
    assert "an Azure operation is still in flight for declare-goal-secondary; `sfmigrate apply` re-attaches to it" in text
    as_json = json.loads(render_status(Status("/tmp/state", state, None), "json", NOW))
    assert as_json["operation_in_flight"]["step"] == "declare-goal-secondary"
    for kept in ("journal", "status", "elapsed", "counts", "steps", "last_error", "lock_holder", "cluster"):
        assert kept in as_json  # the existing fields stay


def test_no_operation_or_a_running_run_says_nothing_of_re_attaching() -> None:
    assert document(journal("interrupted", in_flight=False))["operation_in_flight"] is None
    assert document(journal("running"))["operation_in_flight"] is None  # that run may well be alive and waiting
    assert "re-attaches" not in render_status(Status("/tmp/state", journal("interrupted", in_flight=False), None), "text", NOW)


def test_no_journal_has_no_times() -> None:
    empty = status_document(Status("/tmp/state", None, None), NOW)
    assert empty["elapsed"] is None and empty["elapsed_seconds"] is None and empty["current_step"] is None
    assert empty["operation_in_flight"] is None


def test_ctrl_c_message_names_the_step_and_what_goes_on() -> None:
    said = interruption_message(journal("interrupted"))
    assert said is not None and "declare-goal-secondary" in said
    assert "continues in Azure" in said and "re-attaches" in said
    calm = interruption_message(journal("interrupted", in_flight=False))
    assert calm is not None and "declare-goal-secondary" in calm and "no Azure operation was in flight" in calm
    assert interruption_message(journal("failed")) is None and interruption_message(None) is None
