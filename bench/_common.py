"""Shared bench helpers: a twin in this process and the environment that points sfmigrate at it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from migrate.emulator.twin import RunningTwin, start_twin  # noqa: E402


def twin(scenario: str, time_scale: float) -> RunningTwin:
    running = start_twin(scenario, time_scale=time_scale, state_dir=tempfile.mkdtemp(prefix="sfmigrate-bench-"))
    os.environ.update(running.env)
    return running


def mutating(running: RunningTwin) -> int:
    return int(running.server.app.log.view()["mutating"])
