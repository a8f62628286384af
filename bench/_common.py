"""Shared bench helpers: a twin in this process and the environment that points sfmigrate at it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aztwin import RunningTwin, start_twin  # noqa: E402
from migrate.twin_plan import write_plan_for  # noqa: E402


def twin(scenario: str, time_scale: float) -> RunningTwin:
    running = start_twin(scenario, time_scale=time_scale, state_dir=tempfile.mkdtemp(prefix="sfmigrate-bench-"))
    os.environ.update(running.env)
    return running


def plan_file(running: RunningTwin) -> Path:
    """sfmigrate's plan file for the twin's scenario goal (as `sfmigrate emulator serve` writes it)."""
    path = write_plan_for(running)
    assert path is not None, "the scenario declares no goal"
    return path


def mutating(running: RunningTwin) -> int:
    return int(running.server.app.log.view()["mutating"])
