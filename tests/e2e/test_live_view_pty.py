"""The live view at a real terminal (a pseudo-terminal): spinner and elapsed times while it runs, the per-step
table left on screen after it ends, and what Ctrl-C says (issue 14, "Alive during long operations")."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Callable

from click.testing import CliRunner
from twinkit import world_json

from migrate.cli import cli

SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's "dots" spinner
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ERASE = re.compile(r"\x1b\[(?:2K|\d*A|1A)")  # what a live display uses to redraw (erase line, cursor up)


def in_pty(args: list[str], env: dict[str, str], *, when: Callable[[str], bool] | None = None,
           then: Callable[[subprocess.Popen[bytes]], None] | None = None, timeout: float = 240) -> tuple[int, str]:
    """Run sfmigrate with stdin, stdout and stderr on a 120x40 pseudo-terminal; call ``then`` once the output so
    far satisfies ``when``. Returns the exit code and everything the terminal received."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    terminal_env = {k: v for k, v in env.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "CI", "TF_BUILD")}
    terminal_env["TERM"] = "xterm-256color"
    process = subprocess.Popen([sys.executable, "-m", "migrate", *args], env=terminal_env, stdin=slave, stdout=slave,
                               stderr=slave, start_new_session=True)
    os.close(slave)
    received = bytearray()
    fired = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk and process.poll() is not None:
                    break
                received += chunk
            elif process.poll() is not None:
                break
            if not fired and when is not None and then is not None and when(received.decode("utf-8", "replace")):
                fired = True
                then(process)
        else:
            process.kill()
            raise AssertionError(f"still running after {timeout} s: {received.decode('utf-8', 'replace')[-2000:]}")
        return process.wait(timeout=30), received.decode("utf-8", "replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def after_last_redraw(output: str) -> str:
    """What stays on screen at the end: the text after the live display's last redraw, without styling."""
    last = [m.end() for m in ERASE.finditer(output)]
    return ANSI.sub("", output[last[-1]:] if last else output)


def test_live_view_shows_spinner_and_elapsed_then_leaves_the_step_table(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic", time_scale=300)  # each cluster upgrade lasts a few wall seconds
    env = {**os.environ, **twin.env}
    code, output = in_pty(["apply", str(twin.plan_file), "--yes", "--state", str(tmp_path / "state")], env)
    assert code == 0, output[-3000:]
    text = ANSI.sub("", output)
    assert SPINNER & set(text), "no spinner frame was drawn"
    assert re.search(r"\b0:00:0\d\b", text), "no elapsed time (h:mm:ss) was drawn"
    assert "sfmigrate apply: " in text and "steps done" in text
    assert "cluster: UpdatingUserCertificate / Updating" in text  # the cluster's state, polled during an upgrade
    final = after_last_redraw(output)
    steps = [s["name"] for s in json.loads(next((tmp_path / "state").glob("*.journal.json")).read_text())["steps"]]
    assert "duration" in final and "status" in final
    for name in steps:
        assert re.search(rf"{re.escape(name)}\s.*done\s.*\d+s", final), (name, final)
    assert not SPINNER & set(final), "the live part was left on screen instead of the table"
    assert world_json(twin)["cluster"]["declaration"] == "common_name"


def test_ctrl_c_during_a_cluster_upgrade_names_the_step_and_the_operation_going_on(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic", time_scale=20)  # an upgrade lasts ~27 wall seconds: Ctrl-C, status, resume in it
    env = {**os.environ, **twin.env}
    state = tmp_path / "state"

    def upgrading(text: str) -> bool:
        return "UpdatingUserCertificate" in text

    code, output = in_pty(["apply", str(twin.plan_file), "--yes", "--state", str(state)], env,
                          when=upgrading, then=lambda p: p.send_signal(signal.SIGINT))
    assert code == 130, output[-3000:]
    text = ANSI.sub("", output)
    said = "interrupted during step declare-goal-secondary"
    assert text.count(said) == 1, text[-3000:]  # once: not by the live view and again by the CLI
    assert "continues in Azure" in text and "re-attaches" in text
    assert re.search(r"declare-goal-secondary\s.*interrupted", after_last_redraw(output)), after_last_redraw(output)
    journal = json.loads(next(state.glob("*.journal.json")).read_text())
    record = next(s for s in journal["steps"] if s["name"] == "declare-goal-secondary")
    assert journal["status"] == "interrupted" and record["status"] == "running" and record["operation_url"]
    assert world_json(twin)["cluster"]["cluster_state"] != "Ready"  # the upgrade goes on in Azure

    # status, in process (quick: the upgrade is still going for the resume below)
    status_args = ["status", "--cluster", journal["cluster_id"], "--state", str(state)]
    first = json.loads(CliRunner().invoke(cli, [*status_args, "--format", "json"], catch_exceptions=False).output)
    time.sleep(2.1)
    later = json.loads(CliRunner().invoke(cli, [*status_args, "--format", "json"], catch_exceptions=False).output)
    assert later["elapsed_seconds"] >= first["elapsed_seconds"] + 2  # measured to now, not frozen at the last save
    assert later["current_step"]["name"] == "declare-goal-secondary"
    assert later["operation_in_flight"]["step"] == "declare-goal-secondary"
    shown = CliRunner().invoke(cli, status_args, catch_exceptions=False).output
    assert "an Azure operation is still in flight for declare-goal-secondary; `sfmigrate apply` re-attaches to it" in shown

    # the resumed run re-attaches to that operation, and says it is alive while it waits for it
    resume = subprocess.Popen([sys.executable, "-m", "migrate", "apply", str(twin.plan_file), "--yes", "--state", str(state),
                               "--output", "plain", "--heartbeat", "1", "--until", "install-kv-extension:nt0"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert resume.stdout is not None
    beat = re.compile(r"^\d\d:\d\d:\d\d still running: declare-goal-secondary: .* \[\d+s elapsed\]$")
    lines: list[str] = []
    advanced = False
    for line in resume.stdout:
        lines.append(line.rstrip("\n"))
        seen = any(beat.match(x) for x in lines) and any("cluster UpdatingUserCertificate / Updating" in x for x in lines)
        if seen and not advanced:  # seen enough: let the twin's clock run to the upgrade's end
            twin.control().advance_clock(1200)
            advanced = True
    assert resume.wait(timeout=120) == 4, resume.stderr.read() if resume.stderr else ""  # stopped at --until
    assert any(" re-attach " in line and "declare-goal-secondary" in line for line in lines), lines
    assert advanced, lines  # a heartbeat and the polled cluster state while it re-attached
    assert world_json(twin)["cluster"]["certificate"].get("thumbprintSecondary")  # the upgrade finished in Azure
