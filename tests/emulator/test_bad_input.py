"""Bad input gets a 400 ARM error with a code and a message, on every write route; never a 500.

Malformed JSON, non-object bodies, missing required fields, wrong JSON types and malformed resource ids
(in the path and in bodies). Unknown routes get the loud ``501 TwinRouteNotImplemented``. A small
hypothesis test throws random JSON at the PUT/PATCH routes; afterwards the twin still serves normally.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinkit import requests_json
from wirekit import API, Wire, assert_arm_error

ROLE = "/providers/Microsoft.Authorization/roleAssignments/6f1d1b8a-1d5e-4a57-9e0c-7c0a6f9f3b11"
READER = "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _routes(wire: Wire) -> dict[str, tuple[str, str, str]]:
    rg, sub = wire.rg, wire.sub
    return {
        "cluster put": ("PUT", f"{rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster", API["servicefabric"]),
        "cluster create": ("PUT", f"{rg}/providers/Microsoft.ServiceFabric/clusters/fresh", API["servicefabric"]),
        "cluster patch": ("PATCH", f"{rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster", API["servicefabric"]),
        "vmss put": ("PUT", f"{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0", API["compute"]),
        "vmss create": ("PUT", f"{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/fresh", API["compute"]),
        "vmss patch": ("PATCH", f"{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0", API["compute"]),
        "manual upgrade": ("POST", f"{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0/manualupgrade", API["compute"]),
        "vault put": ("PUT", f"{rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic", API["keyvault"]),
        "vault patch": ("PATCH", f"{rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic", API["keyvault"]),
        "access policy": ("PUT", f"{rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic/accessPolicies/add", API["keyvault"]),
        "identity put": ("PUT", f"{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fresh", API["msi"]),
        "identity patch": ("PATCH", f"{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fresh", API["msi"]),
        "role assignment": ("PUT", f"/subscriptions/{sub}{ROLE}", "2022-04-01"),
    }


MALFORMED = [b"{not json", b"", b"[1, 2]", b"null", b"42", b'"text"', b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000]


@pytest.fixture
def wire(twin) -> Wire:
    wire = Wire(twin)
    wire.request("PUT", _routes(wire)["identity put"][1], {"location": "westeurope"}, api=API["msi"])  # for its PATCH
    return wire


def _assert_400(wire: Wire, route: str, raw: bytes, code: str | None = None) -> dict[str, Any]:
    method, path, api = _routes(wire)[route]
    error = assert_arm_error(wire.request(method, path, raw=raw, api=api), 400)
    if code:
        assert error["code"] == code, (route, raw[:80], error)
    return error


@pytest.mark.parametrize("raw", MALFORMED, ids=["broken", "empty", "array", "null", "number", "string", "not-utf8", "deep"])
def test_malformed_bodies_are_400_on_every_write_route(wire: Wire, raw: bytes) -> None:
    for route in _routes(wire):
        _assert_400(wire, route, raw)


REQUIRED = {
    "cluster create": [({}, "LocationRequired"), ({"location": "westeurope"}, "MissingRequiredProperty"),
                       ({"location": "westeurope", "properties": {"nodeTypes": []}}, "MissingRequiredProperty")],
    "vmss create": [({"sku": {"capacity": 1}, "properties": {"virtualMachineProfile": {}}}, "LocationRequired"),
                    ({"location": "westeurope", "properties": {"virtualMachineProfile": {}}}, "MissingRequiredProperty")],
    "vmss put": [({"location": "westeurope", "sku": {"capacity": 3}}, "InvalidParameter")],
    "manual upgrade": [({}, "InvalidParameter"), ({"instanceIds": []}, "InvalidParameter")],
    "vault put": [({"location": "westeurope", "properties": {"sku": {"name": "standard"}}}, "MissingRequiredProperty"),
                  ({"location": "westeurope", "properties": {"tenantId": "x"}}, "MissingRequiredProperty")],
    "access policy": [({}, "MissingRequiredProperty"), ({"properties": {"accessPolicies": [{"tenantId": "t"}]}}, "MissingRequiredProperty")],
    "identity put": [({}, "LocationRequired")],
    "role assignment": [({"properties": {"principalId": "6f1d1b8a-1d5e-4a57-9e0c-7c0a6f9f3b12"}}, "MissingRequiredProperty")],
}


@pytest.mark.parametrize("route", sorted(REQUIRED))
def test_missing_required_fields_are_named(wire: Wire, route: str) -> None:
    for body, code in REQUIRED[route]:
        error = _assert_400(wire, route, json.dumps(body).encode(), code)
        assert "'" in error["message"] or "required" in error["message"].lower(), error


WRONG_TYPES = {
    "cluster put": [{"location": "westeurope", "properties": {"managementEndpoint": 5, "nodeTypes": []}},
                    {"location": "westeurope", "properties": {"managementEndpoint": "x", "nodeTypes": [5]}}],
    "cluster patch": [{"properties": []}, {"properties": {"fabricSettings": {"name": "x"}}}, {"tags": {"a": 1}},
                      {"properties": {"certificate": {"thumbprint": 5}}}],
    "vmss put": [{"location": "westeurope", "sku": 5, "properties": {"virtualMachineProfile": {}}},
                 {"location": "westeurope", "properties": {"virtualMachineProfile": {"osProfile": 5}}}],
    "vmss patch": [{"sku": {"capacity": "3"}}, {"properties": {"upgradePolicy": 5}}, {"identity": {"userAssignedIdentities": []}},
                   {"properties": {"virtualMachineProfile": {"extensionProfile": {"extensions": [{"name": "a", "properties": 5}]}}}},
                   {"properties": {"virtualMachineProfile": {"osProfile": {"secrets": [{"sourceVault": "id"}]}}}}],
    "manual upgrade": [{"instanceIds": "0"}, {"instanceIds": [0]}],
    "vault patch": [{"properties": 5}, {"properties": {"enableRbacAuthorization": "yes"}}, {"properties": {"accessPolicies": {}}}],
    "access policy": [{"properties": {"accessPolicies": [{"tenantId": "t", "objectId": "o", "permissions": {"secrets": "get"}}]}}],
    "identity patch": [{"tags": ["a"]}, {"properties": 5}],
    "role assignment": [{"properties": {"roleDefinitionId": 5, "principalId": "x"}}],
}


@pytest.mark.parametrize("route", sorted(WRONG_TYPES))
def test_wrong_types_are_400_and_change_nothing(wire: Wire, twin, route: str) -> None:
    before = requests_json(twin)["total"]
    world_before = json.dumps(twin.world.snapshot()["scale_sets"], sort_keys=True)
    for body in WRONG_TYPES[route]:
        _assert_400(wire, route, json.dumps(body).encode())
    assert json.dumps(twin.world.snapshot()["scale_sets"], sort_keys=True) == world_before
    assert all(r["status"] == 400 for r in requests_json(twin, since=before)["requests"])


def test_malformed_resource_ids_in_paths_and_bodies(wire: Wire) -> None:
    rg = wire.rg
    cases = [
        ("GET", "/subscriptions/not-a-guid/resourceGroups/rg-sf/providers/Microsoft.Compute/virtualMachineScaleSets/nt0", None, "InvalidSubscriptionId"),
        ("GET", f"{rg}/providers/Microsoft.ServiceFabric/clusters/bad%20name!", None, "InvalidResourceName"),
        ("PATCH", f"{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0",
         {"properties": {"virtualMachineProfile": {"osProfile": {"secrets": [{"sourceVault": {"id": "kv-sf-basic"}, "vaultCertificates": []}]}}}},
         "LinkedInvalidPropertyId"),
        ("PATCH", f"{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0",
         {"identity": {"type": "UserAssigned", "userAssignedIdentities": {"sf-kv-reader": {}}}}, "LinkedInvalidPropertyId"),
        ("PUT", f"/subscriptions/{wire.sub}{ROLE}", {"properties": {"roleDefinitionId": "Reader", "principalId": "6f1d1b8a-1d5e-4a57-9e0c-7c0a6f9f3b12"}},
         "InvalidRoleDefinitionId"),
        ("PUT", f"/subscriptions/{wire.sub}{ROLE}", {"properties": {"roleDefinitionId": READER, "principalId": "me"}}, "InvalidPrincipalId"),
        ("PUT", f"/subscriptions/{wire.sub}/providers/Microsoft.Authorization/roleAssignments/not-a-guid",
         {"properties": {"roleDefinitionId": READER, "principalId": "6f1d1b8a-1d5e-4a57-9e0c-7c0a6f9f3b12"}}, "InvalidRoleAssignmentId"),
        ("GET", "/resourceGroups/rg-sf/providers/Microsoft.Authorization/roleAssignments", None, "InvalidScope"),
    ]
    for method, path, body, code in cases:
        error = assert_arm_error(wire.request(method, path, body, api="2024-07-01"), 400)
        assert error["code"] == code, (path, error)


def test_unknown_routes_are_loud_501s(wire: Wire, twin) -> None:
    for method, path in [
        ("GET", f"{wire.rg}/providers/Microsoft.Network/virtualNetworks/vnet-sf"),
        ("POST", f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0/reimage"),
        ("GET", "/providers/Microsoft.ServiceFabric/operations"),
    ]:
        error = assert_arm_error(wire.request(method, path, api="2024-07-01"), 501)
        assert error["code"] == "TwinRouteNotImplemented" and path.split("/")[-1] in error["message"]
    uri = wire.get_json(f"{wire.rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic", API["keyvault"])["properties"]["vaultUri"]
    # certificate create/import are modelled (docs/twin.md, "Key Vault certificate writes"); deleting one is not
    response = wire.request("DELETE", uri + "certificates/cluster-cert", None, api=API["kv"], token="kv")
    assert response.status_code == 501 and response.json()["error"]["code"] == "TwinRouteNotImplemented"


def test_bad_framing_is_400_not_a_dropped_connection(twin) -> None:
    host, port = twin.base_url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(twin.server.tls.ca_file))
    with socket.create_connection((host, int(port)), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"PUT /subscriptions/x HTTP/1.1\r\nHost: twin\r\nContent-Length: many\r\n\r\n{}")
        answer = b""
        while chunk := tls.recv(4096):  # the server closes the connection after answering
            answer += chunk
    head, _, body = answer.decode("latin-1").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400") and json.loads(body)["error"]["code"] == "InvalidRequestFormat"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_KEYS = ["location", "tags", "sku", "identity", "properties", "instanceIds"]
_INNER = ["managementEndpoint", "nodeTypes", "certificate", "certificateCommonNames", "fabricSettings", "upgradePolicy",
          "virtualMachineProfile", "accessPolicies", "tenantId", "roleDefinitionId", "principalId", "enableRbacAuthorization"]
_BODIES = st.fixed_dictionaries(
    {}, optional={k: _JSON for k in _KEYS} | {"properties": st.dictionaries(st.sampled_from(_INNER), _JSON, max_size=4) | _JSON}
) | _JSON


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(["cluster put", "cluster patch", "vmss put", "vmss patch", "manual upgrade", "vault put",
                              "vault patch", "access policy", "identity put", "role assignment"]), body=_BODIES)
def test_random_bodies_never_get_a_500(wire: Wire, route: str, body: Any) -> None:
    method, path, api = _routes(wire)[route]
    response = wire.request(method, path, raw=json.dumps(body).encode(), api=api)
    assert response.status_code < 500, (route, body, response.text[:300])
    if response.status_code >= 400:
        assert_arm_error(response, response.status_code)
