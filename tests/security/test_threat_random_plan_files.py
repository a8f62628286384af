"""Threat: a plan file an attacker (or a typo) shapes at will makes ``plan`` crash with a traceback or an
"internal error" (issue 13, acceptance: random plan files never do). Hypothesis writes plan files -- raw
bytes, random YAML, and the twin's own plan with one field replaced by a random value -- and ``sfmigrate
plan`` must answer each with its exit code and, on failure, one line on stderr."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrate.cli import main

PLAN_EXITS = {0, 1, 2, 3, 64}
SECTIONS = {"goal": ["vaultId", "certificateName", "pinnedIssuers", "commonName", "issuerCertificates", "allowUnpinnedIssuers"],
            "cluster": ["id"], "identity": ["id"], "rollout": ["pollIntervalSeconds", "settleMinutes"],
            "cloud": ["name", "caBundle"], "nodeTypes": []}
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


def _plan_exit(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["sfmigrate", "plan", str(path), "--ci", "none", "--format", "json"])
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    return int(ended.value.code or 0), err


def _check(code: int, err: str) -> None:
    assert code in PLAN_EXITS, err
    assert "Traceback" not in err and "internal error" not in err, err
    if code in (1, 64):
        assert len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def base_plan(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A plan for a twin that is not running: every request fails fast (connection refused), exit 1."""
    return {"apiVersion": "sfmigrate/v1", "kind": "Migration",
            "cloud": {"name": "Custom", "armEndpoint": "https://127.0.0.1:9"},
            "cluster": {"id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ServiceFabric/clusters/sf"},
            "goal": {"vaultId": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
                     "certificateName": "cluster-cert"},
            "nodeTypes": "discover"}


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_as_plan_file(data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(data)
    _check(*_plan_exit(plan, capsys, monkeypatch))


@SETTINGS
@given(document=values)
def test_random_yaml_document_as_plan_file(document: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(document))
    _check(*_plan_exit(plan, capsys, monkeypatch))


@SETTINGS
@given(section=st.sampled_from(sorted(SECTIONS)), which=st.integers(min_value=0, max_value=10), value=values,
       nest=st.integers(min_value=0, max_value=300))
def test_plan_file_with_one_field_replaced_by_a_random_value(base_plan: Any, section: str, which: int, value: Any, nest: int,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    document = copy.deepcopy(base_plan)
    fields = SECTIONS[section]
    for _ in range(nest if nest > 250 else 0):  # deep nesting, now and then
        value = [value]
    if not fields:
        document[section] = value
    else:
        target = document.setdefault(section, {})
        if isinstance(target, dict):
            target[fields[which % len(fields)]] = value
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(document))
    _check(*_plan_exit(plan, capsys, monkeypatch))
