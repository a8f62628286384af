"""The in-process transport (issue 9 §4): the real SDK clients and the twin's handler, with no socket.

The rest of the product tests rely on it, so it must be proved faithful where it matters: nothing goes over
a socket (ARM, Key Vault origins, tokens, cloud metadata), nothing goes anywhere but the twin, and a fault
that resets the connection reaches the clients as a real reset does.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.rest import HttpRequest

from aztwin import ForeignOriginError, InProcessTransport
from migrate import commands
from migrate.errors import OperationalError
from twinkit import inprocess_session, requests_json, world_json


def test_an_inprocess_plan_and_apply_open_no_socket_and_converge(twin_factory, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    twin = twin_factory("basic")
    attempts: list[Any] = []

    def refuse(sock: socket.socket, address: Any, *args: Any) -> Any:
        attempts.append(address)
        raise OSError(f"test: no socket may connect during an in-process run (to {address})")

    with monkeypatch.context() as patched:
        patched.setattr(socket.socket, "connect", refuse)
        patched.setattr(socket.socket, "connect_ex", refuse)
        session = inprocess_session(twin)  # cloud metadata and the credential too
        planned = commands.plan(twin.plan_file, session=session)
        applied = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert attempts == []
    assert planned.plan.steps and planned.exit_code == 2
    assert applied.state is not None and applied.state.status == "complete"

    cluster = world_json(twin)["cluster"]  # the twin's own account, over HTTPS once the run is over
    assert cluster["declaration"] == "common_name"
    assert cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    paths = [r["path"] for r in requests_json(twin)["requests"]]
    assert any(p.startswith("/_identity") for p in paths)  # tokens were issued by the twin's handler,
    assert any(p.lower().startswith("/kv/") for p in paths)  # the vault's own origin was served,
    assert any(p.lower().startswith("/subscriptions/") for p in paths)  # and ARM


@pytest.mark.parametrize("url", [
    "https://management.azure.com/subscriptions?api-version=2022-12-01",
    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
])
def test_the_transport_refuses_a_foreign_host(twin_factory, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    twin = twin_factory("basic")
    transport = InProcessTransport(twin)
    attempts: list[Any] = []
    with monkeypatch.context() as patched:
        patched.setattr(socket.socket, "connect", lambda sock, address: attempts.append(address))
        with pytest.raises(ForeignOriginError) as refused:
            transport.send(HttpRequest("GET", url))
    assert isinstance(refused.value, ServiceRequestError)  # what azure-core raises when nothing was sent
    assert attempts == []  # refused before any connection, not after a failed one
    assert requests_json(twin)["total"] == 0  # and not handed to the twin under another name


def test_the_transport_refuses_the_twins_host_on_another_port_or_scheme(twin_factory) -> None:
    twin = twin_factory("basic")
    transport = InProcessTransport(twin)
    host, port = twin.base_url.removeprefix("https://").rsplit(":", 1)
    vault_ports = {origin.rsplit(":", 1)[1] for origin in transport.vault_origins()}
    other = next(p for p in range(int(port) + 1, int(port) + 1000) if str(p) not in vault_ports)
    for url in (f"https://{host}:{other}/subscriptions", f"http://{host}:{port}/subscriptions"):
        with pytest.raises(ForeignOriginError):
            transport.send(HttpRequest("GET", url))


def test_a_session_over_the_transport_cannot_reach_a_foreign_vault(twin_factory) -> None:
    twin = twin_factory("basic")
    session = inprocess_session(twin)
    with pytest.raises(OperationalError, match="network error"):
        session.gateway.get_certificate("https://elsewhere.vault.azure.net/", "cluster")
    with pytest.raises(ForeignOriginError):
        session.gateway.fetch_public("https://cacerts.example.com/issuer.crt")


def test_a_reset_fault_raises_what_a_real_reset_raises(twin_factory) -> None:
    twin = twin_factory("basic", faults="match=^GET /subscriptions,kinds=reset,rate=1,limit=1")
    transport = InProcessTransport(twin)
    url = f"{twin.base_url}/subscriptions?api-version=2022-12-01"
    with pytest.raises(ServiceResponseError):
        transport.send(HttpRequest("GET", url))
    answered = transport.send(HttpRequest("GET", url))  # the rule's limit is spent: an answer (no token: 401)
    assert answered.status_code == 401
    faults = [r["fault"] for r in requests_json(twin)["requests"] if r["path"] == "/subscriptions"]
    assert faults == ["reset", None]


def test_resets_in_process_are_retried_by_the_clients_like_real_ones(twin_factory) -> None:
    twin = twin_factory("basic", faults="match=^GET /subscriptions/,kinds=reset,rate=0.5,limit=3,seed=1")
    result = commands.plan(twin.plan_file, session=inprocess_session(twin))
    assert result.exit_code == 2
    assert [s.name for s in result.plan.steps] == ["ensure-identity", "grant-vault-access", "stage-goal:nt0",
                                                   "declare-goal-secondary", "install-kv-extension:nt0", "convert-cluster"]
    assert [r["fault"] for r in requests_json(twin)["requests"] if r["fault"]] == ["reset"] * 3
