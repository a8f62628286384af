"""Microsoft.ServiceFabric/clusters over HTTP (api 2021-06-01 shapes).

PUT and PATCH answer 202 with ``Location`` to ``operationResults``, whose final answer is 200 with the
cluster (azure-mgmt-core's ARMPolling: otherwise ``.result()`` is None). A PATCH replaces each top-level
property it names; an explicit ``null`` removes it (the twin's choice where SFRP's behaviour is unconfirmed).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ...operations import Operation
from ...resources import list_tracked, location_of, tags_of, tracked_id
from ...wire import OBJECT, MapOf, Request, Response, Router, TwinError, bad_request, check_shape, ok, require
from .models import Cluster

if TYPE_CHECKING:
    from ...world import World

NS, TYPE = "Microsoft.ServiceFabric", "clusters"
ONE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ServiceFabric/clusters/{name}"
RESULTS = "/subscriptions/{sub}/providers/Microsoft.ServiceFabric/locations/{location}/operationResults/{operation}"
AVAILABLE_VERSIONS = [
    {"codeVersion": "9.1.1436.9590", "supportExpiryUtc": "2026-12-31T23:59:59", "environment": "Windows"},
    {"codeVersion": "10.1.2493.9590", "supportExpiryUtc": "9999-12-31T23:59:59.9999999", "environment": "Windows"},
]


# The JSON types of a cluster body (cluster.json 2021-06-01 ClusterProperties / ClusterPropertiesUpdateParameters).
_THUMBPRINT_CERT = {"thumbprint": str, "thumbprintSecondary": str, "x509StoreName": str}
_COMMON_NAMES = {"commonNames": [{"certificateCommonName": str, "certificateIssuerThumbprint": str}], "x509StoreName": str}
_PORTS = {"startPort": int, "endPort": int}
CLUSTER_SHAPE = {
    "location": str, "tags": MapOf(str),
    "properties": {
        "managementEndpoint": str, "clusterCodeVersion": str, "upgradeMode": str, "reliabilityLevel": str, "vmImage": str,
        "certificate": _THUMBPRINT_CERT, "certificateCommonNames": _COMMON_NAMES,
        "reverseProxyCertificate": _THUMBPRINT_CERT, "reverseProxyCertificateCommonNames": _COMMON_NAMES,
        "clientCertificateThumbprints": [{"isAdmin": bool, "certificateThumbprint": str}],
        "clientCertificateCommonNames": [{"isAdmin": bool, "certificateCommonName": str, "certificateIssuerThumbprint": str}],
        "fabricSettings": [{"name": str, "parameters": [{"name": str, "value": str}]}],
        "addOnFeatures": [str], "eventStoreServiceEnabled": bool, "infrastructureServiceManager": bool,
        "upgradeDescription": OBJECT, "diagnosticsStorageAccountConfig": OBJECT, "azureActiveDirectory": OBJECT,
        "nodeTypes": [{
            "name": str, "clientConnectionEndpointPort": int, "httpGatewayEndpointPort": int, "reverseProxyEndpointPort": int,
            "isPrimary": bool, "vmInstanceCount": int, "durabilityLevel": str, "isStateless": bool, "multipleAvailabilityZones": bool,
            "applicationPorts": _PORTS, "ephemeralPorts": _PORTS, "placementProperties": MapOf(str), "capacities": MapOf(str),
        }],
    },
}


def register(router: Router) -> None:
    router.add("GET", ONE, get_cluster)
    router.add("PUT", ONE, put_cluster)
    router.add("PATCH", ONE, patch_cluster)
    router.add("DELETE", ONE, delete_cluster)
    router.add("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ServiceFabric/clusters", list_clusters)
    router.add("GET", "/subscriptions/{sub}/providers/Microsoft.ServiceFabric/clusters", list_clusters)
    router.add("GET", RESULTS, get_operation_result, mutating=False)


def render(world: World, cluster: Cluster) -> dict[str, Any]:
    body = copy.deepcopy(cluster.body)
    body.update(
        {
            "id": cluster.rid.id.replace("/resourceGroups/", "/resourcegroups/"),
            "name": cluster.rid.name,
            "type": "Microsoft.ServiceFabric/clusters",
            "location": cluster.location,
            "etag": f'W/"{len(cluster.operations)}"',
        }
    )
    body.setdefault("tags", {})
    properties = body.setdefault("properties", {})
    properties["provisioningState"] = cluster.provisioning_state
    properties["clusterState"] = cluster.cluster_state
    properties["clusterId"] = cluster.cluster_id
    properties["clusterEndpoint"] = cluster.endpoint
    properties.setdefault("clusterCodeVersion", cluster.code_version)
    properties["availableClusterVersions"] = AVAILABLE_VERSIONS
    return body


def _cluster(world: World, request: Request, action: str) -> Cluster:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, action, rid.id)
    return world.servicefabric.get(rid.id)


def get_cluster(world: World, request: Request) -> Response:
    return ok(render(world, _cluster(world, request, "Microsoft.ServiceFabric/clusters/read")))


def _operation_headers(world: World, request: Request, cluster: Cluster, operation: Operation) -> dict[str, str]:
    url = (
        f"{request.base_url}/subscriptions/{cluster.rid.subscription}/providers/Microsoft.ServiceFabric/locations/"
        f"{cluster.location}/operationResults/{operation.id}?api-version={request.api_version or '2021-06-01'}"
    )
    return {"Location": url, **world.operations.retry_headers(operation)}


def put_cluster(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.ServiceFabric/clusters/write", rid.id)
    body = request.json_object()
    check_shape(body, CLUSTER_SHAPE)
    location = location_of(body)
    if not isinstance(require(body, "properties"), dict):
        raise bad_request("The property 'properties' must be an object.", "InvalidRequestFormat")
    require(body, "properties.managementEndpoint")
    if not isinstance(require(body, "properties.nodeTypes"), list):
        raise bad_request("The property 'properties.nodeTypes' must be an array.", "InvalidRequestFormat")
    tags_of(body)
    cluster, operation = world.servicefabric.put(rid, location, body)
    return ok(render(world, cluster), 202, **_operation_headers(world, request, cluster, operation))


def patch_cluster(world: World, request: Request) -> Response:
    cluster = _cluster(world, request, "Microsoft.ServiceFabric/clusters/write")
    patch = request.json_object()
    check_shape(patch, CLUSTER_SHAPE)
    properties_patch = patch.get("properties") or {}
    if not isinstance(properties_patch, dict):
        raise bad_request("The property 'properties' must be an object.", "InvalidRequestFormat")
    operation = world.servicefabric.patch(cluster, properties_patch, tags_of(patch) if "tags" in patch else None)
    return ok(render(world, cluster), 202, **_operation_headers(world, request, cluster, operation))


def delete_cluster(world: World, request: Request) -> Response:
    rid = tracked_id(world, request.params, NS, TYPE)
    world.authorization.demand(request.principal, "Microsoft.ServiceFabric/clusters/delete", rid.id)
    return Response(200) if world.servicefabric.delete(rid) else Response(204)


def list_clusters(world: World, request: Request) -> Response:
    return list_tracked(world, request, "Microsoft.ServiceFabric/clusters/read", world.servicefabric.clusters, lambda c: render(world, c))


def get_operation_result(world: World, request: Request) -> Response:
    world.subscription(request.params["sub"])
    operation = world.operations.get(request.params["operation"])
    if operation is None or not operation.kind.startswith("sf"):
        raise TwinError(404, "OperationNotFound", f"The operation '{request.params['operation']}' was not found.")
    if not operation.done:
        return Response(202, None, {"Location": f"{request.base_url}{request.path}?api-version={request.api_version}", **world.operations.retry_headers(operation)})
    if operation.status == "Failed" and operation.error is not None:
        raise TwinError(400, operation.error["code"], operation.error["message"], details=operation.error.get("details"))
    cluster = world.servicefabric.clusters.get(operation.resource_id.lower())
    if cluster is None:
        return Response(204)
    return ok(render(world, cluster))
