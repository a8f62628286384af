"""Threat: a token issued for one surface replayed on another (issue 12, the twin's Microsoft Graph). A Graph
token must not act on ARM or a vault, and an ARM or Key Vault token must not read the directory: each surface
checks the token's audience (docs/twin.md, "Microsoft Graph (read-only directory)")."""

from __future__ import annotations

from typing import Any

import requests


def _token(twin: Any, resource: str) -> str:
    """A token from the twin's managed-identity endpoint, as any client gets one."""
    response = requests.get(twin.env["IDENTITY_ENDPOINT"], params={"resource": resource, "api-version": "2019-08-01"},
                            headers={"X-IDENTITY-HEADER": twin.env["IDENTITY_HEADER"]}, verify=twin.ca_bundle, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _get(twin: Any, url: str, token: str) -> requests.Response:
    return requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=twin.ca_bundle, timeout=30)


def test_graph_arm_and_vault_tokens_work_only_where_they_were_issued_for(twin: Any) -> None:
    metadata = requests.get(f"{twin.base_url}/metadata/endpoints?api-version=2022-09-01", verify=twin.ca_bundle, timeout=30)
    graph = metadata.json()["microsoftGraphResourceId"]
    graph_token, arm_token = _token(twin, graph), _token(twin, "https://management.azure.com")
    vault_token = _token(twin, "https://vault.azure.net")
    directory = graph.rstrip("/") + "/v1.0/servicePrincipals"
    assert _get(twin, directory, graph_token).status_code == 200  # the control case

    for foreign in (arm_token, vault_token):
        refused = _get(twin, directory, foreign)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    group = f"{twin.base_url}/subscriptions/{twin.world.default_subscription}/resourceGroups/rg-sf?api-version=2022-09-01"
    assert _get(twin, group, arm_token).status_code == 200  # the control case
    arm = _get(twin, group, graph_token)
    assert arm.status_code == 401 and arm.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    certificates = f"{twin.server.vault_uri('kv-sf-basic')}certificates?api-version=7.5"
    assert _get(twin, certificates, graph_token).status_code == 401
