"""Start Azurite's blob service on loopback for tests (peers.md §5.2: azurite@3.35.0, the last for Node 20).

Importable by any test module (``from azurite import start_azurite``); ``tests/journal/conftest.py`` wraps it
in a session fixture. Always ``--disableTelemetry``: without it Azurite calls an Application Insights host,
and tests touch loopback only.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AZURITE_BLOB = REPO / "tools" / "node_modules" / ".bin" / "azurite-blob"
# The emulator's well-known development account (public, documented by Microsoft; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"listens on (http://127\.0\.0\.1:(\d+))")


def missing_reason() -> str | None:
    """Why Azurite cannot start here, or None. ``make test`` runs ``npm ci`` in tools/, so CI has it."""
    if shutil.which("node") is None:
        return "node is not installed (Azurite needs Node.js; `make test` expects node and npm)"
    if not AZURITE_BLOB.exists():
        return f"{AZURITE_BLOB.relative_to(REPO)} is missing: run `make npm` (npm ci in tools/)"
    return None


@dataclass
class RunningAzurite:
    process: subprocess.Popen[str]
    port: int
    location: Path
    output: list[str] = field(default_factory=list)

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.blob_endpoint};")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own process group: node and anything it spawned
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> RunningAzurite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_azurite(location: Path, *, timeout: float = 30.0) -> RunningAzurite:
    """Start ``azurite-blob`` on 127.0.0.1 with a free port and wait for its "listens on" line."""
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    location.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", str(location),
         "--silent", "--skipApiVersionCheck", "--disableTelemetry"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()
    port: list[int] = []

    def pump() -> None:  # read until ready, then keep draining so a full pipe never blocks Azurite
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            match = _LISTENING.search(line)
            if match and not port:
                port.append(int(match.group(2)))
                ready.set()
        ready.set()

    threading.Thread(target=pump, name="azurite-output", daemon=True).start()
    running = RunningAzurite(process, 0, location, output)
    if not ready.wait(timeout) or not port:
        running.stop()
        raise RuntimeError("Azurite did not start: " + " | ".join(output[-10:]))
    running.port = port[0]
    return running
