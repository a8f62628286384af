"""apply's confirmation at a terminal (issue 14): the plan, its summary last right above the prompt, and only
`yes` approves; anything else (or end of input) declines with exit 1 and nothing changed."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

from twinkit import requests_json, world_json

PROMPT = "Enter a value: "


class Terminal:
    """sfmigrate at a pseudo-terminal (stdin and stdout are a TTY, as for a person); stderr captured apart."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "migrate", *args], env={**env, "COLUMNS": "120", "NO_COLOR": "1"},
                                        stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def screen(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert self.process.poll() is None, f"exited {self.process.returncode} before {text!r}:\n{self.screen}"
            assert time.monotonic() < deadline, f"no {text!r} on screen:\n{self.screen}"
            time.sleep(0.05)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        stderr = self.process.communicate(timeout=timeout)[1]
        self.reader.join(timeout=5)
        os.close(self.master)
        return self.process.returncode, stderr


def _apply(twin, state: Path) -> Terminal:
    return Terminal(["apply", str(twin.plan_file), "--state", str(state), "--output", "plain"], {**os.environ, **twin.env})


def test_the_summary_is_last_above_the_prompt_and_y_declines_with_exit_1(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    terminal = _apply(twin, tmp_path / "state")
    terminal.wait_for(PROMPT)
    screen = terminal.screen
    above = [line for line in screen[:screen.index("Do you want to apply these steps?")].splitlines() if line.strip()]
    # the report came first (its last line names the plan), then the summary: declaration before -> after, the work
    assert above[-3].startswith("plan ") and " for sfcluster" in above[-3], above[-4:]
    assert above[-2].startswith("cluster sfcluster: thumbprint ") and "(primary) -> common name sfcluster.contoso.com (issuers " in above[-2]
    assert above[-1] == "6 steps, 2 cluster upgrades"
    assert "Only 'yes' will be accepted to approve." in screen
    terminal.type("y\n")
    code, stderr = terminal.finish()
    assert code == 1, stderr
    assert stderr.strip().splitlines() == ["sfmigrate: apply cancelled: nothing was changed"]
    assert requests_json(twin)["mutating"] == 0
    assert world_json(twin)["cluster"]["declaration"] == "thumbprint"


def test_end_of_input_at_the_prompt_declines(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    terminal = _apply(twin, tmp_path / "state")
    terminal.wait_for(PROMPT)
    terminal.type("\x04")  # Ctrl-D: end of input on a terminal
    code, stderr = terminal.finish()
    assert code == 1 and "apply cancelled: nothing was changed" in stderr, stderr
    assert requests_json(twin)["mutating"] == 0


def test_yes_applies(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    terminal = _apply(twin, tmp_path / "state")
    terminal.wait_for(PROMPT)
    terminal.type("yes\n")
    code, stderr = terminal.finish()
    assert code == 0, stderr + terminal.screen[-2000:]
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy"
