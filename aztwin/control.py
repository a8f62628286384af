"""The control API: every ``/_emulator`` route, in one table (:data:`CONTROL_ROUTES`).

Like moto's ``/moto-api`` these need no token (loopback only), take and answer JSON and are never faulted or
logged. A bad body is ``400 BadControlRequest``; an unknown (method, path) is ``404 UnknownControlOperation``.
Handlers only decode the request, call one operation of the app or of the world's models, and encode the
answer. Routes that read or change the world run under the world lock, after the events that are due.

``GET /_emulator/world``, ``GET /_emulator/requests[?since=N]``, ``POST /_emulator/reset``,
``GET|POST /_emulator/faults`` ``{"spec"}``, ``POST /_emulator/clock/advance`` ``{"seconds"}`` and
``POST /_emulator/pipelines`` (:mod:`aztwin.pipelines`) are described in ``docs/twin.md``; the bodies of
the run-time scenario events follow.

``POST /_emulator/certificates/renew`` -- a new version of a vault certificate (a rotation, or a renewal
from another issuer, e.g. an intermediate re-key)::

    {"vault": "<vault name>", "certificate": "<certificate name>",
     "issuer":    "<authority name>" | "self",   default: the latest version's issuer
     "subject":   "<common name>",                default: the latest version's subject CN
     "sans":      ["<dns name>", ...],            default: the latest version's SANs
     "validFrom": "<duration>",                   default "0s", relative to the twin's current time
     "validFor":  "<duration>",                   default: the latest version's lifetime
     "ekus":      ["serverAuth", "clientAuth"]}   default: the latest version's EKUs

answers ``200 {"vault", "certificate", "version", "thumbprint", "subject", "issuer", "issuerThumbprint",
"notBefore", "notAfter"}``. Durations are as in scenario files (``30d``, ``-2h``). VMSS secrets keep
pointing at the version they name; the Key Vault VM extension installs the new version at its next poll
(``pollingIntervalInS`` of simulated time; ``POST /_emulator/clock/advance`` gets there at once).

``POST /_emulator/pki/authorities`` -- a new root or intermediate::

    {"name": "<authority name>", "subject": "<common name>",
     "issuer":     "<authority name>",   omitted: a root
     "validFrom":  "<duration>",         default "-1d"
     "validFor":   "<duration>",         default "3650d"
     "trusted":    true,                 roots only: in the nodes' Trusted Root store
     "reuseKeyOf": "<authority name>"}   share another authority's key (DigiCert-style re-key, docs/twin.md "Issuer siblings")

answers ``201 {"name", "subject", "thumbprint", "issuer", "notBefore", "notAfter"}``.

``POST /_emulator/nodes/health`` -- make a node fail every upgrade's health check, or heal it (a stuck replica,
a full disk: any cause outside certificates; an upgrade walking its upgrade domain rolls back)::

    {"node": "<node name, e.g. nt0_1>", "unhealthy": "<reason>" | null,
     "cluster": "<cluster id or name>"}   optional: which cluster, when two have nodes of that name

answers ``200 {"cluster", "node", "unhealthy"}``; an unknown node is ``404``.

``POST /_emulator/pki/endpoints`` -- make the PKI's AIA and CRL URLs reachable or not, for the nodes and for any
HTTP caller (docs/twin.md, "Chain building and revocation")::

    {"reachable": true | false}

answers ``200 {"reachable"}``; the verdict is taken again at once.

``POST /_emulator/pki/revoke`` -- put a CA-issued certificate on its issuer's CRL::

    {"thumbprint": "<SHA-1 hex>"}

answers ``200 {"thumbprint", "issuer", "revokedAt"}``; an unknown thumbprint is ``404``, a self-signed one ``400``.

``POST /_emulator/pki/reissue`` -- a re-issue of an authority: same subject, issuer and key, a new thumbprint,
published with it in the PKCS#7 bundle at its AIA (``/_pki/<name>.p7c``), so a node may chain its leaves
through either (docs/twin.md, "Issuer siblings")::

    {"name": "<new authority name>", "of": "<authority name>",
     "validFrom": "<duration>",          default "-1d"
     "validFor":  "<duration>"}          default "3650d"

answers ``201 {"name", "subject", "thumbprint", "issuer", "publishedWith", "notBefore", "notAfter"}``; the
clusters' verdict is taken again (nodes build chains with what is published now).

``POST /_emulator/principals/credentials`` -- a new client secret for a service principal of the scenario
(as ``az ad sp credential reset`` does; the previous secret stops working)::

    {"displayName": "<service principal display name>"}

answers ``200 {"tenantId", "clientId", "clientSecret"}``; an unknown name is ``404``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any, Callable

from .pipelines import register_pipeline
from .scenario_model import DNS_NAME, RESOURCE_NAME, duration_seconds
from .wire import Request, Response, TwinError

if TYPE_CHECKING:
    from .server import TwinApp
    from .world import World

ControlHandler = Callable[["TwinApp", Request], Response]
WorldOperation = Callable[["World", dict[str, Any]], Response]

_EARLIEST = dt.datetime(1950, 1, 2, tzinfo=dt.timezone.utc)
_LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc)
_EKUS = ("serverAuth", "clientAuth")


def dispatch(app: TwinApp, request: Request) -> Response:
    """Answer one ``/_emulator`` call from :data:`CONTROL_ROUTES` (paths match case- and slash-insensitively)."""
    handler = CONTROL_ROUTES.get((request.method, request.path.rstrip("/").lower()))
    if handler is None:
        raise TwinError(404, "UnknownControlOperation", f"No control operation {request.method} {request.path}.")
    return handler(app, request)


# -- decoding -------------------------------------------------------------------------------------------
def _bad(message: str) -> TwinError:
    return TwinError(400, "BadControlRequest", message)


def control_body(request: Request) -> dict[str, Any]:
    """A control call's JSON object body (empty means ``{}``); anything else is 400 BadControlRequest."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError) as exc:
        raise _bad(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str, default: str | None = None, *, limit: int = 200) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"'{key}' must be a non-empty string of at most {limit} characters")
    return value


def _window(now: dt.datetime, valid_from: Any, valid_for: Any) -> tuple[dt.datetime, dt.datetime]:
    try:
        start, length = duration_seconds(valid_from), duration_seconds(valid_for)
        not_before = now + dt.timedelta(seconds=start)
        not_after = not_before + dt.timedelta(seconds=length)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(f"validFrom/validFor: {exc}") from None
    if length <= 0:
        raise _bad("validFor must be a positive duration")
    if not (_EARLIEST <= not_before <= _LATEST and _EARLIEST <= not_after <= _LATEST):
        raise _bad("the validity must fall between the years 1950 and 9999")
    return not_before, not_after


def _on_world(operation: WorldOperation) -> ControlHandler:
    """A route over the world: its JSON body, under the world lock, after the events that are due."""

    def handler(app: TwinApp, request: Request) -> Response:
        body = control_body(request)
        world = app.world
        with world.lock:
            world.events.run_due()
            return operation(world, body)

    return handler


# -- the app's own state: snapshot, request log, reset, faults --------------------------------------------
def show_world(app: TwinApp, request: Request) -> Response:
    return Response(200, app.world.snapshot())


def show_requests(app: TwinApp, request: Request) -> Response:
    since = int(request.query.get("since", "0") or 0)
    return Response(200, app.log.view(since))


def reset(app: TwinApp, request: Request) -> Response:
    app.reset()
    return Response(200, {"reset": True, "scenario": app.world.scenario_name})


def show_faults(app: TwinApp, request: Request) -> Response:
    return Response(200, app.faults.summary())


def set_faults(app: TwinApp, request: Request) -> Response:
    spec = control_body(request).get("spec")
    if spec is not None and not isinstance(spec, str):
        raise _bad("'spec' must be a fault spec string (or null/empty to clear).")
    app.set_faults(spec)
    return Response(200, app.faults.summary())


# -- the world: time, pipelines, run-time scenario events --------------------------------------------------
def advance_clock(world: World, body: dict[str, Any]) -> Response:
    seconds = body.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise _bad("'seconds' must be a non-negative number.")
    world.advance(float(seconds))
    return Response(200, {"time": world.iso_now()})


def add_pipeline(world: World, body: dict[str, Any]) -> Response:
    return Response(200, register_pipeline(world, body))


def renew_certificate(world: World, body: dict[str, Any]) -> Response:
    vault = world.keyvault.by_name(_text(body, "vault"))
    if vault is None:
        raise TwinError(404, "VaultNotFound", f"No vault named '{body['vault']}'.")
    certificate = vault.certificate(_text(body, "certificate"))
    latest = certificate.versions[-1]
    facts = latest.issued.facts
    issuer = _text(body, "issuer", latest.issued.issuer.name if latest.issued.issuer else "self")
    if issuer != "self" and issuer not in world.pki.authorities:
        raise _bad(f"'issuer': no authority named '{issuer}' (known: {', '.join(world.pki.authorities) or 'none'}; or 'self')")
    subject = _text(body, "subject", facts.subject_cn or certificate.name, limit=64)
    sans = body.get("sans", list(facts.sans))
    if not isinstance(sans, list) or not all(isinstance(s, str) and re.match(DNS_NAME, s) for s in sans):
        raise _bad("'sans' must be a list of DNS names")
    ekus = body.get("ekus", [e for e in facts.ekus if e in _EKUS])
    if not isinstance(ekus, list) or not all(e in _EKUS for e in ekus):
        raise _bad("'ekus' must be a list of 'serverAuth' and 'clientAuth'")
    lifetime = f"{(facts.not_after - facts.not_before).total_seconds():.0f}s"
    not_before, not_after = _window(world.now(), body.get("validFrom", "0s"), body.get("validFor", lifetime))
    version = world.keyvault.renew(
        vault, certificate, None if issuer == "self" else issuer, subject, not_before, not_after, sans=sans, ekus=ekus,
    )
    return Response(200, {
        "vault": vault.name,
        "certificate": certificate.name,
        "version": version.version,
        "thumbprint": version.issued.thumbprint,
        "subject": subject,
        "issuer": issuer,
        "issuerThumbprint": version.issued.issuer_thumbprint,
        "notBefore": not_before.isoformat(),
        "notAfter": not_after.isoformat(),
    })


def _new_authority_name(world: World, body: dict[str, Any]) -> str:
    name = _text(body, "name", limit=63)
    if not re.match(RESOURCE_NAME, name):
        raise _bad("'name' may hold letters, digits, '-' and '_' and must start with a letter or digit")
    if name in world.pki.authorities:
        raise TwinError(409, "AuthorityExists", f"An authority named '{name}' already exists.")
    return name


def add_authority(world: World, body: dict[str, Any]) -> Response:
    name = _new_authority_name(world, body)
    subject = _text(body, "subject", limit=64)
    for key in ("issuer", "reuseKeyOf"):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or value not in world.pki.authorities):
            raise _bad(f"'{key}': no authority named '{value}'")
    trusted = body.get("trusted", True)
    if not isinstance(trusted, bool):
        raise _bad("'trusted' must be true or false")
    not_before, not_after = _window(world.now(), body.get("validFrom", "-1d"), body.get("validFor", "3650d"))
    issued = world.add_authority(name, subject, not_before, not_after, issuer=body.get("issuer"),
                                 reuse_key_of=body.get("reuseKeyOf"), trusted=trusted)
    return Response(201, {
        "name": name,
        "subject": subject,
        "thumbprint": issued.thumbprint,
        "issuer": issued.issuer.name if issued.issuer else None,
        "notBefore": not_before.isoformat(),
        "notAfter": not_after.isoformat(),
    })


def set_node_health(world: World, body: dict[str, Any]) -> Response:
    node = _text(body, "node", limit=80)
    reason = body.get("unhealthy")
    if reason is not None and (not isinstance(reason, str) or not reason or len(reason) > 300):
        raise _bad("'unhealthy' must be a reason (a non-empty string of at most 300 characters) or null")
    cluster_ref = body.get("cluster")
    if cluster_ref is not None and (not isinstance(cluster_ref, str) or not cluster_ref):
        raise _bad("'cluster' must be a cluster id or name")
    cluster = world.servicefabric.set_node_health(node, reason, cluster_ref)
    if cluster is None:
        raise TwinError(404, "NodeNotFound", f"No node named '{node}' in {'cluster ' + cluster_ref if cluster_ref else 'any cluster'}.")
    return Response(200, {"cluster": cluster, "node": node, "unhealthy": reason})


def set_pki_endpoints(world: World, body: dict[str, Any]) -> Response:
    reachable = body.get("reachable")
    if not isinstance(reachable, bool):
        raise _bad("'reachable' must be true or false")
    world.pki.reachable = reachable
    world.servicefabric.on_nodes_changed()  # nodes validating by common name see it at their next chain build
    return Response(200, {"reachable": reachable})


def revoke_certificate(world: World, body: dict[str, Any]) -> Response:
    thumbprint = _text(body, "thumbprint", limit=64)
    try:
        issued = world.pki.revoke(thumbprint, world.now())
    except KeyError as exc:
        raise TwinError(404, "CertificateNotFound", str(exc.args[0])) from None
    except ValueError as exc:
        raise _bad(str(exc)) from None
    world.servicefabric.on_nodes_changed()
    return Response(200, {"thumbprint": issued.thumbprint, "issuer": issued.issuer.name if issued.issuer else None,
                          "revokedAt": world.pki.revoked[issued.thumbprint].isoformat()})


def reissue_authority(world: World, body: dict[str, Any]) -> Response:
    name = _new_authority_name(world, body)
    of = body.get("of")
    if not isinstance(of, str) or of not in world.pki.authorities:
        raise _bad(f"'of': no authority named '{of}'")
    not_before, not_after = _window(world.now(), body.get("validFrom", "-1d"), body.get("validFor", "3650d"))
    issued = world.reissue_authority(name, of, not_before, not_after)
    return Response(201, {
        "name": name,
        "subject": issued.facts.subject_cn,
        "thumbprint": issued.thumbprint,
        "issuer": issued.issuer.name if issued.issuer else None,
        "publishedWith": [s.name for s in world.pki.siblings(issued)],
        "notBefore": not_before.isoformat(),
        "notAfter": not_after.isoformat(),
    })


def reset_principal_secret(world: World, body: dict[str, Any]) -> Response:
    name = _text(body, "displayName")
    principal = world.identity.reset_secret(name)
    if principal is None:
        raise TwinError(404, "PrincipalNotFound", f"No service principal named '{name}' in this scenario.")
    return Response(200, {"tenantId": principal.tenant_id, "clientId": principal.client_id,
                          "clientSecret": principal.client_secret})


#: Every ``/_emulator`` route: (method, lower-cased path without a trailing slash) -> handler.
CONTROL_ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("GET", "/_emulator/world"): show_world,
    ("GET", "/_emulator/requests"): show_requests,
    ("POST", "/_emulator/reset"): reset,
    ("GET", "/_emulator/faults"): show_faults,
    ("POST", "/_emulator/faults"): set_faults,
    ("POST", "/_emulator/clock/advance"): _on_world(advance_clock),
    ("POST", "/_emulator/pipelines"): _on_world(add_pipeline),
    ("POST", "/_emulator/certificates/renew"): _on_world(renew_certificate),
    ("POST", "/_emulator/pki/authorities"): _on_world(add_authority),
    ("POST", "/_emulator/pki/endpoints"): _on_world(set_pki_endpoints),
    ("POST", "/_emulator/pki/revoke"): _on_world(revoke_certificate),
    ("POST", "/_emulator/pki/reissue"): _on_world(reissue_authority),
    ("POST", "/_emulator/principals/credentials"): _on_world(reset_principal_secret),
    ("POST", "/_emulator/nodes/health"): _on_world(set_node_health),
}
