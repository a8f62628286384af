"""Threat: someone who can write the state folder (or the blob container) points a journal's ``operation_url`` at
their own server; a resumed run would poll it with the management client, which attaches the bearer token.
Defence (issue 13, defect 1; docs/security.md "Journal and state"): re-attach only to https URLs on the cloud's
ARM endpoint; anything else is refused in one line (exit 64) before any connection is made."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from migrate import commands
from migrate.errors import UsageError
from migrate.journal.model import StepRecord
from migrate.runner import RunOptions
from migrate.steps.base import StepContext
from twinkit import fast_session, requests_json


class Listener:
    """A TCP listener on loopback that records every connection (a TLS client connects before its handshake)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.contacts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.contacts += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def listener():
    running = Listener()
    yield running
    running.close()


def _journal_file(state: Path) -> Path:
    return next(state.glob("*.journal.json"))


def _foreign_urls(arm: str, port: int) -> list[str]:
    arm_port = urlsplit(arm).port or 443
    path = "/subscriptions/0/providers/Microsoft.Compute/locations/westeurope/operations/x?api-version=2024-07-01"
    return [
        f"https://127.0.0.1:{port}{path}",  # the attacker's server
        f"https://localhost:{arm_port}{path}",  # the same port under another name is another host
        f"http://127.0.0.1:{arm_port}{path}",  # plain http: the token would travel in clear text
        f"https://user:pw@127.0.0.1:{arm_port}{path}",
        "file:///etc/passwd",
    ]


def test_attacker_operation_url_in_journal_is_refused_without_contacting_the_host(twin_factory, tmp_path: Path, listener: Listener) -> None:
    twin = twin_factory("old-primary")
    state = tmp_path / "state"
    session = fast_session(twin)
    steps = commands.plan(twin.plan_file, session=session).plan.steps
    with pytest.raises(Exception):  # StoppedAtRequest: the journal is left resumable
        commands.apply(twin.plan_file, state_location=str(state), session=session, options=RunOptions(until=steps[1].name))
    journal = json.loads(_journal_file(state).read_text())
    assert journal["status"] == "stopped"
    before = requests_json(twin)
    for url in _foreign_urls(session.cloud.arm, listener.port):
        tampered = json.loads(json.dumps(journal))
        tampered["steps"][0]["operation_url"] = url
        _journal_file(state).write_text(json.dumps(tampered))
        with pytest.raises(UsageError) as refused:
            commands.apply(twin.plan_file, state_location=str(state), session=fast_session(twin))
        message = str(refused.value)
        assert "\n" not in message and "is refused" in message and "ARM endpoint" in message, message
    assert listener.contacts == 0
    after = requests_json(twin)
    assert after["mutating"] == before["mutating"]
    paths = [r.get("path", "") for r in after.get("requests", [])]
    assert not any("/operations/x" in p for p in paths), "a refused URL reached the twin"


def test_attacker_operation_url_exits_64_in_one_line_from_the_cli(twin_factory, tmp_path: Path, listener: Listener) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    state = tmp_path / "state"
    steps = commands.plan(twin.plan_file, session=fast_session(twin)).plan.steps
    run = [sys.executable, "-m", "migrate", "apply", str(twin.plan_file), "--yes", "--state", str(state)]
    stopped = subprocess.run([*run, "--until", steps[1].name], env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 4, stopped.stderr
    journal = json.loads(_journal_file(state).read_text())
    journal["steps"][0]["operation_url"] = f"https://127.0.0.1:{listener.port}/steal?api-version=1"
    _journal_file(state).write_text(json.dumps(journal))
    resumed = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 64, resumed.stderr
    assert "is refused" in resumed.stderr and "Traceback" not in resumed.stderr and "internal error" not in resumed.stderr
    assert listener.contacts == 0


def test_attacker_operation_url_reached_by_a_step_is_refused_too(twin_factory, listener: Listener) -> None:
    """The step-level re-attach (a journal edited while the run held it) goes through the same check."""
    twin = twin_factory("basic")
    session = fast_session(twin)
    record = StepRecord("declare-goal", operation_url=f"https://127.0.0.1:{listener.port}/steal")
    context = StepContext(session.gateway, session.spec, record.name, record, save=lambda: None, emit=lambda *a, **k: None)
    with pytest.raises(UsageError, match="is refused"):
        context.reattach(session.spec.cluster.id)
    with pytest.raises(UsageError, match="is refused"):
        session.gateway.wait_operation(f"https://127.0.0.1:{listener.port}/steal", session.spec.cluster.id, 5)
    assert listener.contacts == 0
    assert requests_json(twin)["mutating"] == 0


def test_operation_urls_azure_really_returns_still_reattach(twin_factory) -> None:
    """The defence refuses no legitimate URL: the status URLs the twin's Compute and Service Fabric providers return
    (same host and port as the ARM endpoint, as ARM's are) are followed to the end."""
    from migrate.steps.base import reattach_operation

    twin = twin_factory("basic")
    session = fast_session(twin)
    urls: list[str] = []
    vmss_id = session.gateway.list_scale_sets(session.spec.cluster.id.split("/")[2])[0]["id"]
    session.gateway.patch_scale_set(vmss_id, {"tags": {"reattach": "probe"}}, urls.append)
    cluster = session.gateway.get_cluster(session.spec.cluster.id)
    session.gateway.patch_cluster(session.spec.cluster.id, {"tags": {**(cluster.get("tags") or {}), "probe": "1"}}, urls.append)
    assert len(urls) == 2
    announced: list[str] = []
    for url in urls:
        reattach_operation(session.gateway, url, vmss_id, 60, lambda: announced.append(url))
    assert announced == urls
