"""A scale set's extensions as child resources (``.../virtualMachineScaleSets/{vmss}/extensions/{name}``,
VirtualMachineScaleSetExtensions_* in virtualMachineScaleSet.json 2024-07-01).

PUT replaces the extension whole and answers 201 (new) or 200, PATCH merges into it and answers 200, each
with ``Azure-AsyncOperation``; DELETE answers 202 with ``Azure-AsyncOperation`` and ``Location`` (204 when there is
no such extension, https://learn.microsoft.com/en-us/rest/api/compute/virtual-machine-scale-set-extensions/delete); either changes the scale set's model, which rolls out as the upgrade policy
says (Manual: instances wait for ``manualupgrade``). A GET never shows ``protectedSettings``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ...wire import Request, Response, Router, check_shape, ok
from .routes import _EXTENSION, ONE, _async_headers, _scale_set, without_protected_settings

if TYPE_CHECKING:
    from ...world import World
    from .models import ScaleSet

CHILD = ONE + "/extensions/{extension}"
_READ_ONLY = ("provisioningState",)


def register(router: Router) -> None:
    router.add("GET", ONE + "/extensions", list_extensions)
    router.add("GET", CHILD, get_extension)
    router.add("PUT", CHILD, put_extension)
    router.add("PATCH", CHILD, patch_extension)
    router.add("DELETE", CHILD, delete_extension)


def render_extension(world: World, scale_set: ScaleSet, extension: dict[str, Any], state: str | None = None) -> dict[str, Any]:
    body = without_protected_settings(copy.deepcopy(extension))
    properties = body.setdefault("properties", {})
    properties["provisioningState"] = state or ("Updating" if world.compute.updating(scale_set) else "Succeeded")
    return {
        "id": f"{scale_set.rid.id}/extensions/{extension.get('name')}",
        "name": extension.get("name"),
        "type": "Microsoft.Compute/virtualMachineScaleSets/extensions",
        "properties": properties,
    }


def _properties(request: Request) -> dict[str, Any]:
    body = request.json_object()
    check_shape(body, _EXTENSION)
    properties = body.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    return {k: v for k, v in properties.items() if k not in _READ_ONLY}


def list_extensions(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/extensions/read")
    listed = (scale_set.profile.get("extensionProfile") or {}).get("extensions") or []
    return ok({"value": [render_extension(world, scale_set, e) for e in listed]})


def get_extension(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/extensions/read")
    return ok(render_extension(world, scale_set, scale_set.existing_extension(request.params["extension"])))


def put_extension(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/extensions/write")
    name = request.params["extension"]
    created, operation = world.compute.put_extension(scale_set, name, _properties(request), request.principal)
    body = render_extension(world, scale_set, scale_set.existing_extension(name), "Creating" if created else "Updating")
    return ok(body, 201 if created else 200, **_async_headers(world, request, operation, scale_set))


def patch_extension(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/extensions/write")
    name = request.params["extension"]
    operation = world.compute.patch_extension(scale_set, name, _properties(request), request.principal)
    body = render_extension(world, scale_set, scale_set.existing_extension(name), "Updating")
    return ok(body, 200, **_async_headers(world, request, operation, scale_set))


def delete_extension(world: World, request: Request) -> Response:
    scale_set = _scale_set(world, request, "Microsoft.Compute/virtualMachineScaleSets/extensions/delete")
    operation = world.compute.delete_extension(scale_set, request.params["extension"], request.principal)
    if operation is None:
        return ok(None, 204)
    return ok(None, 202, **_async_headers(world, request, operation, scale_set, monitor=True))
