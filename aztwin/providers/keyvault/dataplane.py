"""The Key Vault data plane (``{vaultUri}`` = ``{twin}/kv/{vault}/``): certificates, versions, policies, secrets.

Authentication follows the recorded challenge flow (a 401 with ``WWW-Authenticate`` first); authorisation
comes from the vault's access policies or, on an RBAC vault, from role assignments' data actions.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from ...wire import KEYVAULT, Request, Response, Router, TwinError, ok
from ..network.models import Origin
from .models import CertificateVersion, Vault, VaultCertificate, _epoch
from .network import admit

if TYPE_CHECKING:
    from ...world import World

BASE = "/kv/{vault}"


def register(router: Router) -> None:
    def add(pattern: str, handler: Any) -> None:
        router.add("GET", BASE + pattern, handler, style=KEYVAULT, audience=KEYVAULT, mutating=False)

    from . import write_routes  # first: `/certificates/{name}/pending` before `/certificates/{name}/{version}`

    write_routes.register(router)
    add("/certificates", list_certificates)
    add("/certificates/{name}/versions", list_versions)
    add("/certificates/{name}/policy", get_policy)
    add("/certificates/{name}", get_certificate)
    add("/certificates/{name}/{version}", get_certificate)
    add("/secrets", list_secrets)
    add("/secrets/{name}", get_secret)
    add("/secrets/{name}/{version}", get_secret)


def _vault(world: World, request: Request) -> Vault:
    vault = world.keyvault.by_name(request.params["vault"])
    if vault is None:
        raise TwinError(404, "VaultNotFound", f"The vault '{request.params['vault']}' does not exist.")
    if request.caller.tenant_id != vault.tenant_id:
        raise TwinError(401, "Unauthorized", "AKV10032: Invalid issuer. The token is for another tenant.")
    # Callers over HTTP (the operator, pipelines) come from the scenario's public address (docs/twin.md, "Vault network rules").
    caller = request.caller
    admit(world, vault, Origin(address=world.network.caller_address), f"appid={caller.client_id};oid={caller.object_id}")
    return vault


def _attributes(world: World, version: CertificateVersion) -> dict[str, Any]:
    facts = version.issued.facts
    return {
        "enabled": version.enabled,
        "nbf": version.attribute_overrides.get("nbf", _epoch(facts.not_before)),
        "exp": version.attribute_overrides.get("exp", _epoch(facts.not_after)),
        "created": version.created,
        "updated": version.created,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    }


def _x5t(version: CertificateVersion) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(version.issued.thumbprint)).rstrip(b"=").decode("ascii")


def policy_body(vault: Vault, certificate: VaultCertificate) -> dict[str, Any]:
    facts = certificate.latest().issued.facts
    validity_months = max(1, round((facts.not_after - facts.not_before).days / 30))
    return {
        "id": f"{vault.uri}certificates/{certificate.name}/policy",
        "key_props": {"exportable": certificate.exportable, "kty": "RSA", "key_size": 2048, "reuse_key": False},
        "secret_props": {"contentType": certificate.content_type},
        "x509_props": {
            "subject": facts.subject.replace(",", ", "),
            "sans": {"dns_names": list(facts.sans)},
            "ekus": [{"serverAuth": "1.3.6.1.5.5.7.3.1", "clientAuth": "1.3.6.1.5.5.7.3.2"}.get(e, e) for e in facts.ekus],
            "key_usage": ["digitalSignature", "keyEncipherment"],
            "validity_months": validity_months,
            "basic_constraints": {"ca": False},
        },
        "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}],
        "issuer": {"name": certificate.issuer_name, "cert_transparency": False},
        "attributes": {"enabled": True, "created": certificate.versions[0].created, "updated": certificate.versions[-1].created},
    }


def _bundle(world: World, vault: Vault, certificate: VaultCertificate, version: CertificateVersion, with_policy: bool) -> dict[str, Any]:
    body = {
        "id": f"{vault.uri}certificates/{certificate.name}/{version.version}",
        "kid": f"{vault.uri}keys/{certificate.name}/{version.version}",
        "sid": f"{vault.uri}secrets/{certificate.name}/{version.version}",
        "x5t": _x5t(version),
        "cer": base64.b64encode(version.issued.der).decode("ascii"),
        "attributes": _attributes(world, version),
        "tags": certificate.tags,
    }
    if with_policy:
        body["policy"] = policy_body(vault, certificate)
    return body


def _item(world: World, vault: Vault, certificate: VaultCertificate, version: CertificateVersion, versioned: bool) -> dict[str, Any]:
    return {
        "id": f"{vault.uri}certificates/{certificate.name}" + (f"/{version.version}" if versioned else ""),
        "x5t": _x5t(version),
        "attributes": _attributes(world, version),
        "tags": certificate.tags,
        "subject": "",
    }


def list_certificates(world: World, request: Request) -> Response:
    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "list")
    items = [_item(world, vault, c, c.latest(), False) for c in vault.certificates.values() if any(v.enabled for v in c.versions)]
    return ok({"value": items, "nextLink": None})


def list_versions(world: World, request: Request) -> Response:
    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "list")
    certificate = vault.certificate(request.params["name"])
    return ok({"value": [_item(world, vault, certificate, v, True) for v in certificate.versions], "nextLink": None})


def get_policy(world: World, request: Request) -> Response:
    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "get")
    return ok(policy_body(vault, vault.certificate(request.params["name"])))


def get_certificate(world: World, request: Request) -> Response:
    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "certificates", "get")
    certificate = vault.certificate(request.params["name"])
    version_id = request.params.get("version")
    version = certificate.version(version_id) if version_id else certificate.latest()
    return ok(_bundle(world, vault, certificate, version, with_policy=not version_id))


def list_secrets(world: World, request: Request) -> Response:
    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "secrets", "list")
    items = [
        {"id": f"{vault.uri}secrets/{c.name}", "attributes": _attributes(world, c.latest()), "contentType": c.content_type, "managed": True}
        for c in vault.certificates.values()
    ]
    return ok({"value": items, "nextLink": None})


def get_secret(world: World, request: Request) -> Response:
    vault = _vault(world, request)
    world.keyvault.demand(request.caller, vault, "secrets", "get")
    certificate = vault.certificate(request.params["name"])
    version_id = request.params.get("version")
    version = certificate.version(version_id) if version_id else certificate.latest()
    return ok(
        {
            "value": world.keyvault.secret_value(certificate, version),
            "contentType": certificate.content_type,
            "id": f"{vault.uri}secrets/{certificate.name}/{version.version}",
            "managed": True,
            "attributes": _attributes(world, version),
            "kid": f"{vault.uri}keys/{certificate.name}/{version.version}",
            "tags": certificate.tags,
        }
    )
