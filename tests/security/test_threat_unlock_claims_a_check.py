"""Threat: ``unlock --force`` claiming to check that the holder is gone while it checks nothing, so an
operator breaks a live run's lock trusting the tool (issue 13, "Also"). It says what it did not check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from migrate.journal.base import open_store
from migrate.journal.model import LockHolder

CLUSTER = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ServiceFabric/clusters/sf"


def _sfmigrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True, timeout=60)


def test_unlock_force_of_a_live_holder_says_liveness_was_not_checked(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    live = open_store(state, CLUSTER)
    live.acquire(LockHolder.current())  # this very process: alive
    done = _sfmigrate("unlock", "--cluster", CLUSTER, "--state", state, "--force")
    assert done.returncode == 0, done.stderr
    assert "broke the lock held by" in done.stdout and "not checked" in done.stdout
    assert open_store(state, CLUSTER).holder() is None  # it was broken indeed


def test_unlock_help_claims_no_check_it_does_not_make() -> None:
    text = " ".join(_sfmigrate("unlock", "--help").stdout.split())
    assert "after checking" not in text and "really gone" not in text
    assert "does not check whether" in text
