"""Helpers for the journal tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import select
import subprocess

from migrate.journal import LockHolder


def read_line(child: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The child's next stdout line, or fail with its stderr."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    line = child.stdout.readline() if ready else ""
    if not line:
        child.kill()
        raise AssertionError(f"child printed nothing; stderr: {child.stderr.read() if child.stderr else ''}")
    return line.strip()


def held_by(child: subprocess.Popen[str]) -> LockHolder:
    """The LockHolder a ``hold`` child printed once it had the lock."""
    return LockHolder.from_dict(json.loads(read_line(child)))
