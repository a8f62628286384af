"""The plan report never contradicts itself (issue 9 §2): on every built-in scenario, when two steps change
the same resource at the same property path (or one path inside the other), the later step starts from
what the earlier one left. Placeholders ("(known after apply)") are the only exception."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from aztwin import builtin_names
from migrate import commands
from migrate.report.json import render_plan
from twinkit import fast_session

PLACEHOLDER = "(known after apply)"
_MISSING = object()


def _segments(path: str) -> list[str]:
    """``a.b[nt0].c[1]`` -> ``['a', 'b', '[nt0]', 'c', '[1]']``."""
    return [s for s in re.findall(r"\[[^\]]*\]|[^.\[\]]+", path)]


def _at(value: Any, segments: list[str]) -> Any:
    """The value inside ``value`` at ``segments`` (named arrays by name, as the diff keys them)."""
    for segment in segments:
        if value is None:
            return None
        if segment.startswith("["):
            key = segment[1:-1]
            if not isinstance(value, list):
                return _MISSING
            named = [v for v in value if isinstance(v, dict) and v.get("name") == key]
            if named:
                value = named[0]
            elif key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return None
        elif isinstance(value, dict):
            value = value.get(segment)
        else:
            return _MISSING
    return value


def _has_placeholder(value: Any) -> bool:
    return PLACEHOLDER in json.dumps(value, default=str)


def contradictions(report: dict[str, Any]) -> list[str]:
    """Every place where a step's ``before`` is not what an earlier step left at that resource and path."""
    left: dict[str, dict[str, tuple[str, Any]]] = {}  # resource -> path -> (step, after)
    found = []
    for step in report["steps"]:
        for resource in step["resources"]:
            seen = left.setdefault(resource.lower(), {})
            for change in step["changes"]:
                mine = _segments(change["path"])
                for path, (earlier, after) in seen.items():
                    theirs = _segments(path)
                    if mine[: len(theirs)] == theirs:  # same path, or mine inside theirs
                        expected, actual = _at(after, mine[len(theirs):]), change["before"]
                    elif theirs[: len(mine)] == mine:  # theirs inside mine
                        expected, actual = after, _at(change["before"], theirs[len(mine):])
                    else:
                        continue
                    if expected is _MISSING or actual is _MISSING or _has_placeholder(expected) or _has_placeholder(actual):
                        continue
                    if expected != actual:
                        found.append(f"{step['name']} {change['path']}: before {actual!r}, but {earlier} left {path} = {after!r}")
            for change in step["changes"]:
                mine = _segments(change["path"])
                for path in [p for p in seen if _segments(p)[: len(mine)] == mine]:
                    del seen[path]  # superseded by this wider (or equal) change
                seen[change["path"]] = (step["name"], change["after"])
    return found


def test_the_checker_sees_a_contradiction() -> None:
    report = {"steps": [
        {"name": "a", "resources": ["/c"], "changes": [{"path": "properties.certificate", "before": {"thumbprint": "O"},
                                                        "after": {"thumbprint": "O", "thumbprintSecondary": "G"}}]},
        {"name": "b", "resources": ["/c"], "changes": [{"path": "properties.certificate.thumbprintSecondary", "before": None, "after": "X"}]},
    ]}
    assert contradictions(report) == ["b properties.certificate.thumbprintSecondary: before None, but a left properties.certificate = "
                                      "{'thumbprint': 'O', 'thumbprintSecondary': 'G'}"]


@pytest.mark.parametrize("scenario", builtin_names())
def test_each_step_starts_where_the_previous_one_left_the_resource(twin_factory, tmp_path, scenario: str) -> None:
    twin = twin_factory(scenario)
    if twin.plan_file is None:
        pytest.skip(f"scenario {scenario} publishes no goal")
    document = yaml.safe_load(twin.plan_file.read_text())
    document["cleanup"] = {"removeOldSecrets": True}  # the cleanup plans against the swapped scale sets
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(document))
    report = json.loads(render_plan(commands.plan(plan_file, session=fast_session(twin)).plan))
    assert contradictions(report) == []
