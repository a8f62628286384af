"""What CRP refuses when a scale set model is written (400/403 before anything changes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...resources import ResourceId
from ...wire import TwinError, bad_request
from .guest import KV_TYPES

if TYPE_CHECKING:
    from ..identity.models import Principal
    from .models import ScaleSet
    from ...world import World


def _invalid(message: str, target: str | None = None) -> TwinError:
    error = bad_request(message, "InvalidParameter")
    if target:
        error.details = [{"code": "InvalidParameter", "target": target, "message": message}]
    return error


def validate_scale_set(world: World, principal: Principal | None, body: dict[str, Any], existing: ScaleSet | None, *, full: bool) -> None:
    if existing is None:
        if not isinstance(body.get("location"), str) or not body.get("location"):
            raise TwinError(400, "LocationRequired", "The location property is required for this definition.")
        if not isinstance(body.get("sku"), dict):
            raise bad_request("The required property 'sku' is missing.", "MissingRequiredProperty")
    properties = body.get("properties")
    if properties is None and full and existing is None:
        raise bad_request("The required property 'properties' is missing.", "MissingRequiredProperty")
    if properties is not None and not isinstance(properties, dict):
        raise bad_request("The property 'properties' must be an object.", "InvalidRequestFormat")
    sku = body.get("sku")
    if isinstance(sku, dict) and "capacity" in sku and (not isinstance(sku["capacity"], int) or isinstance(sku["capacity"], bool) or sku["capacity"] < 0):
        raise _invalid("The value of parameter sku.capacity is invalid.", "sku.capacity")
    profile = (properties or {}).get("virtualMachineProfile") or {}
    if not isinstance(profile, dict):
        raise bad_request("The property 'properties.virtualMachineProfile' must be an object.", "InvalidRequestFormat")
    _validate_secrets(world, profile)
    _validate_identity(world, principal, body, existing)
    _validate_extensions(profile)


def _validate_secrets(world: World, profile: dict[str, Any]) -> None:
    secrets = (profile.get("osProfile") or {}).get("secrets")
    if secrets is None:
        return
    if not isinstance(secrets, list):
        raise bad_request("The property 'osProfile.secrets' must be an array.", "InvalidRequestFormat")
    seen: set[str] = set()
    for index, group in enumerate(secrets):
        if not isinstance(group, dict):
            raise bad_request(f"The property 'osProfile.secrets[{index}]' must be an object.", "InvalidRequestFormat")
        vault_id = (group.get("sourceVault") or {}).get("id")
        if not isinstance(vault_id, str):
            raise _invalid("Required parameter 'sourceVault.id' is missing (null).", f"secrets[{index}].sourceVault.id")
        if vault_id.lower() in seen:
            # https://github.com/Azure/azure-powershell/issues/9979
            raise _invalid(f"List secrets contains repeated instances of {vault_id}, which is disallowed.", "secrets")
        seen.add(vault_id.lower())
        ResourceId.parse(vault_id)
        vault = world.keyvault.vaults.get(vault_id.lower())
        if vault is None:
            raise TwinError(404, "ResourceNotFound", f"The Key Vault '{vault_id}' was not found.")
        if not vault.enabled_for_deployment:
            raise TwinError(
                400, "KeyVaultAccessForbidden",
                f"Key Vault {vault_id} either has not been enabled for deployment or the vault id provided, {vault_id}, "
                "does not match the Key Vault's true resource id.",
            )
        for position, entry in enumerate(group.get("vaultCertificates") or []):
            url = entry.get("certificateUrl") if isinstance(entry, dict) else None
            if not isinstance(url, str):
                raise _invalid("Required parameter 'certificateUrl' is missing (null).", f"secrets[{index}].vaultCertificates[{position}]")
            try:
                found_vault, _, _ = world.keyvault.resolve_secret_url(url, versioned=True)
            except TwinError as exc:
                # VMSS secrets take versioned URLs only (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-faq: "Why do I have to specify the version").
                raise _invalid(f"{url} is not a valid versioned Key Vault Secret URL. {exc.message}", "certificateUrl") from exc
            if found_vault is not vault:
                raise _invalid(f"The secret {url} is not in sourceVault {vault_id}.", "certificateUrl")


def _validate_identity(world: World, principal: Principal | None, body: dict[str, Any], existing: ScaleSet | None) -> None:
    identity = body.get("identity")
    if identity is None:
        return
    if not isinstance(identity, dict):
        raise bad_request("The property 'identity' must be an object.", "InvalidRequestFormat")
    kind = str(identity.get("type") or "None")
    allowed = {"none", "systemassigned", "userassigned", "systemassigned, userassigned", "systemassigned,userassigned"}
    if kind.lower() not in allowed:
        raise _invalid(f"The identity type '{kind}' is not valid.", "identity.type")
    assigned = identity.get("userAssignedIdentities") or {}
    if "userassigned" in kind.lower() and not assigned:
        raise _invalid("The identity type 'UserAssigned' requires userAssignedIdentities.", "identity")
    before = {i.lower() for i in (existing.user_assigned_identities() if existing else [])}
    for identity_id in assigned:
        ResourceId.parse(identity_id)
        if world.msi.find(identity_id) is None:
            raise TwinError(
                400, "FailedIdentityOperation",
                f"Identity operation for resource failed with error 'Failed to perform resource identity operation. "
                f"Status: 'NotFound'. Response: The user assigned identity '{identity_id}' was not found.'",
            )
        if identity_id.lower() not in before and principal is not None and not world.authorization.allowed(
            principal.object_id, "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", identity_id
        ):
            raise TwinError(
                403, "LinkedAuthorizationFailed",
                f"The client '{principal.object_id}' has permission to perform action on the scale set but does not "
                f"have permission to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' "
                f"on the linked scope '{identity_id}' (the Managed Identity Operator role grants it).",
            )


def _validate_extensions(profile: dict[str, Any]) -> None:
    extensions = (profile.get("extensionProfile") or {}).get("extensions")
    if extensions is None:
        return
    if not isinstance(extensions, list):
        raise bad_request("The property 'extensionProfile.extensions' must be an array.", "InvalidRequestFormat")
    names = []
    for index, extension in enumerate(extensions):
        if not isinstance(extension, dict) or not isinstance(extension.get("name"), str):
            raise _invalid("Every extension needs a 'name'.", f"extensions[{index}]")
        if extension["name"] in names:
            raise _invalid(f"Extension name '{extension['name']}' is used more than once.", "extensions")
        names.append(extension["name"])
        properties = extension.get("properties")
        if not isinstance(properties, dict) or not properties.get("publisher") or not properties.get("type"):
            raise _invalid(f"Extension '{extension['name']}' needs properties.publisher and properties.type.", f"extensions[{index}]")
        if properties.get("type") in KV_TYPES and str(properties.get("typeHandlerVersion") or "").split(".")[0] not in {"1", "2", "3", "4"}:
            raise _invalid(f"The handler version '{properties.get('typeHandlerVersion')}' of extension '{extension['name']}' was not found.", "typeHandlerVersion")
    for extension in extensions:
        for dependency in (extension.get("properties") or {}).get("provisionAfterExtensions") or []:
            if dependency not in names:
                # https://learn.microsoft.com/azure/virtual-machines/extensions/key-vault-windows: CRP rejects a dangling provisionAfterExtensions name.
                raise _invalid(
                    f"Extension '{extension['name']}' specifies '{dependency}' in its provisionAfterExtensions property, "
                    f"but the extension '{dependency}' will no longer exist.",
                    "provisionAfterExtensions",
                )
