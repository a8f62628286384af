"""Key Vault certificate writes over HTTP (data plane, Key Vault 7.x): decode, demand the permission the REST
docs name, call cert_writes.py, encode. Rules: cert_writes.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...wire import KEYVAULT, OBJECT, MapOf, Request, Response, Router, check_shape, ok
from . import cert_writes

if TYPE_CHECKING:
    from ...world import World

BASE = "/kv/{vault}/certificates/{name}"
_ATTRIBUTES = {"enabled": bool, "nbf": int, "exp": int}
_POLICY = {"key_props": OBJECT, "secret_props": OBJECT, "x509_props": OBJECT, "issuer": OBJECT,
           "lifetime_actions": [OBJECT], "attributes": OBJECT, "id": str}
IMPORT_SHAPE = {"value": str, "pwd": str, "policy": _POLICY, "attributes": _ATTRIBUTES, "tags": MapOf(str), "preserveCertOrder": bool}
CREATE_SHAPE = {"policy": _POLICY, "attributes": _ATTRIBUTES, "tags": MapOf(str), "preserveCertOrder": bool}
UPDATE_SHAPE = {"policy": _POLICY, "attributes": _ATTRIBUTES, "tags": MapOf(str)}
MERGE_SHAPE = {"x5c": [str], "attributes": _ATTRIBUTES, "tags": MapOf(str)}


def register(router: Router) -> None:
    def add(method: str, pattern: str, handler: Any) -> None:
        router.add(method, BASE + pattern, handler, style=KEYVAULT, audience=KEYVAULT)

    router.add("GET", BASE + "/pending", get_pending, style=KEYVAULT, audience=KEYVAULT, mutating=False)
    add("DELETE", "/pending", delete_pending)
    add("POST", "/pending/merge", merge_pending)
    add("POST", "/import", import_certificate)
    add("POST", "/create", create_certificate)
    add("PATCH", "", update_certificate)
    add("PATCH", "/{version}", update_certificate)


def _body(request: Request, shape: dict[str, Any]) -> dict[str, Any]:
    body = request.json_object()
    check_shape(body, shape)
    return body


def _bundle(world: World, request: Request, vault: Any, certificate: Any, version: Any) -> Response:
    from .dataplane import _bundle as bundle

    # the policy is derived from the latest enabled version: none when every version is disabled
    return ok(bundle(world, vault, certificate, version, with_policy=any(v.enabled for v in certificate.versions)))


def import_certificate(world: World, request: Request) -> Response:
    from .dataplane import _vault

    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "import")
    certificate, version = cert_writes.import_certificate(world, vault, request.params["name"], _body(request, IMPORT_SHAPE))
    return _bundle(world, request, vault, certificate, version)


def create_certificate(world: World, request: Request) -> Response:
    from .dataplane import _vault

    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "create")
    operation = cert_writes.create_certificate(world, vault, request.params["name"], _body(request, CREATE_SHAPE))
    location = f"{vault.uri}certificates/{request.params['name']}/pending?api-version={request.api_version or '7.5'}"
    return ok(cert_writes.operation_body(vault, operation, initial=True), 202, Location=location, Retry_After="10")


def get_pending(world: World, request: Request) -> Response:
    from .dataplane import _vault

    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "get")
    return ok(cert_writes.operation_body(vault, cert_writes.pending(vault, request.params["name"])))


def delete_pending(world: World, request: Request) -> Response:
    from .dataplane import _vault

    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "delete")
    operation = cert_writes.pending(vault, request.params["name"])
    del vault.pending_certificates[request.params["name"].lower()]
    return ok(cert_writes.operation_body(vault, operation))


def merge_pending(world: World, request: Request) -> Response:
    from .dataplane import _vault

    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "create")
    certificate, version = cert_writes.merge(world, vault, request.params["name"], _body(request, MERGE_SHAPE))
    response = _bundle(world, request, vault, certificate, version)
    response.status = 201
    return response


def update_certificate(world: World, request: Request) -> Response:
    """PATCH /certificates/{name}/{version}: ``attributes`` and ``tags`` of a version (policy updates are not
    modelled: 501 names them)."""
    from ...wire import TwinError
    from .dataplane import _vault

    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "update")
    if (request.params.get("version") or "").lower() == "policy" or request.json_object().get("policy"):
        raise TwinError(501, "TwinRouteNotImplemented", "The Azure twin does not implement certificate policy updates "
                        "(PATCH /certificates/{name}/policy). This gap is deliberate and visible: add it to the twin.")
    body = _body(request, UPDATE_SHAPE)
    certificate = vault.certificate(request.params["name"])
    version_id = request.params.get("version")
    version = certificate.version(version_id) if version_id else certificate.versions[-1]
    cert_writes.update_attributes(version, body.get("attributes"))
    if body.get("tags") is not None:
        certificate.tags = dict(body["tags"])
    return _bundle(world, request, vault, certificate, version)
