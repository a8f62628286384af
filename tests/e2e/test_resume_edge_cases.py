"""Resume after the world moved on: a goal rotation during a postponed cutover, an interrupted cleanup,
a reverse proxy that shares a certificate with the cluster (regressions from review)."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import yaml

from migrate import commands
from migrate.runner import RunOptions
from migrate.errors import StoppedAtRequest
from twinkit import Clients, inprocess_session, scale_sets, world_json


def _control(twin, path: str, body: dict) -> dict:
    request = urllib.request.Request(twin.base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=twin.ca_bundle)) as response:
        return json.loads(response.read())


def _plan_with(twin, tmp_path: Path, **changes: dict) -> Path:
    document = yaml.safe_load(twin.plan_file.read_text())
    for key, value in changes.items():
        document.setdefault(key, {}).update(value)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _secret_urls(scale_set: dict) -> list[str]:
    return [c["certificateUrl"] for g in scale_set["properties"]["virtualMachineProfile"]["osProfile"].get("secrets") or []
            for c in g["vaultCertificates"]]


def _sf_certificate(scale_set: dict) -> dict:
    for extension in scale_set["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]:
        if extension["properties"]["type"].startswith("ServiceFabric"):
            return extension["properties"]["settings"]["certificate"]
    raise AssertionError("no SF extension")


def test_a_goal_rotation_during_a_postponed_cutover_converges_without_going_back_to_secrets(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    session = inprocess_session(twin)
    state = str(tmp_path / "state")
    try:
        commands.apply(twin.plan_file, state_location=state, session=session, options=RunOptions(postpone_cutover=True))
    except StoppedAtRequest:
        pass
    goal = twin.world.goal
    # Default validity: valid from the twin's "now", which sfmigrate takes from Azure's Date header (one clock).
    renewed = _control(twin, "/_emulator/certificates/renew", {"vault": goal["vault"].rsplit("/", 1)[-1], "certificate": goal["certificate"]})
    result = commands.apply(twin.plan_file, state_location=state, session=session)
    assert "convert-cluster" in [s.name for s in result.plan.steps]  # this run did the cutover
    assert result.state.step("convert-cluster").status == "done"
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    [nt0] = [s for s in scale_sets(Clients(twin)) if s["name"] == "nt0"]
    assert "commonNames" in _sf_certificate(nt0)  # not reverted to thumbprints
    # Cleanup is off: the goal's secret kept through the cut-over window stays, at the version staged before
    # the rotation (the renewed version is never staged as a secret).
    goal_urls = [u for u in _secret_urls(nt0) if f"/secrets/{goal['certificate']}/" in u]
    assert goal_urls and renewed["version"] not in goal_urls[0]
    assert commands.plan(twin.plan_file, session=session).plan.steps == []


def test_an_interrupted_cleanup_still_runs_when_the_run_resumes(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    plan = _plan_with(twin, tmp_path, cleanup={"removeOldSecrets": True})
    session = inprocess_session(twin)
    state = str(tmp_path / "state")
    try:
        commands.apply(plan, state_location=state, session=session, options=RunOptions(until="cleanup-secrets:nt0"))
    except StoppedAtRequest:
        pass
    [nt0] = [s for s in scale_sets(Clients(twin)) if s["name"] == "nt0"]
    assert _secret_urls(nt0), "the old secret is still there before the cleanup"
    result = commands.apply(plan, state_location=state, session=session)
    assert not result.nothing_to_do
    assert result.state.step("cleanup-secrets:nt0").status == "done"
    [nt0] = [s for s in scale_sets(Clients(twin)) if s["name"] == "nt0"]
    assert _secret_urls(nt0) == []


def test_cleanup_keeps_the_secret_of_a_certificate_the_reverse_proxy_still_declares(twin_factory, tmp_path: Path) -> None:
    scenario = yaml.safe_load(Path(__file__).parents[2].joinpath("aztwin/scenarios/old-primary.yaml").read_text())
    cluster = scenario["clusters"][0]
    cluster["reverseProxyCertificate"] = {"thumbprint": cluster["certificate"]["thumbprint"]}  # one certificate for both
    path = tmp_path / "rp-shares-old.yaml"
    path.write_text(yaml.safe_dump(scenario))
    twin = twin_factory(scenario_file=path)
    plan = _plan_with(twin, tmp_path, cleanup={"removeOldSecrets": True})
    result = commands.apply(plan, state_location=str(tmp_path / "state"), session=inprocess_session(twin))
    [cleanup] = [s for s in result.plan.steps if s.kind == "cleanup_secrets"]
    assert all("/secrets/cluster-cert/" in u for u in cleanup.params_dict()["urls"])  # only the goal's secret goes
    [nt0] = [s for s in scale_sets(Clients(twin)) if s["name"] == "nt0"]
    [kept] = _secret_urls(nt0)  # the old certificate stays delivered: the reverse proxy declares it
    assert "/secrets/cluster-old/" in kept
    assert world_json(twin)["cluster"]["declaration"] == "common_name"
