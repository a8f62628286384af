"""Raw HTTPS access to a running twin: wire JSON, not SDK models (for conformance and bad-input tests)."""

from __future__ import annotations

import json
from typing import Any

import requests

from aztwin.twin import RunningTwin

ARM_RESOURCE = "https://management.azure.com"
VAULT_RESOURCE = "https://vault.azure.net"
API = {"servicefabric": "2021-06-01", "compute": "2026-04-01", "keyvault": "2026-05-15", "msi": "2024-11-30", "kv": "7.5"}


class Wire:
    """A ``requests`` session trusting the twin's CA, with bearer tokens from its managed-identity endpoint."""

    def __init__(self, twin: RunningTwin) -> None:
        self.twin = twin
        self.session = requests.Session()
        # The twin's CA alone (the bundle adds ~150 system CAs, ~70 ms to parse per new connection), passed
        # per request: requests lets REQUESTS_CA_BUNDLE override a session's ``verify``.
        self.verify = str(twin.server.tls.ca_file)
        self.sub = twin.world.default_subscription
        self.rg = f"/subscriptions/{self.sub}/resourceGroups/rg-sf"
        self._tokens: dict[tuple[str, str | None], str] = {}

    def token(self, resource: str = ARM_RESOURCE, client_id: str | None = None) -> str:
        key = (resource, client_id)
        if key not in self._tokens:
            params = {"resource": resource, "api-version": "2019-08-01", **({"client_id": client_id} if client_id else {})}
            response = self.session.get(
                self.twin.env["IDENTITY_ENDPOINT"], params=params,
                headers={"X-IDENTITY-HEADER": self.twin.env["IDENTITY_HEADER"]}, timeout=30, verify=self.verify,
            )
            response.raise_for_status()
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    def request(
        self, method: str, url: str, body: Any = None, *, raw: bytes | None = None, token: str | None = "arm",
        headers: dict[str, str] | None = None, api: str | None = None,
    ) -> requests.Response:
        """``url`` is absolute or a path on the twin's main port; ``token``: "arm", "kv", None or a literal."""
        if not url.startswith("https://"):
            url = self.twin.base_url + url
        send = dict(headers or {})
        if token == "arm":
            send["Authorization"] = f"Bearer {self.token()}"
        elif token == "kv":
            send["Authorization"] = f"Bearer {self.token(VAULT_RESOURCE)}"
        elif token is not None:
            send["Authorization"] = token
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            send.setdefault("Content-Type", "application/json")
        params = {"api-version": api} if api and "api-version=" not in url else None
        return self.session.request(method, url, data=raw, headers=send, params=params, timeout=30, verify=self.verify)

    def get_json(self, url: str, api: str | None = None, token: str | None = "arm") -> Any:
        response = self.request("GET", url, api=api, token=token)
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text[:500]}"
        return response.json()


def assert_arm_error(response: requests.Response, status: int = 400) -> dict[str, Any]:
    """An ARM error: the expected status and ``{"error": {"code", "message"}}`` with both non-empty."""
    assert response.status_code == status, f"{response.status_code} (wanted {status}): {response.text[:400]}"
    body = response.json()
    assert isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    return body["error"]


def scenario_file(directory: Any, name: str, *, upgrade_policy: str | None = None, principals: list[dict[str, Any]] | None = None,
                  edit: Any = None) -> Any:
    """The built-in ``basic`` scenario, renamed and adjusted, written to ``directory`` (for ``scenario_file=``)."""
    from pathlib import Path

    import yaml

    from aztwin.scenario import builtin_path

    document = yaml.safe_load(builtin_path("basic").read_text(encoding="utf-8"))
    document["name"] = name
    if upgrade_policy:
        for node_type in document["clusters"][0]["nodeTypes"]:
            node_type["upgradePolicy"] = upgrade_policy
    if principals:
        document["principals"] = principals
    if edit:
        edit(document)
    path = Path(directory) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def principal(twin: RunningTwin, display_name: str) -> dict[str, Any]:
    """A principal of the twin's directory as ``/_emulator/world`` shows it (objectId, clientId, tenantId)."""
    from twinkit import world_json

    return next(p for p in world_json(twin)["principals"] if p["displayName"] == display_name)
