"""The twin's HTTPS server: dispatch, authentication, fault injection, the request log, the control API.

One TLS port on loopback serves every surface: ARM, the Key Vault data plane (``/kv/{vault}/...``), the
token endpoints and ``/_emulator``. Each connection gets its own thread; the world is changed under one
lock, so concurrent clients never lose an update.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from .control import dispatch
from .faults import Fault, FaultPlan
from .resources import check_subscription_id
from .providers.identity.models import ARM_AUDIENCES, KEYVAULT_AUDIENCES
from .tls import TlsMaterial
from .providers.graph.models import GRAPH_PREFIX, as_graph_auth_error, graph_resource
from .wire import ARM, CONTROL, GRAPH, KEYVAULT, Request, Response, Route, Router, TwinError
from .world import World


@dataclass
class Outcome:
    status: int
    headers: dict[str, str]
    body: bytes
    reset: bool = False


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.entries.append(entry)

    def view(self, since: int = 0) -> dict[str, Any]:
        with self._lock:
            entries = list(self.entries[since:])
            total = len(self.entries)
            mutating = sum(1 for e in self.entries if e.get("mutating"))
        return {"total": total, "mutating": mutating, "requests": entries}

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()


def build_router() -> Router:
    from .providers.arm import routes as arm
    from .providers.authorization import routes as authorization
    from .providers.compute import routes as compute
    from .providers.graph import routes as graph
    from .providers.identity import routes as identity
    from .providers.insights import routes as insights
    from .providers.keyvault import dataplane, routes as keyvault
    from .providers.msi import routes as msi
    from .providers.network import routes as network
    from .providers.servicefabric import routes as servicefabric

    router = Router()
    for module in (arm, compute, servicefabric, keyvault, msi, authorization, dataplane, identity, network, graph, insights):
        module.register(router)
    return router


class TwinApp:
    """Request handling independent of sockets (the HTTP server and tests both call :meth:`handle`)."""

    def __init__(self, world_factory: Callable[[], World], faults: str | None = None) -> None:
        self.world_factory = world_factory
        self.world = world_factory()
        self.router = build_router()
        self.faults = FaultPlan.parse(faults)
        self.log = RequestLog()

    # -- what the control API changes (routes and decoding: aztwin/control.py) -----------------------
    def reset(self) -> None:
        """A fresh world from the scenario, and an empty request log."""
        self.world = self.world_factory()
        self.log.clear()

    def set_faults(self, spec: str | None) -> None:
        self.faults = FaultPlan.parse(spec)

    def control(self, request: Request) -> Response:
        """Answer a ``/_emulator`` call (no authentication: loopback only, like moto's /moto-api)."""
        return dispatch(self, request)

    # -- the request pipeline -----------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, base_url: str) -> Outcome:
        started = time.monotonic()
        request = Request.from_target(method, target, headers, body, base_url)
        if request.path.lower().startswith("/_emulator"):
            try:
                return self._render(self.control(request), CONTROL)
            except (TwinError, ValueError) as exc:
                error = exc if isinstance(exc, TwinError) else TwinError(400, "BadControlRequest", str(exc))
                return self._render_error(error, CONTROL)
            except Exception as exc:  # a twin bug: answer and say so, never drop the connection
                return self._render_error(TwinError(500, "TwinInternalError", f"{type(exc).__name__}: {exc}"), CONTROL)

        world = self.world
        try:
            matched = self.router.match(request.method, request.path)
        except TwinError as exc:
            return self._finish(request, world, None, self._render_error(exc, ARM), started, False)
        route, params = matched if matched else (None, {})
        style = route.style if route else (KEYVAULT if request.path.lower().startswith("/kv/") else ARM)
        if route is None and request.path.lower().startswith(GRAPH_PREFIX + "/"):
            style = GRAPH

        fault, latency_ms = (None, 0)
        if route is None or route.authenticated:
            fault, latency_ms = self.faults.decide(request.method, request.path)
        if latency_ms:
            time.sleep(latency_ms / 1000)
        if fault is not None:
            outcome = self._fault(fault, style)
            return self._finish(request, world, route, outcome, started, False, fault=fault.kind)

        if route is None:
            error = TwinError(
                501,
                "TwinRouteNotImplemented",
                f"The Azure twin does not implement {request.method} {request.path} "
                f"(api-version {request.api_version}). This gap is deliberate and visible: add it to the twin.",
            )
            return self._finish(request, world, None, self._render_error(error, style), started, False)

        request.params = params
        try:
            if route.authenticated:
                audiences: tuple[str, ...] = KEYVAULT_AUDIENCES if route.audience == KEYVAULT else ARM_AUDIENCES + (base_url,)
                if route.audience == KEYVAULT:
                    audiences = audiences + (base_url,)
                if route.audience == GRAPH:  # Graph takes tokens for its own resource id only
                    audiences = (graph_resource(base_url),)
                request.principal = world.identity.authenticate(request.headers.get("authorization"), audiences)
            _check_subscription(world, request.path)
            with world.lock:
                world.events.run_due()
                response = route.handler(world, request)
            outcome = self._render(response, style)
        except TwinError as exc:
            if exc.status == 401 and style == KEYVAULT:
                exc.headers.setdefault(
                    "WWW-Authenticate",
                    f'Bearer authorization="{base_url}/{world.identity.tenant_id}", resource="https://vault.azure.net"',
                )
                if "missing" in exc.message:
                    exc.code, exc.message = "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."
            outcome = self._render_error(as_graph_auth_error(exc) if style == GRAPH else exc, style)
        except Exception as exc:  # a twin bug: still answer in the wire format, and say so
            outcome = self._render_error(TwinError(500, "TwinInternalError", f"{type(exc).__name__}: {exc}"), style)
        if route.mutating and route.audience == ARM and request.principal is not None:
            _log_activity(world, request, outcome)
        return self._finish(request, world, route, outcome, started, route.mutating)

    def _finish(
        self, request: Request, world: World, route: Route | None, outcome: Outcome, started: float, mutating: bool,
        fault: str | None = None,
    ) -> Outcome:
        # ARM and Key Vault stamp every answer with their clock (RFC 7231 Date): the twin's is the simulated one,
        # so a client that takes "now" from Azure agrees with the world (docs/twin.md, "One clock").
        outcome.headers.setdefault("Date", format_datetime(world.now(), usegmt=True))
        principal = request.principal
        self.log.add(
            {
                "time": world.iso_now(),
                "method": request.method,
                "path": request.path,
                "status": outcome.status,
                "caller": principal.object_id if principal else None,
                "caller_name": principal.display_name if principal else None,
                "api_version": request.api_version,
                "mutating": bool(mutating),
                "fault": fault,
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
            }
        )
        return outcome

    @staticmethod
    def _render(response: Response, style: str) -> Outcome:
        headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
        payload = response.payload()
        if response.body is None:
            headers.pop("Content-Type", None)
        return Outcome(response.status, headers, payload)

    @staticmethod
    def _render_error(error: TwinError, style: str) -> Outcome:
        payload = json.dumps(error.body(style)).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "x-ms-failure-cause": "service", **error.headers}
        return Outcome(error.status, headers, payload)

    def _fault(self, fault: Fault, style: str) -> Outcome:
        if fault.kind == "reset":
            return Outcome(0, {}, b"", reset=True)
        if fault.kind in ("429", "503"):
            # ARM throttles with Retry-After in whole seconds (azure-core retries any method that carries it,
            # POST and PATCH included); retry-after-ms keeps the precise, time-scaled hint.
            status, code, message = (
                (429, "TooManyRequests", "The twin throttled this request (fault injection).")
                if fault.kind == "429"
                else (503, "ServiceUnavailable", "The twin is briefly unavailable (fault injection).")
            )
            error = TwinError(status, code, message)
            error.headers["Retry-After"] = str(round(fault.retry_after_ms / 1000))
            error.headers["retry-after-ms"] = str(fault.retry_after_ms)
        else:
            error = TwinError(500, "InternalServerError", "The twin failed this request (fault injection).")
            error.headers["retry-after-ms"] = str(fault.retry_after_ms)
        return self._render_error(error, style)


def _log_activity(world: World, request: Request, outcome: Outcome) -> None:
    """ARM's activity log records each management write with its caller and outcome (providers/insights)."""
    from .providers.insights.models import Write

    principal = request.caller
    error: dict[str, Any] | None = None
    if outcome.status >= 400:
        try:
            error = json.loads(outcome.body).get("error")
        except ValueError:
            error = None
    write = Write(request.method, request.path, outcome.status, principal.object_id, principal.tenant_id,
                  str(request.headers.get("x-ms-client-request-id") or ""), dict(outcome.headers), error)
    with world.lock:
        world.activity.record(write)


_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)


def _check_subscription(world: World, path: str) -> None:
    """ARM's front door refuses a malformed subscription id with 400 before any provider sees it."""
    found = _SUBSCRIPTION.match(path)
    if found and found.group(1).lower() not in world.subscriptions:
        check_subscription_id(found.group(1))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sfmigrate-twin/1"
    server: "_TlsServer"

    def log_message(self, format: str, *args: Any) -> None:  # requests are logged by TwinApp
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:  # a Content-Length or chunk size that is not a number
            payload = json.dumps(TwinError(400, "InvalidRequestFormat", "The request framing (Content-Length or chunk size) is invalid.").body(ARM)).encode()
            self.close_connection = True
            self.send_response(400)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        target = self.path
        if self.server.vault_name:  # a vault's own origin: route to its data plane
            target = f"/kv/{self.server.vault_name}{self.path if self.path.startswith('/') else '/' + self.path}"
        outcome = self.server.app.handle(self.command, target, dict(self.headers.items()), body, self.server.base_url)
        if outcome.reset:
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close_connection = True
            try:
                self.connection.close()
            except OSError:
                pass
            return
        self.send_response_only(outcome.status)  # no wall-clock Date: the outcome carries the world's
        self.send_header("Server", self.version_string())
        for key, value in outcome.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(outcome.body)))
        self.send_header("x-ms-request-id", str(id(outcome)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(outcome.body)

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_HEAD = _serve


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, app: TwinApp, vault_name: str = "") -> None:
        self.ssl_context = context
        self.app = app
        self.base_url = ""
        self.vault_name = vault_name
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:  # TLS handshake in the worker thread
        request.settimeout(60)
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle holds the body back until
        # the client's delayed ACK (~40 ms per keep-alive request).
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            _Handler(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, OSError, socket.timeout):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet on client hang-ups
        pass


socketserver.TCPServer.allow_reuse_address = True


class TwinServer:
    """Start and stop the twin in this process (tests, demo, ``emulator serve``).

    The main port serves ARM, tokens and control; every vault gets its own port, because a vault URL is
    an origin (``https://{vault}.vault.azure.net/``) and the Key Vault SDK parses ids that way.
    """

    def __init__(self, app_factory: Callable[["TwinServer"], TwinApp], host: str = "127.0.0.1", port: int = 0, tls: TlsMaterial | None = None) -> None:
        if tls is None:
            raise ValueError("TLS material is required: the twin serves HTTPS only")
        self.host = host
        self.tls = tls
        self._context = tls.server_context()
        self._httpd = _TlsServer((host, port), self._context, None)  # type: ignore[arg-type]
        self.base_url = self._url(self._httpd)
        self._httpd.base_url = self.base_url
        self._vaults: dict[str, _TlsServer] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._started = False
        self.app = app_factory(self)
        self._httpd.app = self.app

    @staticmethod
    def _url(httpd: "_TlsServer") -> str:
        bound_host, bound_port = httpd.server_address[:2]
        host = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        display_host = f"[{host}]" if ":" in host else host
        return f"https://{display_host}:{bound_port}"

    def vault_uri(self, name: str) -> str:
        """The data-plane origin of vault ``name`` (one port per vault, stable across resets)."""
        key = name.lower()
        if key not in self._vaults:
            listener = _TlsServer((self.host, 0), self._context, getattr(self, "app", None), vault_name=name)  # type: ignore[arg-type]
            listener.base_url = self.base_url
            self._vaults[key] = listener
            if self._started:
                self._serve(listener)
        listener = self._vaults[key]
        listener.app = getattr(self, "app", None) or listener.app
        return self._url(listener) + "/"

    def vault_origins(self) -> dict[str, str]:
        """Each vault data plane's origin (``https://127.0.0.1:port``, lower-case) and the vault it serves."""
        return {self._url(listener).lower(): str(listener.vault_name) for listener in list(self._vaults.values())}

    def _serve(self, httpd: "_TlsServer") -> None:
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._threads.append(thread)
        thread.start()

    @property
    def world(self) -> World:
        return self.app.world

    def start(self) -> "TwinServer":
        self._started = True
        for listener in [self._httpd, *self._vaults.values()]:
            listener.app = self.app
            self._serve(listener)
        ticker = threading.Thread(target=self._tick, daemon=True)
        self._threads.append(ticker)
        ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stopping.wait(0.01):
            try:
                self.app.world.tick()
            except Exception:  # a failing event must not stop time; it is visible in the world snapshot
                pass

    def stop(self) -> None:
        self._stopping.set()
        for listener in [self._httpd, *self._vaults.values()]:
            if self._started:
                listener.shutdown()
            listener.server_close()

    def __enter__(self) -> "TwinServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
