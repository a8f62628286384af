"""``sfmigrate emulator env`` (issue 14): a running twin's environment as shell lines, quoted so that a value in
the state folder cannot run a command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from migrate.twin_plan import READY_FILE

REPO = Path(__file__).resolve().parents[2]


def test_env_prints_exports_that_a_shell_evaluates_to_the_ready_lines_env(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-m", "migrate", "emulator", "serve", "--state-dir", str(tmp_path)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        ready = json.loads(child.stdout.readline())
        script = f'eval "$({sys.executable} -m migrate emulator env --state-dir {tmp_path})" && env'
        shown = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        seen = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
        assert ready["env"] and all(seen.get(k) == v for k, v in ready["env"].items())
    finally:
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=30)
    assert not (tmp_path / READY_FILE).exists()  # a stopped twin leaves no stale environment behind
    gone = subprocess.run([sys.executable, "-m", "migrate", "emulator", "env", "--state-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert gone.returncode == 64 and "no running twin there" in gone.stderr and "Traceback" not in gone.stderr
