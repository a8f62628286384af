"""A change someone else makes to the cluster while sfmigrate runs is never reverted (issue 12).

SFRP's cluster spec (2021-06-01) declares no ``If-Match`` on PUT, so sfmigrate builds its full cluster PUT from a
GET made right before it (convert-cluster), never from the plan's snapshot."""

from __future__ import annotations

from pathlib import Path

from azure.mgmt.servicefabric.models import ClusterUpdateParameters, SettingsParameterDescription, SettingsSectionDescription

from migrate import commands
from twinkit import Clients, inprocess_session, world_json


def test_a_fabric_setting_added_after_the_plan_survives_the_conversion_put(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("goal-primary")
    clients = Clients(twin)
    added: list[str] = []

    def meanwhile(event: dict) -> None:
        if event["type"] == "step-start" and event["step"] == "convert-cluster" and not added:
            cluster = clients.servicefabric.clusters.get("rg-sf", "sfcluster")
            sections = list(cluster.fabric_settings or []) + [SettingsSectionDescription(
                name="Hosting", parameters=[SettingsParameterDescription(name="FirewallPolicyEnabled", value="true")])]
            clients.servicefabric.clusters.begin_update("rg-sf", "sfcluster", ClusterUpdateParameters(fabric_settings=sections)).result()
            twin.control().advance_clock(16 * 60)  # the operator's change settled well before the conversion
            added.append("Hosting")

    result = commands.apply(twin.plan_file, state_location=str(tmp_path / "state"), session=inprocess_session(twin), emit=meanwhile)
    assert added and result.state is not None and result.state.status == "complete"
    cluster = clients.servicefabric.clusters.get("rg-sf", "sfcluster")
    assert cluster.certificate is None and cluster.certificate_common_names is not None
    assert "Hosting" in [s.name for s in cluster.fabric_settings], "the conversion PUT reverted a concurrent change"
    state = world_json(twin)["cluster"]
    assert state["declaration"] == "common_name" and state["health_worst"] == "Healthy"
