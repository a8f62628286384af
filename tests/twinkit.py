"""Test helpers for talking to a running twin the way any outside client would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aztwin import RunningTwin
from migrate.twin_plan import write_plan_for


@dataclass
class PlannedTwin(RunningTwin):
    """A running twin and the sfmigrate plan file aimed at it (written by sfmigrate, as `emulator serve` does)."""

    plan_file: Path | None = None


def with_plan(twin: RunningTwin) -> PlannedTwin:
    plan_file = write_plan_for(twin)
    return PlannedTwin(twin.server, twin.state_dir, twin.scenario, twin.env, plan_file=plan_file)


class Clients:
    """The Azure SDK management clients, unchanged, aimed at a twin (custom endpoint + CA bundle)."""

    def __init__(self, twin: RunningTwin, credential: Any = None) -> None:
        from azure.identity import DefaultAzureCredential

        self.twin = twin
        self.credential = credential or DefaultAzureCredential()
        self.subscription = twin.world.default_subscription
        self.kwargs = {
            "base_url": twin.base_url,
            "credential_scopes": ["https://management.azure.com/.default"],
            "connection_verify": twin.ca_bundle,
            "polling_interval": 0.01,
        }

    def _client(self, cls: Any) -> Any:
        return cls(self.credential, self.subscription, **self.kwargs)

    @property
    def servicefabric(self) -> Any:
        from azure.mgmt.servicefabric import ServiceFabricManagementClient

        return self._client(ServiceFabricManagementClient)

    @property
    def compute(self) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return self._client(ComputeManagementClient)

    @property
    def keyvault(self) -> Any:
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return self._client(KeyVaultManagementClient)

    @property
    def msi(self) -> Any:
        from azure.mgmt.msi import ManagedServiceIdentityClient

        return self._client(ManagedServiceIdentityClient)

    @property
    def authorization(self) -> Any:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return self._client(AuthorizationManagementClient)

    def certificates(self, vault_uri: str) -> Any:
        from azure.keyvault.certificates import CertificateClient

        return CertificateClient(vault_uri, self.credential, verify_challenge_resource=False, connection_verify=self.twin.ca_bundle)




def world_json(twin: RunningTwin) -> dict[str, Any]:
    """GET /_emulator/world through HTTPS, as any outside observer would (the twin's ControlClient)."""
    return twin.control().world()


def requests_json(twin: RunningTwin, since: int = 0) -> dict[str, Any]:
    return twin.control().requests(since)


def fast_session(twin: PlannedTwin) -> Any:
    """A sfmigrate session for the twin's plan file, polling as fast as the twin's time scale warrants."""
    from migrate import commands
    from migrate.spec import load_plan

    assert twin.plan_file is not None
    return commands.open_session(load_plan(twin.plan_file), poll_interval=0.02, retry_backoff=0.05)


def inprocess_session(twin: PlannedTwin) -> Any:
    """As fast_session, over the in-process transport: the same SDK clients and twin handler, no socket."""
    from aztwin import InProcessTransport
    from migrate import commands
    from migrate.spec import load_plan

    assert twin.plan_file is not None
    return commands.open_session(load_plan(twin.plan_file), poll_interval=0.02, retry_backoff=0.05,
                                 transport=InProcessTransport(twin))


def scale_sets(clients: Clients) -> list[dict[str, Any]]:
    """Every scale set as ARM returns it (raw JSON), through the real compute client."""
    return [dict(s.as_dict()) for s in clients.compute.virtual_machine_scale_sets.list_all()]


def load_test_module(relative: str, name: str) -> Any:
    """Another folder's test module (its helpers), loaded by path under a name of its own: test folders are not
    packages, and pytest cannot collect two modules of one name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / relative)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What a managed identity gives a process: an Azure DevOps job has none of it (pipeline_env removes it).
MI_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_TOKEN_CREDENTIALS", "MSI_ENDPOINT")


def pipeline_env(twin: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Exactly what an AzureCLI@2 step gives its script (the twin registers a pipeline and its service connection),
    plus the twin's CA bundle, and no managed identity; with the pipeline's principal."""
    import json
    import os
    import ssl
    import urllib.request

    request = urllib.request.Request(twin.base_url + "/_emulator/pipelines", data=b"{}", method="POST")
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=twin.ca_bundle)) as response:
        registration = json.loads(response.read())
    env = {k: v for k, v in os.environ.items() if k not in MI_VARIABLES and not k.startswith("AZURE_")}
    env.update(registration["env"])
    env["REQUESTS_CA_BUNDLE"] = env["SSL_CERT_FILE"] = twin.ca_bundle
    return env, registration["principal"]
