"""The twin's Microsoft Graph (read-only v1.0, docs/twin.md "Microsoft Graph"), through raw HTTPS with tokens from
the twin's own token endpoints: the directory is the world's principals, filters as az sends them, Graph's errors
for bad input, unknown ids, /me with an application token, and tokens for another audience.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests
from azure.identity import ClientSecretCredential

from twinkit import requests_json, world_json
from wirekit import Wire, principal, scenario_file

SECRET = "graph-test-secret"  # test data for a scenario principal, not a credential


def _scenario(document: dict[str, Any]) -> None:
    document["identities"] = [{"name": "sf-kv-reader"}]
    document["principals"] = [{"name": "ci-app", "clientSecret": SECRET, "roles": [{"role": "Reader"}]}]


@pytest.fixture
def graph_twin(twin_factory: Any, tmp_path: Any) -> Any:
    return twin_factory(scenario_file=scenario_file(tmp_path, "graph", edit=_scenario))


def _graph(twin: Any) -> str:
    """Microsoft Graph's endpoint as a client learns it: the cloud metadata's ``microsoftGraphResourceId``."""
    wire = Wire(twin)
    return str(wire.get_json("/metadata/endpoints?api-version=2022-09-01", token=None)["microsoftGraphResourceId"])


def _call(twin: Any, method: str, path: str, token: str | None, body: Any = None) -> requests.Response:
    graph = _graph(twin)
    wire = Wire(twin)
    return wire.request(method, graph.rstrip("/") + path, body=body, token=f"Bearer {token}" if token else None)


def _error(response: requests.Response, status: int, code: str) -> str:
    """Graph's error shape (https://learn.microsoft.com/graph/errors): code, message, innerError with a request id."""
    assert response.status_code == status, f"{response.status_code} (wanted {status}): {response.text[:400]}"
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and error["innerError"]["request-id"], error
    return str(error["message"])


def _identity(twin: Any) -> dict[str, Any]:
    return next(p for p in world_json(twin)["principals"] if p["kind"] == "ManagedIdentity")


def test_metadata_names_the_twins_graph_and_its_tokens_carry_that_audience(graph_twin: Any) -> None:
    graph = _graph(graph_twin)
    assert graph == f"{graph_twin.base_url}/graph/"
    token = Wire(graph_twin).token(graph)  # the managed-identity endpoint, resource = Graph's id
    listed = _call(graph_twin, "GET", "/v1.0/servicePrincipals", token)
    assert listed.status_code == 200, listed.text
    by_id = {sp["id"]: sp for sp in listed.json()["value"]}
    operator, identity = principal(graph_twin, "sfmigrate-operator"), _identity(graph_twin)
    assert by_id[operator["objectId"]]["servicePrincipalType"] == "Application"
    assert by_id[operator["objectId"]]["appId"] == operator["clientId"]
    managed = by_id[identity["objectId"]]  # a user-assigned identity: appId = clientId, id = principalId
    assert (managed["servicePrincipalType"], managed["appId"]) == ("ManagedIdentity", identity["clientId"])
    assert identity["resourceId"] in managed["alternativeNames"]
    assert listed.json()["@odata.context"].endswith("/v1.0/$metadata#servicePrincipals")
    caller = [r for r in requests_json(graph_twin)["requests"] if r["path"].endswith("/v1.0/servicePrincipals")]
    assert caller and caller[-1]["caller"] == operator["objectId"]  # the request log names Graph's callers too


def test_client_credentials_token_for_graph_and_the_filters_az_sends(graph_twin: Any) -> None:
    graph = _graph(graph_twin)
    app = principal(graph_twin, "ci-app")
    credential = ClientSecretCredential(app["tenantId"], app["clientId"], SECRET, authority=graph_twin.base_url,
                                        disable_instance_discovery=True, connection_verify=graph_twin.ca_bundle)
    token = credential.get_token(graph + ".default").token

    def names(filter_text: str, collection: str = "servicePrincipals") -> list[str]:
        response = _call(graph_twin, "GET", f"/v1.0/{collection}?$filter={quote(filter_text, safe='')}", token)
        assert response.status_code == 200, response.text
        return [body["displayName"] for body in response.json()["value"]]

    assert names(f"servicePrincipalNames/any(c:c eq '{app['clientId']}')") == ["ci-app"]  # az ad sp show --id, --spn
    assert names(f"appId eq '{app['clientId'].upper()}'") == ["ci-app"]  # strings compare without case
    assert names("displayName eq 'SF-KV-READER'") == ["sf-kv-reader"]
    assert names("startswith(displayName,'ci-')") == ["ci-app"]
    assert names(f"servicePrincipalNames/any(x:x eq '{app['objectId']}')") == []  # an object id is no SP name
    assert names("userPrincipalName eq 'someone@contoso.com'", "users") == []  # the twin's directory has no users
    by_app = _call(graph_twin, "GET", f"/v1.0/servicePrincipals(appId='{app['clientId']}')", token)
    assert by_app.status_code == 200 and by_app.json()["id"] == app["objectId"]


def test_bad_filters_answer_graphs_400_and_a_filter_beyond_the_twin_is_a_visible_gap(graph_twin: Any) -> None:
    token = Wire(graph_twin).token(_graph(graph_twin))

    def get(filter_text: str) -> requests.Response:
        return _call(graph_twin, "GET", f"/v1.0/servicePrincipals?$filter={quote(filter_text, safe='')}", token)

    assert "Invalid filter clause" in _error(get("appId eq 'unterminated"), 400, "BadRequest")
    assert "Invalid filter clause" in _error(get("appId"), 400, "BadRequest")
    assert "'colour'" in _error(get("colour eq 'blue'"), 400, "BadRequest")
    assert "servicePrincipalNames" in _error(get("servicePrincipalNames eq 'x'"), 400, "Request_UnsupportedQuery")
    assert "does not implement" in _error(get("appId eq 'a' or appId eq 'b'"), 501, "TwinRouteNotImplemented")


def test_lookups_by_id_and_getbyids_and_graphs_404_and_400(graph_twin: Any) -> None:
    token = Wire(graph_twin).token(_graph(graph_twin))
    operator, identity = principal(graph_twin, "sfmigrate-operator"), _identity(graph_twin)
    one = _call(graph_twin, "GET", f"/v1.0/servicePrincipals/{identity['objectId']}", token)
    assert one.status_code == 200 and one.json()["displayName"] == "sf-kv-reader"
    typed = _call(graph_twin, "GET", f"/v1.0/directoryObjects/{operator['objectId']}", token).json()
    assert typed["@odata.type"] == "#microsoft.graph.servicePrincipal" and typed["id"] == operator["objectId"]

    unknown = "00000000-0000-4000-8000-000000000001"
    assert unknown in _error(_call(graph_twin, "GET", f"/v1.0/servicePrincipals/{unknown}", token), 404, "Request_ResourceNotFound")
    _error(_call(graph_twin, "GET", f"/v1.0/directoryObjects/{unknown}", token), 404, "Request_ResourceNotFound")
    assert "not-a-guid" in _error(_call(graph_twin, "GET", "/v1.0/servicePrincipals/not-a-guid", token), 400, "Request_BadRequest")
    _error(_call(graph_twin, "GET", "/v1.0/users/someone@contoso.com", token), 404, "Request_ResourceNotFound")  # by UPN
    _error(_call(graph_twin, "GET", f"/v1.0/users/{operator['objectId']}", token), 404, "Request_ResourceNotFound")  # no user

    body = {"ids": [identity["objectId"], unknown, operator["objectId"]], "types": ["user", "group", "servicePrincipal"]}
    found = _call(graph_twin, "POST", "/v1.0/directoryObjects/getByIds", token, body)
    assert found.status_code == 200, found.text
    assert [o["id"] for o in found.json()["value"]] == [identity["objectId"], operator["objectId"]]  # unknown left out
    assert {o["@odata.type"] for o in found.json()["value"]} == {"#microsoft.graph.servicePrincipal"}
    only_users = _call(graph_twin, "POST", "/v1.0/directoryObjects/getByIds", token, {"ids": [operator["objectId"]], "types": ["user"]})
    assert only_users.json()["value"] == []
    _error(_call(graph_twin, "POST", "/v1.0/directoryObjects/getByIds", token, {"ids": []}), 400, "Request_BadRequest")
    assert not any(r["mutating"] for r in requests_json(graph_twin)["requests"] if "/graph/" in r["path"])  # read-only


def test_an_identity_created_through_arm_is_in_graph_and_gone_once_deleted(graph_twin: Any) -> None:
    wire = Wire(graph_twin)
    token = wire.token(_graph(graph_twin))
    url = f"{wire.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-graph?api-version=2024-11-30"
    created = wire.request("PUT", url, {"location": "westeurope"})
    assert created.status_code == 201, created.text
    object_id = created.json()["properties"]["principalId"]
    seen = _call(graph_twin, "GET", f"/v1.0/servicePrincipals/{object_id}", token)
    assert seen.status_code == 200 and seen.json()["appId"] == created.json()["properties"]["clientId"]
    assert wire.request("DELETE", url).status_code == 200
    _error(_call(graph_twin, "GET", f"/v1.0/servicePrincipals/{object_id}", token), 404, "Request_ResourceNotFound")


def test_me_needs_a_user_and_graph_refuses_other_audiences(graph_twin: Any) -> None:
    wire = Wire(graph_twin)
    graph_token = wire.token(_graph(graph_twin))
    message = _error(_call(graph_twin, "GET", "/v1.0/me", graph_token), 400, "BadRequest")
    assert message == "/me request is only valid with delegated authentication flow."  # an application's token

    arm_token = wire.token()
    assert "Invalid audience" in _error(_call(graph_twin, "GET", "/v1.0/servicePrincipals", arm_token), 401, "InvalidAuthenticationToken")
    vault_token = wire.token("https://vault.azure.net")
    _error(_call(graph_twin, "GET", "/v1.0/servicePrincipals", vault_token), 401, "InvalidAuthenticationToken")
    assert _error(_call(graph_twin, "GET", "/v1.0/servicePrincipals", None), 401, "InvalidAuthenticationToken") == "Access token is empty."
    forged = graph_token[:-4] + ("AAAA" if not graph_token.endswith("AAAA") else "BBBB")
    _error(_call(graph_twin, "GET", "/v1.0/servicePrincipals", forged), 401, "InvalidAuthenticationToken")
    # and ARM refuses the Graph token in ARM's words
    refused = wire.request("GET", f"/subscriptions/{wire.sub}?api-version=2022-12-01", token=f"Bearer {graph_token}")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_a_managed_identity_without_graph_permissions_is_refused(graph_twin: Any) -> None:
    """Directory reads take Directory.Read.All for an application; a managed identity holds no Graph permission
    until an administrator assigns one (the twin models no such grant), so Graph answers 403."""
    identity = _identity(graph_twin)
    token = Wire(graph_twin).token(_graph(graph_twin), client_id=identity["clientId"])  # the identity's own token
    reads = [("GET", "/v1.0/servicePrincipals", None), ("GET", f"/v1.0/servicePrincipals/{identity['objectId']}", None),
             ("POST", "/v1.0/directoryObjects/getByIds", {"ids": [identity["objectId"]]})]
    for method, path, body in reads:
        refused = _call(graph_twin, method, path, token, body)
        assert _error(refused, 403, "Authorization_RequestDenied") == "Insufficient privileges to complete the operation."
    assert "delegated" in _error(_call(graph_twin, "GET", "/v1.0/me", token), 400, "BadRequest")
