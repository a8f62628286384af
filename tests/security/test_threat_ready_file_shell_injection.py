"""Threat: whoever can write the twin's state folder plants a ready file whose env names or values carry shell
code, for an operator who runs eval "$(sfmigrate emulator env --state-dir DIR)". Values are quoted for the
shell; names that are not environment-variable names are refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from migrate.errors import UsageError
from migrate.twin_plan import READY_FILE, env_lines


def test_a_hostile_ready_file_is_quoted_or_refused(tmp_path: Path) -> None:
    (tmp_path / READY_FILE).write_text(json.dumps({"env": {"A": "x'; touch pwned; echo '", "B": "$(id)"}}))
    lines = env_lines(tmp_path)
    out = subprocess.run(["bash", "-c", "\n".join(lines) + '\nprintf "%s|%s" "$A" "$B"'], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "x'; touch pwned; echo '|$(id)" and not (tmp_path / "pwned").exists()
    assert env_lines(tmp_path, "powershell")[0] == "$env:A = 'x''; touch pwned; echo '''"
    (tmp_path / READY_FILE).write_text(json.dumps({"env": {"A; rm -rf /": "x"}}))
    with pytest.raises(UsageError, match="is not NAME=string"):
        env_lines(tmp_path)
