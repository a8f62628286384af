"""The control API contract: world snapshot, request log, reset and faults (no token, never faulted)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from twinkit import Clients, requests_json, world_json
from wirekit import API, Wire, assert_arm_error

RG = "rg-sf"


def _control(wire: Wire, method: str, path: str, body: Any = None) -> Any:
    response = wire.request(method, path, body, token=None)
    assert response.status_code == 200, response.text
    return response.json()


def test_world_snapshot_holds_everything_and_no_secret(twin) -> None:
    world = world_json(twin)
    for key in ("scenario", "time", "tenant_id", "subscriptions", "principals", "role_assignments", "identities",
                "vaults", "scale_sets", "clusters", "cluster", "operations", "goal", "pki"):
        assert key in world, key
    assert world["scenario"] == "basic" and world["cluster"]["name"] == "sfcluster"
    assert [s["name"] for s in world["scale_sets"]] == ["nt0"] and len(world["scale_sets"][0]["instances"]) == 3
    assert {c["name"] for c in world["vaults"][0]["certificates"]} == {"cluster-old", "cluster-cert"}
    text = str(world)
    assert twin.env["IDENTITY_HEADER"] not in text and "PRIVATE KEY" not in text and "clientSecret" not in text


def test_request_log_contract(twin, clients: Clients) -> None:
    assert requests_json(twin) == {"total": 0, "mutating": 0, "requests": []}
    clients.servicefabric.clusters.get(RG, "sfcluster")
    clients.compute.virtual_machine_scale_sets.begin_update(RG, "nt0", {"tags": {"a": "b"}}).result()
    world_json(twin)  # control calls are not logged
    log = requests_json(twin)
    assert set(log) == {"total", "mutating", "requests"} and log["total"] == len(log["requests"])
    for entry in log["requests"]:
        assert {"time", "method", "path", "status", "caller", "api_version"} <= set(entry)
        assert not entry["path"].startswith("/_emulator")
    arm = [r for r in log["requests"] if r["path"].startswith("/subscriptions/")]
    assert arm[0]["method"] == "GET" and arm[0]["status"] == 200 and arm[0]["api_version"] == API["servicefabric"]
    patches = [r for r in arm if r["method"] == "PATCH"]
    assert len(patches) == 1 and log["mutating"] == 1 and patches[0]["api_version"] == API["compute"]
    operator = next(p for p in world_json(twin)["principals"] if p["displayName"] == "sfmigrate-operator")
    assert {r["caller"] for r in arm} == {operator["objectId"]}
    tail = requests_json(twin, since=log["total"] - 1)
    assert tail["total"] == log["total"] and tail["requests"] == log["requests"][-1:]


def test_reset_restores_the_scenario_and_keeps_clients_working(twin, clients: Clients) -> None:
    wire = Wire(twin)
    vault_uri = clients.keyvault.vaults.get(RG, "kv-sf-basic").properties.vault_uri
    clients.compute.virtual_machine_scale_sets.begin_update(RG, "nt0", {"tags": {"before": "reset"}}).result()
    assert _control(wire, "POST", "/_emulator/reset") == {"reset": True, "scenario": "basic"}
    assert requests_json(twin)["total"] == 0
    scale_set = clients.compute.virtual_machine_scale_sets.get(RG, "nt0")  # same credential, same token
    assert "before" not in (scale_set.tags or {})
    assert clients.keyvault.vaults.get(RG, "kv-sf-basic").properties.vault_uri == vault_uri  # one port per vault, kept
    assert clients.certificates(vault_uri).get_certificate("cluster-cert").name == "cluster-cert"


def test_faults_can_be_set_read_and_cleared_at_run_time(twin) -> None:
    wire = Wire(twin)
    path = f"{wire.rg}/providers/Microsoft.ServiceFabric/clusters/sfcluster"
    assert _control(wire, "POST", "/_emulator/faults", {"spec": "kinds=503,rate=1,limit=2"}) == {"spec": "kinds=503,rate=1,limit=2", "injected": 0}
    assert [wire.request("GET", path, api=API["servicefabric"]).status_code for _ in range(3)] == [503, 503, 200]
    assert _control(wire, "GET", "/_emulator/faults")["injected"] == 2
    assert world_json(twin)["cluster"]["name"] == "sfcluster"  # the control API itself is never faulted
    assert [r["fault"] for r in requests_json(twin)["requests"] if r["path"] == path] == ["503", "503", None]
    assert _control(wire, "POST", "/_emulator/faults", {"spec": ""}) == {"spec": "", "injected": 0}
    error = assert_arm_error(wire.request("POST", "/_emulator/faults", {"spec": "rate=7"}, token=None), 400)
    assert error["code"] == "BadControlRequest" and "rate" in error["message"]


def test_clock_advance_and_unknown_operations(twin) -> None:
    wire = Wire(twin)
    before = world_json(twin)["simulated_seconds"]
    assert "time" in _control(wire, "POST", "/_emulator/clock/advance", {"seconds": 86400})
    assert world_json(twin)["simulated_seconds"] >= before + 86400
    assert assert_arm_error(wire.request("POST", "/_emulator/nothing", {}, token=None), 404)["code"] == "UnknownControlOperation"
    for path, raw in [("/_emulator/faults", b"{"), ("/_emulator/faults", b"[]"), ("/_emulator/faults", b'{"spec": 5}'),
                      ("/_emulator/clock/advance", b'{"seconds": [1]}'), ("/_emulator/clock/advance", b'{"seconds": -5}'),
                      ("/_emulator/pipelines", b"[1]")]:
        error = assert_arm_error(wire.request("POST", path, raw=raw, token=None), 400)
        assert error["code"] == "BadControlRequest", (path, raw, error)


def test_every_control_route_is_in_one_table_and_answers_only_its_method(twin) -> None:
    """CONTROL_ROUTES is the whole control API: each route answers (any case, trailing slash or not), the other
    method on its path is 404 UnknownControlOperation, and each body-taking route refuses a non-object body."""
    from aztwin.control import CONTROL_ROUTES

    wire = Wire(twin)
    for method, path in CONTROL_ROUTES:
        other = "POST" if method == "GET" else "GET"
        if (other, path) not in CONTROL_ROUTES:
            answer = wire.request(other, path, {} if other == "POST" else None, token=None)
            assert assert_arm_error(answer, 404)["code"] == "UnknownControlOperation", (other, path)
        if method == "POST" and path != "/_emulator/reset":
            error = assert_arm_error(wire.request("POST", path.upper() + "/", raw=b"[1]", token=None), 400)
            assert error["code"] == "BadControlRequest", (path, error)
    assert "time" in _control(wire, "POST", "/_EMULATOR/Clock/Advance/", {"seconds": 1})


def test_the_docs_list_every_control_route() -> None:
    """docs/twin.md's control API table names exactly the routes of CONTROL_ROUTES."""
    import re
    from pathlib import Path

    from aztwin.control import CONTROL_ROUTES

    text = (Path(__file__).resolve().parents[2] / "docs" / "twin.md").read_text(encoding="utf-8")
    section = text.split("## Control API", 1)[1].split("\n## ", 1)[0]
    documented = {
        (method, path.lower())
        for row in section.splitlines() if row.startswith("| `")
        for method, path in re.findall(r"`(GET|POST) (/_emulator/[a-z/]+)", row.split(" | ")[0])
    }
    assert documented == set(CONTROL_ROUTES)


def test_ready_info_is_the_cli_contract_less_the_plan_file(twin) -> None:
    """The twin knows nothing of sfmigrate plan files: `sfmigrate emulator serve` adds `plan_file` itself."""
    info = twin.ready_info()
    assert set(info) == {"arm_endpoint", "ca_bundle", "subscription_id", "tenant_id", "env", "scenario"}
    assert info["arm_endpoint"] == twin.base_url and info["env"]["IDENTITY_ENDPOINT"].startswith(twin.base_url)


def test_a_principal_secret_is_issued_through_the_control_api_and_the_old_one_stops_working(twin_factory, tmp_path) -> None:
    """Programs that drive a twin (sfmigrate rehearse) get a service principal's secret over HTTPS, never by
    reading the twin's memory; a reset secret replaces the previous one, as in Entra ID."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    from aztwin import ControlError

    from aztwin import builtin_path

    scenario = tmp_path / "with-principal.yaml"
    scenario.write_text(builtin_path("basic").read_text(encoding="utf-8") + "\nprincipals:\n  - name: deployer\n",
                        encoding="utf-8")
    twin = twin_factory(scenario_file=scenario)
    control = twin.control()
    principals = [p for p in control.world()["principals"] if p["kind"] == "ServicePrincipal"]
    assert principals, "the scenario declares a service principal"
    name = principals[0]["displayName"]
    first = control.principal_credentials(name)
    second = control.principal_credentials(name)
    assert first["clientId"] == second["clientId"] and first["clientSecret"] != second["clientSecret"]

    def token(secret: str) -> str:
        credential = ClientSecretCredential(second["tenantId"], second["clientId"], secret, authority=twin.base_url,
                                            disable_instance_discovery=True, connection_verify=twin.ca_bundle)
        return credential.get_token("https://management.azure.com/.default").token

    assert token(second["clientSecret"])
    with pytest.raises(ClientAuthenticationError):
        token(first["clientSecret"])
    with pytest.raises(ControlError) as missing:
        control.principal_credentials("nobody-by-that-name")
    assert missing.value.status == 404 and missing.value.code == "PrincipalNotFound"
    assert "clientSecret" not in json.dumps(control.world())


def test_node_health_marks_and_heals_a_node_and_refuses_bad_input(twin) -> None:
    wire = Wire(twin)
    marked = _control(wire, "POST", "/_emulator/nodes/health", {"node": "nt0_2", "unhealthy": "disk full"})
    assert marked["node"] == "nt0_2" and marked["cluster"].endswith("/clusters/sfcluster")
    assert world_json(twin)["cluster"]["unhealthy_nodes"] == {"nt0_2": "disk full"}
    _control(wire, "POST", "/_emulator/nodes/health", {"node": "nt0_2", "unhealthy": None})
    assert world_json(twin)["cluster"]["unhealthy_nodes"] == {}
    other = wire.request("POST", "/_emulator/nodes/health", {"node": "nt0_2", "unhealthy": "x", "cluster": "elsewhere"}, token=None)
    assert assert_arm_error(other, 404)["code"] == "NodeNotFound"
    missing = wire.request("POST", "/_emulator/nodes/health", {"node": "nt9_0", "unhealthy": "x"}, token=None)
    assert assert_arm_error(missing, 404)["code"] == "NodeNotFound"
    bad = wire.request("POST", "/_emulator/nodes/health", {"node": "nt0_2", "unhealthy": 7}, token=None)
    assert assert_arm_error(bad, 400)["code"] == "BadControlRequest"


def test_node_health_picks_the_named_cluster_when_two_share_node_names(twin_factory) -> None:
    twin = twin_factory("two-clusters")  # sfcluster in rg-sf and in rg-sf-b, each with nt0_*
    wire = Wire(twin)
    second = next(c["id"] for c in twin.control().world()["clusters"] if "/resourceGroups/rg-sf-b/" in c["id"])
    marked = _control(wire, "POST", "/_emulator/nodes/health", {"node": "nt0_1", "unhealthy": "stuck", "cluster": second})
    assert marked["cluster"] == second
    unhealthy = {c["id"]: c["unhealthy_nodes"] for c in twin.control().world()["clusters"]}
    assert unhealthy[second] == {"nt0_1": "stuck"} and all(v == {} for k, v in unhealthy.items() if k != second)
