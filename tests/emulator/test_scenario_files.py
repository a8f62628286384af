"""Scenario files: the documented format loads and builds, and no malformed file produces a traceback.

The property: for any file, ``load_scenario(path=...)`` either returns a spec that ``build_world`` turns into
a world, or raises ``ScenarioError`` (a ``TwinSetupError``; the CLI exits 64) whose message is one line naming the
file and, where there is one, the field path.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aztwin.clock import ManualClock
from aztwin.scenario import ScenarioError, build_world, builtin_names, builtin_path, load_scenario, parse_scenario
from aztwin import TwinSetupError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scenarios.md"
BASES = {name: yaml.safe_load(builtin_path(name).read_text(encoding="utf-8")) for name in ("already-cn", "multi-nodetype", "reverse-proxy-thumbprint")}


def _load_and_build(path: Path) -> None:
    try:
        spec, _ = load_scenario(path=path)
        build_world(spec, "https://127.0.0.1:1", clock=ManualClock())
    except ScenarioError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(path)), message


def test_the_documented_example_loads_and_builds() -> None:
    example = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert example is not None
    spec = parse_scenario(example.group(1), "docs/scenarios.md")
    world = build_world(spec, "https://127.0.0.1:1", clock=ManualClock())
    assert world.snapshot()["cluster"]["health"] == "Healthy"


def test_the_doc_describes_every_field_of_the_format() -> None:
    from aztwin import scenario_model

    text = DOC.read_text(encoding="utf-8")
    for model in (m for m in vars(scenario_model).values() if isinstance(m, type) and m.__name__.endswith("Spec")):
        for field in model.model_fields:
            assert re.search(rf"\b{field}:", text), f"{model.__name__}.{field} is not in docs/scenarios.md"
    for name in builtin_names():
        assert f"`{name}`" in text


@pytest.mark.parametrize(
    "edit, where",
    [
        (lambda d: d["vaults"][0]["certificates"][0]["versions"][0].update(issuer="nobody"), "vaults[0].certificates[0].versions[0].issuer"),
        (lambda d: d["clusters"][0]["nodeTypes"][0].update(secrets=["kv-sf-already-cn/cluster-cert@7"]), "clusters[0].nodeTypes[0].secrets[0]"),
        (lambda d: d["clusters"][0]["nodeTypes"][0]["keyVaultExtension"].update(identity="ghost"), "clusters[0].nodeTypes[0].keyVaultExtension.identity"),
        (lambda d: d["clusters"][0]["nodeTypes"][0].update(instances=0), "clusters[0].nodeTypes[0].instances"),
        (lambda d: d["vaults"][0]["accessPolicies"][1].update(principal="identity:ghost"), "vaults[0].accessPolicies[1].principal"),
        (lambda d: d["goal"].update(pinnedIssuers=["nobody"]), "goal.pinnedIssuers[0]"),
        (lambda d: d["pki"][0].update(validFrom="-30000d"), "pki[0].validFrom"),
        (lambda d: d["pki"].append({"name": "contoso-root", "subject": "again"}), "pki[2].name"),
        (lambda d: d.update(start="yesterday"), "start"),
        (lambda d: d["clusters"][0]["certificate"].update(thumbprint="kv-sf-already-cn/cluster-cert"), "clusters[0].certificate"),
    ],
)
def test_errors_are_one_line_naming_the_file_and_the_field(tmp_path: Path, edit: Any, where: str) -> None:
    document = copy.deepcopy(BASES["already-cn"])
    edit(document)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path=path)
    assert isinstance(caught.value, TwinSetupError)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: {where}"), message


# -- the property ---------------------------------------------------------------------------------------
_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=20)
    | st.sampled_from(["self", "-99999d", "1e999d", "0d", "30d", "kv-sf-already-cn/cluster-cert@-1", "x/y", "CN=sfcluster",
                       "contoso-root", "identity:sf-kv-reader", "A" * 40, "a" * 80, "2026-13-40T00:00:00Z", "Manual", "linux"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, prefix + (index,))
    return found


@st.composite
def malformed_documents(draw: st.DrawFn) -> Any:
    """A built-in scenario with a few nodes replaced, deleted or duplicated, or plain junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(_JUNK)
    document = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(document) if p]
        path = draw(st.sampled_from(paths))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = draw(_JUNK)
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=malformed_documents())
def test_no_malformed_scenario_document_produces_a_traceback(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        _load_and_build(path)


@settings(max_examples=60, deadline=None)
@given(raw=st.one_of(st.text(max_size=200), st.binary(max_size=100)))
def test_no_malformed_scenario_text_produces_a_traceback(raw: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.yaml"
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
        _load_and_build(path)


# -- the command line -------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["apiVersion: sfmigrate/twin-v1\nname: bad\nclusters: [{name: x}]\n", "a: [\n"])
def test_serve_with_a_bad_scenario_file_exits_64_with_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "migrate", "emulator", "serve", "--scenario-file", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    assert result.returncode == 64
