"""Microsoft.KeyVault/vaults management plane: GET, list, PUT, PATCH, DELETE, accessPolicies add/replace/remove."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ...resources import list_tracked, location_of, tags_of, tracked_id
from .models import Vault
from .network import NetworkRules
from ...wire import OBJECT, MapOf, Request, Response, Router, TwinError, bad_request, check_shape, ok, optional, require

if TYPE_CHECKING:
    from ...world import World

NS, TYPE = "Microsoft.KeyVault", "vaults"
ONE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"
_PERMISSIONS = {
    "keys": {"all", "encrypt", "decrypt", "wrapkey", "unwrapkey", "sign", "verify", "get", "list", "create", "update",
             "import", "delete", "backup", "restore", "recover", "purge", "release", "rotate", "getrotationpolicy",
             "setrotationpolicy"},
    "secrets": {"all", "get", "list", "set", "delete", "backup", "restore", "recover", "purge"},
    "certificates": {"all", "get", "list", "delete", "create", "import", "update", "managecontacts", "getissuers",
                     "listissuers", "setissuers", "deleteissuers", "manageissuers", "recover", "purge", "backup", "restore"},
    "storage": {"all", "get", "list", "delete", "set", "update", "regeneratekey", "recover", "purge", "backup",
                "restore", "setsas", "listsas", "getsas", "deletesas"},
}


# The JSON types of what the twin reads from a vault body (keyvault.json 2024-11-01).
_POLICY = {"tenantId": str, "objectId": str, "applicationId": str, "permissions": MapOf([str])}
VAULT_SHAPE = {
    "location": str, "tags": MapOf(str),
    "properties": {
        "tenantId": str, "sku": {"family": str, "name": str}, "accessPolicies": [_POLICY], "vaultUri": str,
        "enabledForDeployment": bool, "enabledForDiskEncryption": bool, "enabledForTemplateDeployment": bool,
        "enableSoftDelete": bool, "softDeleteRetentionInDays": int, "enableRbacAuthorization": bool,
        "createMode": str, "enablePurgeProtection": bool, "networkAcls": OBJECT, "publicNetworkAccess": str,
    },
}
ACCESS_POLICY_SHAPE = {"properties": {"accessPolicies": [_POLICY]}}
# PATCH: wire name -> Vault attribute of the flags a patch may set.
_PATCHABLE_FLAGS = {
    "enableRbacAuthorization": "enable_rbac",
    "enabledForDeployment": "enabled_for_deployment",
    "enabledForTemplateDeployment": "enabled_for_template_deployment",
    "enabledForDiskEncryption": "enabled_for_disk_encryption",
}


def register(router: Router) -> None:
    router.add("GET", ONE, get_vault)
    router.add("PUT", ONE, put_vault)
    router.add("PATCH", ONE, patch_vault)
    router.add("DELETE", ONE, delete_vault)
    router.add("PUT", ONE + "/accessPolicies/{kind}", update_access_policy)
    router.add("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults", list_vaults)
    router.add("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults", list_vaults)
    router.add("GET", "/subscriptions/{sub}/resources", list_generic_resources)


def _vault(world: World, request: Request, action: str) -> Vault:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, action, rid.id)
    return world.keyvault.get(rid.id)


def get_vault(world: World, request: Request) -> Response:
    return ok(world.keyvault.body(_vault(world, request, "Microsoft.KeyVault/vaults/read")))


def _policies(value: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise bad_request(f"The property '{path}' must be an array.", "InvalidRequestFormat")
    out = []
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(entry, dict):
            raise bad_request(f"The property '{where}' must be an object.", "InvalidRequestFormat")
        tenant = require(entry, "tenantId")
        object_id = require(entry, "objectId")
        permissions = require(entry, "permissions")
        if not isinstance(tenant, str) or not isinstance(object_id, str) or not isinstance(permissions, dict):
            raise bad_request(f"The property '{where}' has an invalid type.", "InvalidRequestFormat")
        clean: dict[str, list[str]] = {}
        for kind, granted in permissions.items():
            if kind not in _PERMISSIONS:
                raise bad_request(f"Unknown permission kind '{where}.permissions.{kind}'.", "BadRequest")
            if not isinstance(granted, list) or not all(isinstance(g, str) for g in granted):
                raise bad_request(f"The property '{where}.permissions.{kind}' must be an array of strings.", "InvalidRequestFormat")
            bad = [g for g in granted if g.lower() not in _PERMISSIONS[kind]]
            if bad:
                raise bad_request(f"Invalid value(s) {bad} in '{where}.permissions.{kind}'.", "BadRequest")
            clean[kind] = list(granted)
        policy = {"tenantId": tenant, "objectId": object_id, "permissions": clean}
        if entry.get("applicationId"):
            policy["applicationId"] = entry["applicationId"]
        out.append(policy)
    return out


_ENUMS = {"publicNetworkAccess": ("Enabled", "Disabled"), "defaultAction": ("Allow", "Deny"), "bypass": ("AzureServices", "None")}


def _enum(value: Any, path: str, name: str) -> str:
    for allowed in _ENUMS[name]:
        if isinstance(value, str) and value.lower() == allowed.lower():
            return allowed
    raise bad_request(f"The value '{value}' of '{path}' is not one of {', '.join(_ENUMS[name])}.", "BadRequest")


def _rule_values(value: Any, path: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, dict) and isinstance(v.get(key), str) for v in value):
        raise bad_request(f"The property '{path}' must be an array of objects with a string '{key}'.", "InvalidRequestFormat")
    return [str(v[key]) for v in value]


def _network(properties: dict[str, Any], current: NetworkRules) -> NetworkRules:
    """``publicNetworkAccess`` and ``networkAcls`` over ``current`` (a PUT passes defaults, a PATCH the vault's rules)."""
    rules = NetworkRules(current.public_network_access, current.default_action, current.bypass,
                         list(current.ip_rules), list(current.virtual_network_rules))
    if properties.get("publicNetworkAccess") is not None:
        rules.public_network_access = _enum(properties["publicNetworkAccess"], "properties.publicNetworkAccess", "publicNetworkAccess")
    acls = properties.get("networkAcls")
    if acls is None:
        return rules
    if acls.get("defaultAction") is not None:
        rules.default_action = _enum(acls["defaultAction"], "properties.networkAcls.defaultAction", "defaultAction")
    if acls.get("bypass") is not None:
        rules.bypass = _enum(acls["bypass"], "properties.networkAcls.bypass", "bypass")
    if acls.get("ipRules") is not None:
        rules.ip_rules = _rule_values(acls["ipRules"], "properties.networkAcls.ipRules", "value")
    if acls.get("virtualNetworkRules") is not None:
        rules.virtual_network_rules = _rule_values(acls["virtualNetworkRules"], "properties.networkAcls.virtualNetworkRules", "id")
    return rules


def put_vault(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.KeyVault/vaults/write", rid.id)
    body = request.json_object()
    check_shape(body, VAULT_SHAPE)
    location = location_of(body)
    properties = require(body, "properties")
    tenant = require(body, "properties.tenantId")
    require(body, "properties.sku.name")
    if tenant != world.identity.tenant_id:
        raise TwinError(400, "BadRequest", f"The tenant '{tenant}' is not the tenant of the subscription.")
    settings = {
        "access_policies": _policies(properties.get("accessPolicies") or [], "properties.accessPolicies"),
        "enable_rbac": bool(optional(body, "properties.enableRbacAuthorization", bool, False)),
        "enabled_for_deployment": bool(optional(body, "properties.enabledForDeployment", bool, False)),
        "enabled_for_template_deployment": bool(optional(body, "properties.enabledForTemplateDeployment", bool, False)),
        "enabled_for_disk_encryption": bool(optional(body, "properties.enabledForDiskEncryption", bool, False)),
        "sku": str(body["properties"]["sku"]["name"]),
        "tags": tags_of(body),
        "network": _network(properties, NetworkRules()),
    }
    return ok(world.keyvault.body(world.keyvault.put(rid, location, settings)), 200)


def patch_vault(world: World, request: Request) -> Response:
    vault = _vault(world, request, "Microsoft.KeyVault/vaults/write")
    body = request.json_object()
    check_shape(body, VAULT_SHAPE)
    settings: dict[str, Any] = {}
    for wire_name, attribute in _PATCHABLE_FLAGS.items():
        value = optional(body, f"properties.{wire_name}", bool)
        if value is not None:
            settings[attribute] = value
    if (body.get("properties") or {}).get("accessPolicies") is not None:
        settings["access_policies"] = _policies(body["properties"]["accessPolicies"], "properties.accessPolicies")
    if "tags" in body:
        settings["tags"] = tags_of(body)
    settings["network"] = _network(body.get("properties") or {}, vault.network)
    vault.update(settings)
    return ok(world.keyvault.body(vault))


def delete_vault(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.KeyVault/vaults/delete", rid.id)
    return Response(200) if world.keyvault.delete(rid) else Response(204)


def update_access_policy(world: World, request: Request) -> Response:
    kind = request.params["kind"].lower()
    if kind not in {"add", "replace", "remove"}:
        raise bad_request(f"The access policy operation '{request.params['kind']}' is not one of add, replace, remove.", "BadRequest")
    vault = _vault(world, request, "Microsoft.KeyVault/vaults/accessPolicies/write")
    body = request.json_object()
    check_shape(body, ACCESS_POLICY_SHAPE)
    changes = _policies(require(body, "properties.accessPolicies"), "properties.accessPolicies")
    vault.change_access_policies(kind, changes)
    return ok(
        {
            "id": f"{vault.rid.id}/accessPolicies/{kind}",
            "type": "Microsoft.KeyVault/vaults/accessPolicies",
            "location": vault.location,
            "properties": {"accessPolicies": vault.access_policies},
        }
    )


def list_vaults(world: World, request: Request) -> Response:
    return list_tracked(world, request, "Microsoft.KeyVault/vaults/read", world.keyvault.vaults, world.keyvault.body)


_TYPE_FILTER = re.compile(r"resourceType\s+eq\s+'([^']+)'", re.IGNORECASE)


def list_generic_resources(world: World, request: Request) -> Response:
    """``GET /subscriptions/{s}/resources?$filter=resourceType eq '...'`` (what ``vaults.list()`` calls)."""
    sub = world.subscription(request.params["sub"]).id
    wanted = _TYPE_FILTER.search(request.query.get("$filter", ""))
    if not wanted or wanted.group(1).lower() != "microsoft.keyvault/vaults":
        raise TwinError(501, "TwinRouteNotImplemented", "The twin lists generic resources only for resourceType eq 'Microsoft.KeyVault/vaults'.")
    prefix = f"/subscriptions/{sub}/".lower()
    return ok(
        {
            "value": [
                {"id": v.rid.id, "name": v.name, "type": "Microsoft.KeyVault/vaults", "location": v.location, "tags": v.tags}
                for k, v in world.keyvault.vaults.items()
                if k.startswith(prefix)
            ]
        }
    )
