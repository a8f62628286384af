"""Linux node types (issue 10): the goal stays a versioned VMSS secret, the cluster goes by common name, and a
renewal is a rotation that `plan` shows alone (no cluster upgrade) and `apply` performs. Afterwards a scale-out
and a reimage stay Healthy: every node gets the presented version from the model (waagent keeps only the goal
state's files). In-process sessions against the twin with the real SDK clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migrate import commands
from migrate.errors import ExitCode
from twinkit import Clients, inprocess_session, world_json

RG = "rg-sf"


def _healthy(twin: Any) -> dict[str, Any]:
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    return dict(cluster)


def _presented(cluster: dict[str, Any], node_type: str | None = None) -> set[str]:
    return {n["presents"] for t in cluster["node_types"] if node_type in (None, t["name"]) for n in t["nodes"]}


def _urls(twin: Any, name: str) -> list[str]:
    return list(next(s for s in world_json(twin)["scale_sets"] if s["name"] == name)["secrets"])


def _renew(twin: Any, vault: str) -> str:
    renewed = twin.control().call("POST", "/_emulator/certificates/renew", {"vault": vault, "certificate": "cluster-cert"})  # valid at once on Azure's clock
    return str(renewed["thumbprint"])


def test_linux_migrates_then_rotates_a_renewal_then_scales_out_and_reimages_healthy(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("linux-nodetype")
    session = inprocess_session(twin)
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    assert [s.name for s in result.plan.steps] == ["deliver-by-secret:nt0", "convert-cluster"]
    assert any(f.code == "LINUX_DELIVERY_BY_VMSS_SECRET" for f in result.plan.findings)
    cluster = _healthy(twin)
    assert cluster["declaration"] == "common_name"
    [first_url] = _urls(twin, "nt0")
    first = _presented(cluster)
    assert len(first) == 1

    renewed = _renew(twin, "kv-sf-linux")
    rotation = commands.plan(twin.plan_file, session=session)
    assert rotation.exit_code == ExitCode.CHANGES_PENDING
    assert [s.name for s in rotation.plan.steps] == ["deliver-by-secret:nt0"]  # exactly the rotation
    assert not any(s.cluster_upgrade for s in rotation.plan.steps)
    [step] = rotation.plan.steps
    added = [c.after for c in step.changes if isinstance(c.after, list)]
    assert added and all(first_url in [v["certificateUrl"] for v in a] for a in added)  # the old version stays
    new_urls = {v["certificateUrl"] for a in added for v in a} - {first_url}
    assert len(new_urls) == 1 and "/secrets/cluster-cert/" in next(iter(new_urls))

    # The same state folder: the rotation's roll-out waits out the settle window of the migration's last cluster
    # upgrade (journal cluster_upgrade_ended_at; otherwise the twin counts it against health_worst).
    again = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert again.state is not None and again.state.status == "complete"
    assert [s.name for s in again.plan.steps] == ["deliver-by-secret:nt0"]
    cluster = _healthy(twin)
    assert _presented(cluster) == {renewed} and cluster["declaration"] == "common_name"
    assert set(_urls(twin, "nt0")) == {first_url} | new_urls
    assert commands.plan(twin.plan_file, session=session).exit_code == ExitCode.OK

    from azure.mgmt.compute.models import Sku, VirtualMachineScaleSetUpdate

    compute = Clients(twin).compute
    capacity = compute.virtual_machine_scale_sets.get(RG, "nt0").sku.capacity
    compute.virtual_machine_scale_sets.begin_update(RG, "nt0", VirtualMachineScaleSetUpdate(sku=Sku(capacity=capacity + 1))).result()
    compute.virtual_machine_scale_set_vms.begin_reimage(RG, "nt0", "1").result()
    nt0 = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt0")
    assert len(nt0["instances"]) == capacity + 1
    cluster = _healthy(twin)
    assert _presented(cluster) == {renewed}
    assert all(c["path"].startswith("/var/lib/waagent/") for i in nt0["instances"] for c in i["certificates"])


def test_linux_rotation_with_cleanup_drops_the_old_version_after_the_roll_out(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("linux-nodetype")
    document = yaml.safe_load(twin.plan_file.read_text())
    document["cleanup"] = {"removeOldSecrets": True}
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(document))
    session = inprocess_session(twin)
    commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    [first_url] = _urls(twin, "nt0")  # cleanup never drops the version the nodes present
    renewed = _renew(twin, "kv-sf-linux")
    rotation = commands.plan(plan_file, session=session)
    assert [s.name for s in rotation.plan.steps] == ["deliver-by-secret:nt0", "cleanup-secrets:nt0"]
    assert not any(s.cluster_upgrade for s in rotation.plan.steps)
    commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    cluster = _healthy(twin)
    assert _presented(cluster) == {renewed}
    [url] = _urls(twin, "nt0")
    assert url != first_url


def test_multi_nodetype_mixes_the_key_vault_extension_on_windows_and_secrets_on_linux(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("multi-nodetype")
    session = inprocess_session(twin)
    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    kinds = {s.name.split(":")[-1]: s.kind for s in result.plan.steps if ":" in s.name and not s.name.startswith("stage-goal")}
    assert kinds == {"nt0": "install_kv_extension", "nt1": "install_kv_extension", "nt2": "deliver_by_secret"}
    cluster = _healthy(twin)
    assert cluster["declaration"] == "common_name"
    renewed = _renew(twin, "kv-sf-multi")
    rotation = commands.plan(twin.plan_file, session=session)
    assert [s.name for s in rotation.plan.steps] == ["deliver-by-secret:nt2"]  # Windows renews by itself
    commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=session)
    twin.control().advance_clock(3600)  # the Key Vault extension's next poll on Windows
    cluster = _healthy(twin)
    assert _presented(cluster, "nt2") == {renewed}
