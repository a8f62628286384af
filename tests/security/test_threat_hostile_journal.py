"""Threat: whoever can write the state folder or the blob container hands sfmigrate a hostile journal (wrong types,
deep nesting, a huge file, random JSON) to crash it mid-resume or make it misbehave.
Defence (issue 13, "Bad input never gives internal error"; docs/security.md "Journal and state"): the journal is
validated field by field, its depth and size bounded; ``status`` and ``apply`` answer in one line with exit 64 or 1.
A hypothesis test feeds random journals (random JSON, and random mutations of a real one) to both."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrate import commands
from migrate.cli import cli
from migrate.journal import cluster_key
from migrate.runner import RunOptions
from twinkit import fast_session

CLUSTER = "/subscriptions/0123abcd-0000-4000-8000-000000000000/resourceGroups/rg-sf/providers/Microsoft.ServiceFabric/clusters/sfcluster"
ALLOWED = {0, 1, 2, 3, 4, 5, 64}

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                      st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                          max_leaves=12)


def _write(state: Path, document: Any, cluster_id: str = CLUSTER) -> None:
    state.mkdir(parents=True, exist_ok=True)
    text = document if isinstance(document, str) else json.dumps(document)
    (state / f"{cluster_key(cluster_id)}.journal.json").write_text(text)


def _assert_clean(result: Any) -> None:
    output = result.output + (getattr(result, "stderr", "") if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in ALLOWED, output
    assert "Traceback" not in output and "internal error" not in output, output


def _mutated(base: dict[str, Any], where: str, key: str, value: Any, index: int) -> dict[str, Any]:
    document = json.loads(json.dumps(base))
    if where == "top" or not document.get("steps"):
        document[key if key else "status"] = value
    elif where == "step":
        step = document["steps"][index % len(document["steps"])]
        step[key if key else "name"] = value
    elif where == "params":
        step = document["steps"][index % len(document["steps"])]
        if isinstance(step.get("step"), dict):
            step["step"]["params"] = value if not isinstance(value, dict) else {**step["step"].get("params", {}), **value}
    else:
        document["events"] = value
    return document


TOP_KEYS = st.sampled_from(["format_version", "cluster_id", "plan_hash", "spec_fingerprint", "created_at", "updated_at",
                            "status", "steps", "last_error", "events", "run_id", "cluster_upgrade_ended_at", ""])
STEP_KEYS = st.sampled_from(["name", "status", "attempts", "started_at", "finished_at", "observed", "operation_url",
                             "last_error", "step", "definition", ""])
WHERE = st.sampled_from(["top", "step", "params", "events"])


def _base_journal() -> dict[str, Any]:
    return json.loads((Path(__file__).parents[1] / "fixtures" / "v1" / "journal-stopped.json").read_text())


@pytest.mark.parametrize("hostile", ["deep-list", "deep-object", "deep-in-observed", "huge", "not-utf8", "wrong-types"])
def test_hostile_journal_gives_one_line_not_internal_error(tmp_path: Path, hostile: str) -> None:
    base = _base_journal()
    base["cluster_id"] = CLUSTER
    documents: dict[str, Any] = {
        "deep-list": "[" * 100_000 + "]" * 100_000,
        "deep-object": '{"a":' * 5000 + "1" + "}" * 5000,
        "deep-in-observed": {**base, "steps": [{**base["steps"][0], "observed": json.loads('{"a":' * 500 + "1" + "}" * 500)}]},
        "huge": " " * (17 * 1024 * 1024) + "{}",
        "wrong-types": {**base, "steps": [{**base["steps"][0], "attempts": "many", "observed": "x", "operation_url": 7}]},
    }
    state = tmp_path / "state"
    if hostile == "not-utf8":
        state.mkdir()
        (state / f"{cluster_key(CLUSTER)}.journal.json").write_bytes(b"\xff\xfe{")
    else:
        _write(state, documents[hostile])
    result = CliRunner().invoke(cli, ["status", "--cluster", CLUSTER, "--state", str(state), "--format", "json"])
    _assert_clean(result)
    assert result.exit_code in (1, 64)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=st.one_of(json_value, st.builds(_mutated, st.just(_base_journal()), WHERE, st.one_of(TOP_KEYS, STEP_KEYS),
                                                 json_value, st.integers(0, 20))))
def test_random_journals_never_crash_status(tmp_path: Path, document: Any) -> None:
    if isinstance(document, dict) and isinstance(document.get("cluster_id"), str):
        document["cluster_id"] = CLUSTER  # else the journal is refused as another cluster's before anything else
    _write(tmp_path / "state", document)
    for fmt in ("json", "text"):
        _assert_clean(CliRunner().invoke(cli, ["status", "--cluster", CLUSTER, "--state", str(tmp_path / "state"), "--format", fmt]))


@pytest.fixture
def stopped_run(twin_factory, tmp_path: Path):
    """A real journal, stopped before the second step: random mutations of it are fed to ``apply``."""
    twin = twin_factory("old-primary")
    session = fast_session(twin)
    steps = commands.plan(twin.plan_file, session=session).plan.steps
    state = tmp_path / "state"
    with pytest.raises(Exception):
        commands.apply(twin.plan_file, state_location=str(state), session=session, options=RunOptions(until=steps[1].name))
    journal_file = next(state.glob("*.journal.json"))
    return twin, state, journal_file, json.loads(journal_file.read_text()), steps[1].name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=WHERE, key=st.one_of(TOP_KEYS, STEP_KEYS), value=json_value, index=st.integers(0, 20))
def test_random_journals_never_crash_apply(stopped_run, where: str, key: str, value: Any, index: int) -> None:
    twin, state, journal_file, base, until = stopped_run
    journal_file.write_text(json.dumps(_mutated(base, where, key, value, index)))
    result = CliRunner().invoke(cli, ["apply", str(twin.plan_file), "--yes", "--state", str(state), "--until", until],
                                env={"SFMIGRATE_LOCK_DIR": os.environ["SFMIGRATE_LOCK_DIR"]})
    _assert_clean(result)
