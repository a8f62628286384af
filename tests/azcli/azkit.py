"""Run the real Azure CLI against a twin: its own config folder, the twin registered as a cloud, the twin's CA
trusted, signed in with the twin's managed identity.

The CLI lives in its own environment (``make az-env`` -> ``.venv-az``): it pins its own SDK versions, which must not
meet sfmigrate's in ``.venv``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aztwin import RunningTwin
from aztwin.providers.graph.models import graph_resource

ROOT = Path(__file__).resolve().parents[2]
AZ_BIN = ROOT / ".venv-az" / "bin"
CLOUD = "SfTwin"


def az_missing_reason() -> str:
    """Why the CLI cannot run here ('' when it can)."""
    if not (AZ_BIN / "az").exists():
        return f"{AZ_BIN / 'az'} is missing: run `make az-env` (installs the pinned azure-cli into .venv-az)"
    return ""


@dataclass
class AzSession:
    """One signed-in CLI aimed at one twin; ``variables`` are the runbooks' shell variables, filled from the world."""

    twin: RunningTwin
    config_dir: Path
    variables: dict[str, str] = field(default_factory=dict)
    proxy_url: str = ""  # tests/azcli/vault_proxy.py: `{vault}.vault.azure.net` -> the twin's vault

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
        return {
            **keep,
            **self.twin.env,  # IDENTITY_ENDPOINT/IDENTITY_HEADER (managed identity), REQUESTS_CA_BUNDLE (the twin's CA)
            "PATH": f"{AZ_BIN}:/usr/bin:/bin",
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_LOGIN_EXPERIENCE_V2": "off",
            **({"HTTPS_PROXY": self.proxy_url, "NO_PROXY": "127.0.0.1,localhost"} if self.proxy_url else {}),
            **self.variables,
        }

    def run(self, command: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in bash as a runbook reader would (variables exported, ``az`` on PATH)."""
        return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=self.env(), text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def az(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run([str(AZ_BIN / "az"), *args], cwd=cwd or self.config_dir, env=self.env(), text=True,
                              capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise AssertionError(f"az {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout


def vault_address(twin: RunningTwin, vault_name: str) -> tuple[str, int]:
    """Where the twin serves vault ``vault_name``'s data plane (its own port)."""
    parsed = urlsplit(twin.server.vault_uri(vault_name))
    return str(parsed.hostname), int(parsed.port or 443)


def sign_in(twin: RunningTwin, config_dir: Path, proxy_url: str = "") -> AzSession:
    """Register the twin as a cloud from its metadata endpoint (ARM, Microsoft Graph …), make it current,
    ``az login --identity``."""
    config_dir.mkdir(parents=True, exist_ok=True)
    session = AzSession(twin, config_dir, proxy_url=proxy_url)
    session.az("cloud", "register", "--name", CLOUD, "--endpoint-resource-manager", twin.base_url + "/")
    session.az("cloud", "set", "--name", CLOUD)
    # the metadata advertises the twin's Microsoft Graph (`az ad`, `--assignee`, `--spn` resolve there)
    graph = session.az("cloud", "show", "--query", "endpoints.microsoftGraphResourceId", "-o", "tsv").strip()
    assert graph == graph_resource(twin.base_url), f"az registered Microsoft Graph at {graph!r}"
    session.az("login", "--identity")
    return session
