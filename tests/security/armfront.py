"""A TLS front for a running twin that passes every request through and rewrites the cluster's GET answer:
Azure's responses as an attacker (or a broken proxy) shapes them, everything else the twin's own."""

from __future__ import annotations

import http.server
import ssl
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


class ArmFront(http.server.BaseHTTPRequestHandler):
    upstream = ""
    context: ssl.SSLContext
    status: int | None = None  # None: keep the twin's status
    body = b""

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(self.upstream + self.path, data=data, method=self.command, headers=headers)
        try:
            with urllib.request.urlopen(request, context=self.context) as response:
                status, reply, reply_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, reply, reply_headers = exc.code, exc.read(), exc.headers
        if self.command == "GET" and "/providers/Microsoft.ServiceFabric/clusters/" in self.path and status == 200:
            status, reply = self.status or status, self.body
        self.send_response(status)
        for key, value in reply_headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def arm_front(twin: Any) -> Iterator[tuple[type[ArmFront], str]]:
    """(handler class to set ``status``/``body`` on, the front's URL); the twin's own server certificate
    (same loopback host), so the plan's caBundle trusts it."""
    state = Path(twin.state_dir)
    handler = type("Handler", (ArmFront,), {"upstream": twin.base_url,
                                            "context": ssl.create_default_context(cafile=twin.ca_bundle)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(state / "twin-server.pem", state / "twin-server.key")
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
