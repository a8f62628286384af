"""Microsoft.Network, read-only: GET a subnet (with its service endpoints) and GET a private endpoint (with its subnet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...resources import check_name, tracked_id
from ...wire import Request, Response, Router, ok

if TYPE_CHECKING:
    from ...world import World

NS = "Microsoft.Network"
GROUP = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network"


def register(router: Router) -> None:
    router.add("GET", GROUP + "/virtualNetworks/{name}/subnets/{subnet}", get_subnet)
    router.add("GET", GROUP + "/privateEndpoints/{name}", get_private_endpoint)


def get_subnet(world: World, request: Request) -> Response:
    vnet = tracked_id(world, request.params, NS, "virtualNetworks")
    world.authorization.demand(request.principal, "Microsoft.Network/virtualNetworks/subnets/read", vnet.id)
    subnet_id = f"{vnet.id}/subnets/{check_name(request.params['subnet'], 'subnet')}"
    return ok(world.network.subnet(subnet_id).body())


def get_private_endpoint(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, "privateEndpoints")
    world.authorization.demand(request.principal, "Microsoft.Network/privateEndpoints/read", rid.id)
    return ok(world.network.private_endpoint(rid.id).body())
