"""The test-only CONNECT proxy that reaches a twin vault by its ``{vault}.vault.azure.net`` name: it tunnels only
that suffix on port 443 (to the twin's vault port, TLS end to end) and refuses every other host."""

from __future__ import annotations

import socket

import requests

from vault_proxy import VaultProxy


def _connect(proxy: VaultProxy, target: str) -> bytes:
    with socket.create_connection(proxy.server_address[:2], timeout=10) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        return sock.recv(200)


def test_the_proxy_refuses_hosts_that_are_not_vaults() -> None:
    proxy = VaultProxy(lambda name: ("127.0.0.1", 9))
    try:
        assert _connect(proxy, "management.azure.com:443").startswith(b"HTTP/1.1 403")
        assert _connect(proxy, "kv.vault.azure.net:80").startswith(b"HTTP/1.1 403")
    finally:
        proxy.stop()


def test_a_vault_name_reaches_the_twin_vault_over_tls_checked_against_the_twin_ca(twin) -> None:
    from urllib.parse import urlsplit

    vault = twin.control().world()["vaults"][0]
    origin = urlsplit(vault["uri"])
    proxy = VaultProxy(lambda name: (str(origin.hostname), int(origin.port or 443)) if name == vault["name"] else ("127.0.0.1", 9))
    try:
        answer = requests.get(f"https://{vault['name']}.vault.azure.net/certificates?api-version=7.4", timeout=10,
                              proxies={"https": proxy.url}, verify=twin.ca_bundle)
        # the vault's challenge (no token sent): the twin's vault answered, and its certificate names the vault host
        assert answer.status_code == 401 and "resource=\"https://vault.azure.net\"" in answer.headers["WWW-Authenticate"]
    finally:
        proxy.stop()
