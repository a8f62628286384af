"""``apply --heartbeat SECONDS``: plain, JSON and pipeline output say they are alive during every wait, and
Azure DevOps gets ``##vso[task.setprogress]`` per step (issue 14, "Alive during long operations")."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from twinkit import requests_json, world_json

from migrate.progress import Heartbeat

STILL = re.compile(r"^(\d\d:\d\d:\d\d) still running: (\S+)(?:: (.*))? \[(\d+m)?\d+s elapsed\]$")


def apply(twin: Any, state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "TF_BUILD"}
    environment.update(twin.env, **(env or {}))
    return subprocess.run([sys.executable, "-m", "migrate", "apply", str(twin.plan_file), "--yes", "--state", str(state), *args],
                          env=environment, capture_output=True, text=True, timeout=300)


def test_plain_output_says_still_running_every_second_through_a_cluster_upgrade(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic", time_scale=150)  # a cluster upgrade walks 15 update-domain steps: ~6 wall seconds
    done = apply(twin, tmp_path / "state", "--output", "plain", "--heartbeat", "1", "--until", "install-kv-extension:nt0")
    assert done.returncode == 4, done.stderr  # stopped before the next step, after the upgrade
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if " start " in line and "declare-goal-secondary" in line)
    end = next(i for i, line in enumerate(lines) if " done " in line and "declare-goal-secondary" in line)
    beats = [STILL.match(line) for line in lines[start:end]]
    during = [m for m in beats if m is not None]
    assert len(during) >= 2, "\n".join(lines[start:end + 1])
    assert all(m.group(2) == "declare-goal-secondary" for m in during)
    assert any(m.group(3) == "cluster UpdatingUserCertificate / Updating" for m in during)  # the polled state
    stamps = [dt.datetime.strptime(line[:8], "%H:%M:%S") for line in lines[start:end + 1]]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) <= 3, gaps  # never silent much longer than the heartbeat (second stamps, a loaded machine)
    assert world_json(twin)["cluster"]["certificate"].get("thumbprintSecondary")  # the upgrade did happen


def test_json_output_gets_heartbeat_events_and_stays_json(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic", time_scale=150)
    done = apply(twin, tmp_path / "state", "--output", "json", "--heartbeat", "1", "--until", "install-kv-extension:nt0")
    assert done.returncode == 4, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every line parses
    beats = [e for e in events if e["type"] == "heartbeat"]
    assert beats and all(e["step"] == "declare-goal-secondary" for e in beats), events
    assert all(e["detail"]["elapsed_seconds"] >= 1 and "elapsed" in e["detail"] for e in beats)
    assert any(e["detail"]["state"] == "cluster UpdatingUserCertificate / Updating" for e in beats)


def test_azure_devops_gets_setprogress_per_step_and_plain_heartbeats(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic", time_scale=300)
    done = apply(twin, tmp_path / "state", "--heartbeat", "1", env={"TF_BUILD": "True", "AGENT_TEMPDIRECTORY": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    journal = json.loads(next((tmp_path / "state").glob("*.journal.json")).read_text())
    names = [s["name"] for s in journal["steps"]]
    progress = [re.match(r"^##vso\[task\.setprogress value=(\d+);\](.*)$", line) for line in done.stdout.splitlines()]
    marks = [(int(m.group(1)), m.group(2)) for m in progress if m]
    total = len(names)
    expected = [mark for i, name in enumerate(names) for mark in ((i * 100 // total, name), ((i + 1) * 100 // total, name))]
    assert marks == expected, marks
    assert marks[-1][0] == 100
    assert any(line.startswith(tuple("0123456789")) and " still running: " in line for line in done.stdout.splitlines())
    assert not any("##vso[" in line and "still running" in line for line in done.stdout.splitlines())
    assert world_json(twin)["cluster"]["declaration"] == "common_name"


def test_sigterm_in_a_pipeline_names_the_step_in_flight_once_and_exits_130(twin_factory, tmp_path: Path) -> None:
    """A cancelled pipeline job (SIGTERM) during a cluster upgrade: like Ctrl-C, one message naming the step."""
    twin = twin_factory("basic", time_scale=60)  # the upgrade lasts ~9 wall seconds
    environment = {**os.environ, **twin.env, "TF_BUILD": "True", "AGENT_TEMPDIRECTORY": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "migrate", "apply", str(twin.plan_file), "--yes", "--state",
                                str(tmp_path / "state"), "--heartbeat", "1"], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if "cluster UpdatingUserCertificate / Updating" in line:
            process.send_signal(signal.SIGTERM)
            break
    out, err = process.communicate(timeout=120)
    out = "".join(seen) + out
    assert process.returncode == 130, err
    said = "interrupted during step declare-goal-secondary"
    assert err.count(said) == 1 and "continues in Azure" in err and "re-attaches" in err, err
    assert len(err.strip().splitlines()) == 1, err
    complete = [line for line in out.splitlines() if line.startswith("##vso[task.complete")]
    assert complete and said in complete[-1] and "result=Failed" in complete[-1], out[-2000:]


def test_heartbeat_below_one_second_is_a_usage_error(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("basic")
    for value in ("0", "-5", "0.5", "nan"):
        refused = apply(twin, tmp_path / "state", "--heartbeat", value)
        assert refused.returncode == 64, (value, refused.stderr)
        assert "--heartbeat" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "Traceback" not in refused.stderr
    assert requests_json(twin)["total"] == 0  # refused before reading anything


class Recorder:
    """A sink that notices two writers at once (the timer thread and the runner must never overlap)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.beats: list[dict[str, Any]] = []
        self._busy = threading.Lock()
        self.overlaps = 0

    def _enter(self) -> None:
        if not self._busy.acquire(blocking=False):
            self.overlaps += 1
            return
        time.sleep(0.002)
        self._busy.release()

    def __call__(self, event: dict[str, Any]) -> None:
        self._enter()
        self.events.append(event)

    def heartbeat(self, event: dict[str, Any]) -> None:
        self._enter()
        self.beats.append(event)


def test_heartbeat_timer_beats_only_during_waits_polls_only_during_cluster_upgrades_and_stops() -> None:
    sink, probes = Recorder(), []

    def probe() -> dict[str, Any]:
        probes.append(time.monotonic())
        return {"cluster_state": "UpdatingUserCertificate", "provisioning_state": "Updating"}

    watch = Heartbeat(sink, 1, probe=probe, probe_interval=1)
    try:
        watch({"type": "run-start", "step": None, "time": "", "detail": {"steps": 1}})
        time.sleep(1.6)
        assert not sink.beats and not probes  # nothing in progress: nothing to say, nothing to poll
        watch({"type": "step-start", "step": "declare", "time": "", "detail": {"title": "t"}})
        watch({"type": "operation", "step": "declare", "time": "",
               "detail": {"url": "https://arm/subscriptions/s/providers/Microsoft.ServiceFabric/locations/l/operationResults/1"}})
        for _ in range(200):  # the runner keeps emitting while the timer runs
            watch({"type": "change", "step": "declare", "time": "", "detail": {}})
        time.sleep(2.7)
        assert probes and len([e for e in sink.events if e["type"] == "cluster"]) == 1  # a change is passed on once
        assert sink.beats and sink.beats[-1]["detail"]["state"] == "cluster UpdatingUserCertificate / Updating"
        watch({"type": "step-done", "step": "declare", "time": "", "detail": {"seconds": 3}})
        polled, beats = len(probes), len(sink.beats)
        time.sleep(1.6)
        assert len(probes) == polled and len(sink.beats) == beats  # the step is done: quiet again
    finally:
        watch.close()
    assert not watch._thread.is_alive() and sink.overlaps == 0
