"""An HTTPS proxy (CONNECT only) that takes ``{vault}.vault.azure.net:443`` to that vault's data-plane port on the
twin, so a client that builds vault URLs from a name (`az keyvault ... --vault-name`) reaches the twin's vault.

Bytes pass through unchanged: TLS runs end to end between the client and the twin (whose certificate names
``*.vault.azure.net``, trusted only through the twin's CA bundle). Any other host is refused (403).
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from typing import Callable

SUFFIX = ".vault.azure.net"


class _Handler(socketserver.StreamRequestHandler):
    server: "VaultProxy"

    def handle(self) -> None:
        request_line = self.rfile.readline(4096).decode("latin-1")
        while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
            pass  # the CONNECT request's headers
        method, _, rest = request_line.partition(" ")
        host, _, port = rest.split(" ")[0].rpartition(":")
        if method != "CONNECT" or not host.lower().endswith(SUFFIX) or port != "443":
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        target = self.server.resolve(host.lower()[: -len(SUFFIX)])
        with socket.create_connection(target, timeout=30) as upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            _pipe(self.connection, upstream)


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    sockets = [client, upstream]
    while True:
        readable, _, broken = select.select(sockets, [], sockets, 60)
        if broken or not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is client else client).sendall(data)


class VaultProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, resolve: Callable[[str], tuple[str, int]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.resolve = resolve
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
