"""Authentication and authorisation as Azure does them, for Microsoft's clients and for raw callers.

The six clients are driven by ``DefaultAzureCredential`` under the ready line's ``env`` and by
``ClientSecretCredential`` against the twin's Entra-style authority; ARM and Key Vault refuse missing, bad
and wrong-audience tokens with 401; Key Vault's first request gets the recorded challenge
(recordings/test_certificates_client…[7.5].json); a caller without an access policy gets Key Vault's 403.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from twinkit import Clients, requests_json
from wirekit import API, VAULT_RESOURCE, Wire, assert_arm_error, principal, scenario_file

RG = "rg-sf"
SECRET = "auth-test-secret"  # test data for a scenario principal, not a credential
KEY_VAULT_CERTIFICATE_USER = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"


def _scenario(document: dict[str, Any]) -> None:
    document["principals"] = [
        {"name": "ci-app", "clientSecret": SECRET, "roles": [{"role": "Owner"}]},
        {"name": "no-vault-access", "clientSecret": SECRET, "roles": [{"role": "Reader"}]},
    ]
    document["vaults"][0]["accessPolicies"] = [
        {"principal": "operator", "certificates": ["get", "list"]},
        {"principal": "principal:ci-app", "certificates": ["get", "list"]},
    ]


@pytest.fixture
def auth_twin(twin_factory, tmp_path):
    return twin_factory(scenario_file=scenario_file(tmp_path, "auth", edit=_scenario))


def _secret_credential(twin: Any, name: str, secret: str = SECRET) -> ClientSecretCredential:
    app = principal(twin, name)
    return ClientSecretCredential(
        app["tenantId"], app["clientId"], secret, authority=twin.base_url,
        disable_instance_discovery=True, connection_verify=twin.ca_bundle,
    )


@pytest.mark.parametrize("kind", ["default", "client-secret"])
def test_six_clients_read_and_write_with_each_credential(auth_twin, kind: str) -> None:
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    credential = DefaultAzureCredential() if kind == "default" else _secret_credential(auth_twin, "ci-app")
    expected_caller = principal(auth_twin, "sfmigrate-operator" if kind == "default" else "ci-app")["objectId"]
    clients = Clients(auth_twin, credential)

    assert clients.servicefabric.clusters.get(RG, "sfcluster").cluster_state == "Ready"
    assert [s.name for s in clients.compute.virtual_machine_scale_sets.list(RG)] == ["nt0"]
    assert len(list(clients.compute.virtual_machine_scale_set_vms.list(RG, "nt0"))) == 3
    vault = clients.keyvault.vaults.get(RG, "kv-sf-basic")
    identity = clients.msi.user_assigned_identities.create_or_update(RG, f"uai-{kind}", {"location": "westeurope"})
    assert clients.msi.user_assigned_identities.get(RG, f"uai-{kind}").principal_id == identity.principal_id
    result = clients.keyvault.vaults.update_access_policy(
        RG, "kv-sf-basic", "add",
        {"properties": {"accessPolicies": [{"tenantId": vault.properties.tenant_id, "objectId": identity.principal_id,
                                            "permissions": {"secrets": ["get", "list"]}}]}},
    )
    assert identity.principal_id in [p.object_id for p in result.properties.access_policies]
    role_id = f"/subscriptions/{clients.subscription}/providers/Microsoft.Authorization/roleDefinitions/{KEY_VAULT_CERTIFICATE_USER}"
    assert clients.authorization.role_definitions.get(vault.id, KEY_VAULT_CERTIFICATE_USER).role_name == "Key Vault Certificate User"
    clients.authorization.role_assignments.create(
        vault.id, str(uuid.uuid4()), RoleAssignmentCreateParameters(role_definition_id=role_id, principal_id=identity.principal_id)
    )
    assert identity.principal_id in [a.principal_id for a in clients.authorization.role_assignments.list_for_scope(vault.id)]
    certificates = clients.certificates(vault.properties.vault_uri)
    assert certificates.get_certificate("cluster-cert").policy.exportable is True
    assert {c.name for c in certificates.list_properties_of_certificates()} == {"cluster-old", "cluster-cert"}

    log = requests_json(auth_twin)["requests"]
    served = [r for r in log if r["status"] < 400 and not r["path"].startswith(("/_identity", f"/{auth_twin.world.identity.tenant_id}"))]
    assert served and {r["caller"] for r in served} == {expected_caller}


def test_client_secret_credential_with_a_wrong_secret_is_refused(auth_twin) -> None:
    clients = Clients(auth_twin, _secret_credential(auth_twin, "ci-app", secret="wrong"))
    with pytest.raises(ClientAuthenticationError) as caught:
        clients.servicefabric.clusters.get(RG, "sfcluster")
    assert "AADSTS7000215" in str(caught.value)


def test_arm_refuses_missing_bad_and_wrong_audience_tokens(twin) -> None:
    wire = Wire(twin)
    path = f"{wire.rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster"
    header, payload, signature = wire.token().split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    cases = {
        None: "AuthenticationFailed",
        "Bearer not-a-jwt": "InvalidAuthenticationToken",
        f"Bearer {forged}": "InvalidAuthenticationToken",
        f"Basic {wire.token()}": "AuthenticationFailed",
        f"Bearer {wire.token(VAULT_RESOURCE)}": "InvalidAuthenticationTokenAudience",
    }
    for authorization, code in cases.items():
        response = wire.request("GET", path, api=API["servicefabric"], token=authorization)
        assert assert_arm_error(response, 401)["code"] == code, authorization
    assert wire.request("GET", path, api=API["servicefabric"]).status_code == 200
    unauthenticated = [r for r in requests_json(twin)["requests"] if r["status"] == 401]
    assert len(unauthenticated) == len(cases) and all(r["caller"] is None for r in unauthenticated)


def test_key_vault_challenge_is_exactly_as_recorded(twin) -> None:
    wire = Wire(twin)
    uri = wire.get_json(f"{wire.rg}/providers/Microsoft.KeyVault/vaults/kv-sf-basic", API["keyvault"])["properties"]["vaultUri"]
    first = wire.request("GET", uri + "certificates/cluster-cert/", api=API["kv"], token=None)
    assert first.status_code == 401
    assert first.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{twin.base_url}/{twin.world.identity.tenant_id}", resource="https://vault.azure.net"'
    )
    assert first.json() == {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}
    # An ARM token is not a vault token.
    wrong = wire.request("GET", uri + "certificates/cluster-cert/", api=API["kv"], token="arm")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] and "WWW-Authenticate" in wrong.headers
    assert wire.request("GET", uri + "certificates/cluster-cert/", api=API["kv"], token="kv").status_code == 200


def test_certificate_client_follows_the_challenge(twin, clients: Clients) -> None:
    vault = clients.keyvault.vaults.get(RG, "kv-sf-basic")
    before = requests_json(twin)["total"]
    clients.certificates(vault.properties.vault_uri).get_certificate("cluster-cert")
    kv = [r for r in requests_json(twin, since=before)["requests"] if r["path"].startswith("/kv/")]
    assert [(r["status"], r["caller"] is None) for r in kv] == [(401, True), (200, False)]


def test_caller_without_access_policy_gets_key_vaults_403(auth_twin) -> None:
    outsider = principal(auth_twin, "no-vault-access")
    clients = Clients(auth_twin, _secret_credential(auth_twin, "no-vault-access"))
    vault = clients.keyvault.vaults.get(RG, "kv-sf-basic")  # Reader may read the vault resource...
    with pytest.raises(HttpResponseError) as caught:  # ...but the data plane needs an access policy
        clients.certificates(vault.properties.vault_uri).get_certificate("cluster-cert")
    assert caught.value.status_code == 403 and caught.value.error.code == "Forbidden"
    assert f"oid={outsider['objectId']}" in caught.value.error.message and "certificates get permission" in caught.value.error.message
    denied = [r for r in requests_json(auth_twin)["requests"] if r["status"] == 403]
    assert denied and denied[-1]["caller"] == outsider["objectId"] and denied[-1]["path"].startswith("/kv/kv-sf-basic/")
    # ARM's own 403 for a write the Reader role lacks, in ARM's words.
    with pytest.raises(HttpResponseError) as arm:
        clients.msi.user_assigned_identities.create_or_update(RG, "uai-denied", {"location": "westeurope"})
    assert arm.value.status_code == 403 and arm.value.error.code == "AuthorizationFailed"


def test_rbac_vault_needs_a_data_role(twin_factory, tmp_path) -> None:
    def rbac(document: dict[str, Any]) -> None:
        _scenario(document)
        document["vaults"][0]["rbac"] = True
        document["vaults"][0]["roleAssignments"] = [{"principal": "principal:ci-app", "role": "Key Vault Certificate User"}]

    rbac_twin = twin_factory(scenario_file=scenario_file(tmp_path, "rbac-auth", edit=rbac))
    allowed = Clients(rbac_twin, _secret_credential(rbac_twin, "ci-app"))
    uri = allowed.keyvault.vaults.get(RG, "kv-sf-basic").properties.vault_uri
    assert allowed.certificates(uri).get_certificate("cluster-cert").name == "cluster-cert"
    # The operator is Owner of the subscription, and Owner grants no data actions.
    with pytest.raises(HttpResponseError) as caught:
        Clients(rbac_twin).certificates(uri).get_certificate("cluster-cert")
    assert caught.value.status_code == 403 and "Caller is not authorized" in caught.value.error.message
