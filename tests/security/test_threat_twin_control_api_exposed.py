"""Threat: the twin's control API (no authentication) reachable from the network, or a scenario read
from any path through ``--scenario`` (issue 13, "Also")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aztwin import ScenarioError, builtin_path


def _serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", "emulator", "serve", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "twin.example.com"])
def test_serve_on_a_non_loopback_host_without_allow_remote_is_refused(host: str) -> None:
    done = _serve("--host", host)
    assert done.returncode == 64, done.stderr
    assert "--allow-remote" in done.stderr and done.stdout == ""  # no ready line: nothing listened
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_scenario_option_given_a_path_is_refused_and_points_to_scenario_file(tmp_path: Path) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text(builtin_path("basic").read_text())
    for value in (str(own), str(own.with_suffix("")), "../scenarios/basic", "basic/../basic"):
        done = _serve("--scenario", value)
        assert done.returncode == 64, done.stderr
        assert "--scenario-file" in done.stderr and done.stdout == ""
    with pytest.raises(ScenarioError):
        builtin_path(str(own.with_suffix("")))  # the library refuses a path too


def test_demo_scenario_given_a_path_is_refused(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "migrate", "demo", "--out", str(tmp_path / "o"), "--scenario",
                           str(tmp_path / "x")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 64 and "--scenario-file" in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()
