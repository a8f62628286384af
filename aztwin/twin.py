"""Start the Azure twin in this process and describe how to reach it (the ready line)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .control_client import ControlClient
from .faults import FaultPlan, FaultSpecError
from .providers.identity.models import TokenService
from .providers.identity.routes import MSI_PATH
from .scenario import build_world, load_scenario
from .server import TwinApp, TwinServer
from .tls import create_tls_material
from .world import TwinSettings, World
from .errors import TwinSetupError


@dataclass
class RunningTwin:
    server: TwinServer
    state_dir: Path
    scenario: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def world(self) -> World:
        return self.server.world

    @property
    def ca_bundle(self) -> str:
        return str(self.server.tls.bundle_file)

    def ready_info(self) -> dict[str, Any]:
        world = self.world
        return {
            "arm_endpoint": self.base_url,
            "ca_bundle": self.ca_bundle,
            "subscription_id": world.default_subscription,
            "tenant_id": world.identity.tenant_id,
            "env": self.env,
            "scenario": self.scenario,
        }

    def control(self) -> ControlClient:
        """A client for this twin's ``/_emulator`` control API over HTTPS."""
        return ControlClient(self.base_url, self.ca_bundle)

    def stop(self) -> None:
        self.server.stop()
        (self.state_dir / READY_FILE).unlink(missing_ok=True)

    def __enter__(self) -> "RunningTwin":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


READY_FILE = "ready.json"


def twin_env(base_url: str, bundle: str, world: World) -> dict[str, str]:
    """Environment under which sfmigrate and any DefaultAzureCredential program talk to the twin."""
    return {
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",  # pin DefaultAzureCredential to the twin's endpoint
        "IDENTITY_ENDPOINT": base_url + MSI_PATH,
        "IDENTITY_HEADER": world.identity.identity_header,
        "REQUESTS_CA_BUNDLE": bundle,
        "SSL_CERT_FILE": bundle,
        "AZURE_AUTHORITY_HOST": base_url,
        "AZURE_TENANT_ID": world.identity.tenant_id,
        "AZURE_SUBSCRIPTION_ID": world.default_subscription,
    }


def start_twin(
    scenario: str | None = None,
    scenario_file: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float | None = None,
    faults: str | None = None,
    state_dir: str | Path | None = None,
    settings: TwinSettings | None = None,
) -> RunningTwin:
    """Build the scenario's world, serve it over HTTPS on ``host:port`` and return once it is ready."""
    spec, _ = load_scenario(scenario, scenario_file)
    settings = settings or TwinSettings()
    if time_scale is not None:
        if time_scale <= 0:
            raise TwinSetupError("--time-scale: must be a positive number")
        settings.time_scale = time_scale
    try:
        FaultPlan.parse(faults)
    except FaultSpecError as exc:
        raise TwinSetupError(f"--faults: {exc}") from None
    directory = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="sfmigrate-twin-"))
    directory.mkdir(parents=True, exist_ok=True)
    tls = create_tls_material(directory)
    tokens = TokenService()
    header_box: dict[str, str] = {}

    def world_factory(server: TwinServer) -> World:
        world = build_world(spec, server.base_url, _copy(settings), tokens, vault_uri=server.vault_uri)
        if "header" in header_box:  # a reset keeps the managed-identity secret, so clients keep working
            world.identity.identity_header = header_box["header"]
        header_box["header"] = world.identity.identity_header
        return world

    server = TwinServer(lambda srv: TwinApp(lambda: world_factory(srv), faults), host=host, port=port, tls=tls)
    server.start()
    bundle = str(tls.bundle_file)
    env = twin_env(server.base_url, bundle, server.world)
    # Who serves from this folder, and the environment to reach it (``sfmigrate emulator env``); gone at stop.
    ready = directory / READY_FILE  # it holds IDENTITY_HEADER: the owner's only, like the server key
    ready.touch(mode=0o600)
    ready.chmod(0o600)
    ready.write_text(json.dumps({"base_url": server.base_url, "pid": os.getpid(), "env": env}), encoding="utf-8")
    return RunningTwin(server, directory, spec.name, env)


def _copy(settings: TwinSettings) -> TwinSettings:
    return TwinSettings(**settings.__dict__)
