"""Microsoft.Compute/virtualMachineScaleSets over HTTP, in the shapes compute 39 and the recordings show.

PUT answers 201 (new) or 200 (existing) and PATCH answers 200 (a 202 breaks compute 39's PATCH), each with
``Azure-AsyncOperation``; ``manualupgrade`` answers 202 with ``Azure-AsyncOperation`` and a ``monitor=true``
``Location`` (as azure-mgmt-core's ARMPolling expects).
"""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Any

from ...operations import Operation
from ...resources import list_tracked, location_of, tracked_id
from ...wire import OBJECT, MapOf, Request, Response, Router, TwinError, bad_request, check_shape, ok
from . import run_command as commands
from .models import Instance, ScaleSet

if TYPE_CHECKING:
    from ...world import World

NS, TYPE = "Microsoft.Compute", "virtualMachineScaleSets"
ONE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
OPERATIONS = "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/operations/{operation}"


# The JSON types of what the twin reads from a scale set body (virtualMachineScaleSet.json 2024-07-01).
_EXTENSION = {
    "name": str,
    "properties": {
        "publisher": str, "type": str, "typeHandlerVersion": str, "autoUpgradeMinorVersion": bool,
        "enableAutomaticUpgrade": bool, "forceUpdateTag": str, "settings": OBJECT, "protectedSettings": OBJECT,
        "provisionAfterExtensions": [str], "suppressFailures": bool,
    },
}
_PROFILE = {
    "osProfile": {
        "computerNamePrefix": str, "adminUsername": str, "adminPassword": str, "customData": str,
        "windowsConfiguration": OBJECT, "linuxConfiguration": OBJECT,
        "secrets": [{"sourceVault": {"id": str}, "vaultCertificates": [{"certificateUrl": str, "certificateStore": str}]}],
    },
    "storageProfile": {"imageReference": OBJECT, "osDisk": {"osType": str, "createOption": str, "caching": str, "managedDisk": OBJECT}, "dataDisks": [OBJECT]},
    "networkProfile": {"networkInterfaceConfigurations": [{"name": str, "properties": OBJECT}]},
    "extensionProfile": {"extensions": [_EXTENSION], "extensionsTimeBudget": str},
}
SCALE_SET_SHAPE = {
    "location": str, "tags": MapOf(str), "zones": [str], "plan": OBJECT,
    "sku": {"name": str, "tier": str, "capacity": int},
    "identity": {"type": str, "userAssignedIdentities": MapOf(OBJECT)},
    "properties": {
        "upgradePolicy": {"mode": str, "rollingUpgradePolicy": {"maxBatchInstancePercent": int, "pauseTimeBetweenBatches": str}, "automaticOSUpgradePolicy": OBJECT},
        "overprovision": bool, "singlePlacementGroup": bool, "orchestrationMode": str, "platformFaultDomainCount": int,
        "virtualMachineProfile": _PROFILE, "additionalCapabilities": OBJECT, "scaleInPolicy": OBJECT,
    },
}

def register(router: Router) -> None:
    router.add("GET", ONE, get_scale_set)
    router.add("PUT", ONE, put_scale_set)
    router.add("PATCH", ONE, patch_scale_set)
    router.add("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets", list_scale_sets)
    router.add("GET", "/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachineScaleSets", list_scale_sets)
    router.add("GET", ONE + "/instanceView", get_scale_set_instance_view)
    router.add("GET", ONE + "/virtualMachines", list_instances)
    router.add("GET", ONE + "/virtualMachines/{instance}", get_instance)
    router.add("GET", ONE + "/virtualMachines/{instance}/instanceView", get_instance_view)
    router.add("POST", ONE + "/manualupgrade", manual_upgrade)
    router.add("POST", ONE + "/virtualMachines/{instance}/reimage", reimage_instance)
    router.add("POST", ONE + "/virtualMachines/{instance}/runCommand", run_command)
    router.add("GET", OPERATIONS, get_operation, mutating=False)
    from . import extension_routes

    extension_routes.register(router)


# -- rendering ------------------------------------------------------------------------------------------
def render(world: World, scale_set: ScaleSet, state: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(scale_set.body)
    body["id"] = scale_set.rid.id
    body["name"] = scale_set.rid.name
    body["type"] = "Microsoft.Compute/virtualMachineScaleSets"
    body["location"] = scale_set.location
    body["etag"] = etag(scale_set)
    properties = body.setdefault("properties", {})
    properties.setdefault("orchestrationMode", "Uniform")
    properties.setdefault("upgradePolicy", {"mode": "Manual"})
    properties["provisioningState"] = state or ("Updating" if world.compute.updating(scale_set) else scale_set.provisioning_state)
    properties["uniqueId"] = scale_set.unique_id
    properties["timeCreated"] = scale_set.created
    for extension in ((properties.get("virtualMachineProfile") or {}).get("extensionProfile") or {}).get("extensions") or []:
        without_protected_settings(extension)
    identity = body.get("identity")
    if isinstance(identity, dict):
        for identity_id in list((identity.get("userAssignedIdentities") or {}).keys()):
            found = world.msi.find(identity_id)
            identity["userAssignedIdentities"][identity_id] = (
                {"principalId": found.principal_id, "clientId": found.client_id} if found else {}
            )
    return body


def without_protected_settings(extension: dict[str, Any]) -> dict[str, Any]:
    """A GET never returns ``protectedSettings`` (write-only: docs/twin.md, "Protected settings")."""
    properties = extension.get("properties")
    if isinstance(properties, dict):
        properties.pop("protectedSettings", None)
    return extension


def _status(code: str, display: str, time: str | None = None, message: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"code": code, "level": "Error" if code.endswith("failed") else "Info", "displayStatus": display}
    if message:
        status["message"] = message
    if time:
        status["time"] = time
    return status


def instance_view(world: World, instance: Instance) -> dict[str, Any]:
    display = {"succeeded": "Provisioning succeeded", "transitioning": "Transitioning", "failed": "Provisioning failed"}
    state = {"Succeeded": "succeeded", "Updating": "updating", "Failed": "failed"}[instance.provisioning_state]
    return {
        "platformUpdateDomain": instance.update_domain,
        "platformFaultDomain": int(instance.instance_id) % 3,
        "computerName": f"{instance.scale_set.rid.name[:9]}{int(instance.instance_id):06d}",
        "osName": "ubuntu" if instance.scale_set.os == "linux" else "Windows Server 2022 Datacenter",
        "vmAgent": {
            "vmAgentVersion": "2.7.41491.1095",
            "statuses": [_status("ProvisioningState/succeeded", "Ready", message="GuestAgent is running and processing the extensions.")],
        },
        "extensions": [
            {
                "name": s.name,
                "type": s.type,
                "typeHandlerVersion": s.version,
                "statuses": [_status(s.code, display[s.status], s.time, s.message)],
            }
            for s in instance.extensions.values()
        ],
        "statuses": [
            _status(f"ProvisioningState/{state}", f"Provisioning {state}", world.iso_now()),
            _status("PowerState/running", "VM running"),
        ],
    }


def render_instance(world: World, instance: Instance, expand: bool) -> dict[str, Any]:
    scale_set = instance.scale_set
    vm_id = f"{scale_set.rid.id}/virtualMachines/{instance.instance_id}"
    os_profile = copy.deepcopy(instance.model.get("osProfile") or {})
    os_profile["computerName"] = f"{scale_set.rid.name[:9]}{int(instance.instance_id):06d}"
    properties: dict[str, Any] = {
        "latestModelApplied": instance.latest_model_applied,
        "modelDefinitionApplied": "VirtualMachineScaleSet",
        "vmId": instance.vm_id,
        "provisioningState": instance.provisioning_state,
        "osProfile": os_profile,
        "hardwareProfile": {},
        "storageProfile": copy.deepcopy(instance.model.get("storageProfile") or {}),
        "networkProfile": {},
    }
    if expand:
        properties["instanceView"] = instance_view(world, instance)
    return {
        "name": instance.name,
        "id": vm_id,
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": scale_set.location,
        "instanceId": instance.instance_id,
        "sku": {"name": (scale_set.body.get("sku") or {}).get("name", "Standard_D2s_v3"), "tier": "Standard"},
        "properties": properties,
        "resources": [
            {
                "id": f"{vm_id}/extensions/{e.get('name')}",
                "name": e.get("name"),
                "type": "Microsoft.Compute/virtualMachines/extensions",
                "location": scale_set.location,
                "properties": {**without_protected_settings(copy.deepcopy(e)).get("properties", {}), "provisioningState": "Succeeded"},
            }
            for e in (instance.model.get("extensionProfile") or {}).get("extensions") or []
        ],
    }


def _async_headers(world: World, request: Request, operation: Operation, scale_set: ScaleSet, monitor: bool = False) -> dict[str, str]:
    query = f"p={uuid.uuid4()}&api-version={request.api_version or '2024-07-01'}"
    url = f"{request.base_url}/subscriptions/{scale_set.rid.subscription}/providers/Microsoft.Compute/locations/{scale_set.location}/operations/{operation.id}"
    headers = {"Azure-AsyncOperation": f"{url}?{query}", "azure-asyncnotification": "Enabled"}
    if monitor:
        headers["Location"] = f"{url}?{query.replace('&api-version', '&monitor=true&api-version')}"
    headers.update(world.operations.retry_headers(operation))
    return headers


# -- handlers -------------------------------------------------------------------------------------------
def _scale_set(world: World, request: Request, action: str) -> ScaleSet:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, action, rid.id)
    return world.compute.get(rid.id)


def get_scale_set(world: World, request: Request) -> Response:
    return ok(render(world, _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/read")))


def etag(scale_set: ScaleSet) -> str:
    return f'"{scale_set.unique_id[:8]}-{scale_set.writes}"'


def _check_if_match(request: Request, scale_set: ScaleSet | None) -> None:
    """Optimistic concurrency: a write based on an older GET is refused (412), as CRP does with If-Match."""
    wanted = request.headers.get("if-match")
    if wanted and wanted != "*" and (scale_set is None or wanted != etag(scale_set)):
        raise TwinError(412, "PreconditionFailed", "The ETag in the If-Match header does not match the resource's current ETag; read it again.")


def put_scale_set(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.Compute/virtualMachineScaleSets/write", rid.id)
    body = request.json_object()
    check_shape(body, SCALE_SET_SHAPE)
    location = location_of(body)  # a PUT is the whole resource: location is required (Resource.required)
    existing = world.compute.scale_sets.get(rid.key)
    _check_if_match(request, existing)
    scale_set, operation = world.compute.put(rid, location, body, request.principal)
    if existing is None:
        return ok(render(world, scale_set, "Creating"), 201, **_async_headers(world, request, operation, scale_set))
    return ok(render(world, scale_set, "Updating"), 200, **_async_headers(world, request, operation, scale_set))


def patch_scale_set(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/write")
    patch = request.json_object()
    check_shape(patch, SCALE_SET_SHAPE)
    _check_if_match(request, scale_set)
    location = location_of(patch) if patch.get("location") is not None else None
    operation = world.compute.patch(scale_set, patch, location, request.principal)
    return ok(render(world, scale_set, "Updating"), 200, **_async_headers(world, request, operation, scale_set))


def list_scale_sets(world: World, request: Request) -> Response:
    return list_tracked(world, request, "Microsoft.Compute/virtualMachineScaleSets/read", world.compute.scale_sets, lambda s: render(world, s))


def get_scale_set_instance_view(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/read")
    counts: dict[str, int] = {}
    extensions: dict[str, dict[str, int]] = {}
    for instance in scale_set.instances:
        state = {"Succeeded": "succeeded", "Updating": "updating", "Failed": "failed"}[instance.provisioning_state]
        counts[f"ProvisioningState/{state}"] = counts.get(f"ProvisioningState/{state}", 0) + 1
        for name, ext in instance.extensions.items():
            extensions.setdefault(name, {})
            extensions[name][ext.code] = extensions[name].get(ext.code, 0) + 1
    state = "updating" if world.compute.updating(scale_set) else "succeeded"
    return ok(
        {
            "virtualMachine": {"statusesSummary": [{"code": c, "count": n} for c, n in sorted(counts.items())]},
            "extensions": [
                {"name": name, "statusesSummary": [{"code": c, "count": n} for c, n in sorted(codes.items())]}
                for name, codes in extensions.items()
            ],
            "statuses": [_status(f"ProvisioningState/{state}", f"Provisioning {state}", world.iso_now())],
            "orchestrationServices": [],
        }
    )


def list_instances(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read")
    expand = "instanceview" in request.query.get("$expand", "").lower()
    select = request.query.get("$select", "")
    if select:
        return ok({"value": [selected(world, i, select) for i in scale_set.instances]})
    return ok({"value": [render_instance(world, i, expand) for i in scale_set.instances]})


SELECTABLE = ("instanceView", "instanceView/statuses")  # VirtualMachineScaleSetVMs_List `$select` (compute spec)


def selected(world: World, instance: Instance, select: str) -> dict[str, Any]:
    """A list entry under ``$select``: only the selected part of the instance view, no model and no ``resources``
    (the instances' extension children). az's ``vmss get-instance-view --instance-id '*'`` sends
    ``$select=instanceView&$expand=instanceView`` and reads ``properties.instanceView`` of each entry; every other
    property of a selected entry is null (Azure/azure-cli#4296), so az's client flattening never meets an
    extension's ``type`` next to ``properties.type`` there."""
    wanted = select.strip()
    if wanted.lower() not in (s.lower() for s in SELECTABLE):
        raise bad_request(f"The value '{select}' of parameter '$select' is not valid. Allowed values are 'instanceView', "
                          "'instanceView/statuses'.", "InvalidParameter")
    view = instance_view(world, instance)
    if wanted.lower() == "instanceview/statuses":
        view = {"statuses": view["statuses"]}
    return {"properties": {"instanceView": view}}


def get_instance(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read")
    expand = "instanceview" in request.query.get("$expand", "").lower()
    return ok(render_instance(world, scale_set.instance(request.params["instance"]), expand))


def get_instance_view(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read")
    return ok(instance_view(world, scale_set.instance(request.params["instance"])))


def manual_upgrade(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action")
    body = request.json_object()
    ids = body.get("instanceIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise bad_request("The property 'instanceIds' must be a non-empty array of instance ids.", "InvalidParameter")
    if len(set(ids)) != len(ids):
        raise bad_request("The property 'instanceIds' contains duplicates.", "InvalidParameter")
    operation = world.compute.manual_upgrade(scale_set, ids)
    return Response(202, None, _async_headers(world, request, operation, scale_set, monitor=True))


def reimage_instance(world: World, request: Request) -> Response:
    """POST …/virtualMachines/{id}/reimage (body optional): 202 + ``Azure-AsyncOperation`` + ``Location``."""
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/reimage/action")
    if request.body:
        check_shape(request.json_object(), {"tempDisk": bool, "exactVersion": str, "osProfile": OBJECT, "forceUpdateOSDiskForEphemeral": bool})
    operation = world.compute.reimage(scale_set, scale_set.instance(request.params["instance"]))
    return Response(202, None, _async_headers(world, request, operation, scale_set, monitor=True))


def run_command(world: World, request: Request) -> Response:
    """POST …/virtualMachines/{id}/runCommand (RunCommandInput): 202 + ``Azure-AsyncOperation`` + ``Location``; the
    RunCommandResult comes from the ``Location`` (final-state-via location). Rules: compute/run_command.py."""
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action")
    body = request.json_object()
    check_shape(body, {"commandId": str, "script": [str], "parameters": [{"name": str, "value": str}]})
    if not body.get("commandId"):
        raise bad_request("The property 'commandId' is required.", "InvalidParameter")
    instance = scale_set.instance(request.params["instance"])
    result = commands.invoke(world, instance, str(body["commandId"]), list(body.get("script") or []))
    operation = world.operations.start("vmss-runcommand", f"{scale_set.rid.id}/virtualMachines/{instance.instance_id}", commands.RUN_SECONDS)
    operation.result = lambda: result
    world.after(commands.RUN_SECONDS, f"run command on {instance.name}", lambda: world.operations.finish(operation))
    return Response(202, None, _async_headers(world, request, operation, scale_set, monitor=True))


def get_operation(world: World, request: Request) -> Response:
    world.subscription(request.params["sub"])
    operation = world.operations.get(request.params["operation"])
    if operation is None or not operation.kind.startswith("vmss"):
        raise TwinError(404, "NotFound", f"The operation '{request.params['operation']}' was not found.")
    if request.query.get("monitor") == "true":
        if not operation.done:
            return Response(202, None, world.operations.retry_headers(operation))
        return ok(operation.result()) if operation.result else Response(200, None)
    headers = world.operations.retry_headers(operation) if not operation.done else {}
    body = operation.status_body()
    if operation.done and operation.result:  # a run command's status carries its output (properties.output)
        body["properties"] = {"output": operation.result()}
    return ok(body, 200, **headers)
