"""What clients other than sfmigrate's SDK calls need from the twin (issue 12, "Any Azure client"):
the cloud metadata document per api-version, the resource providers listing, and ``manualupgrade`` with ``"*"``."""

from __future__ import annotations

import pytest

from migrate.cloud.endpoints import resolve_cloud
from migrate.spec import CloudSpec
from twinkit import Clients, world_json
from wirekit import Wire, assert_arm_error


@pytest.mark.parametrize("api_version, is_list", [("2015-01-01", False), ("2019-05-01", True), ("2022-09-01", False), ("2024-01-01", False)])
def test_the_metadata_document_is_one_object_except_for_2019_05_01(twin, api_version: str, is_list: bool) -> None:
    # hashicorp/go-azure-sdk reads 2019-05-01 as a list of clouds and 2022-09-01 as the current cloud's object.
    body = Wire(twin).get_json(f"/metadata/endpoints?api-version={api_version}", token=None)
    cloud = body[0] if is_list else body
    assert isinstance(body, list) is is_list
    assert cloud["resourceManager"].rstrip("/") == twin.base_url and cloud["authentication"]["loginEndpoint"].startswith(twin.base_url)


def test_sfmigrate_reads_the_current_cloud_from_the_2022_document(twin) -> None:
    endpoints = resolve_cloud(CloudSpec(name="Custom", armEndpoint=twin.base_url, caBundle=twin.ca_bundle))
    assert endpoints.arm == twin.base_url and endpoints.authority == twin.base_url


def test_the_providers_listing_names_every_served_type_with_api_versions(twin) -> None:
    wire = Wire(twin)
    sub = f"/subscriptions/{wire.sub}"
    compute = wire.get_json(f"{sub}/providers/microsoft.compute", api="2021-04-01")
    assert compute["namespace"] == "Microsoft.Compute" and compute["registrationState"] == "Registered"
    types = {t["resourceType"]: t for t in compute["resourceTypes"]}
    assert "2026-04-01" in types["virtualMachineScaleSets"]["apiVersions"] and types["virtualMachineScaleSets"]["locations"]
    listed = {p["namespace"] for p in wire.get_json(f"{sub}/providers", api="2021-04-01")["value"]}
    assert {"Microsoft.Compute", "Microsoft.ServiceFabric", "Microsoft.KeyVault", "Microsoft.ManagedIdentity", "Microsoft.Authorization"} <= listed
    assert_arm_error(wire.request("GET", f"{sub}/providers/Microsoft.Nothing", api="2021-04-01"), 404)
    assert wire.request("GET", f"{sub}/providers/Microsoft.Compute", api="2021-04-01", token=None).status_code == 401


def test_manualupgrade_with_a_star_upgrades_every_instance(twin_factory, tmp_path) -> None:
    from wirekit import scenario_file

    twin = twin_factory(scenario_file=scenario_file(tmp_path, "manual-star", upgrade_policy="Manual"))
    compute = Clients(twin).compute
    scale_set = compute.virtual_machine_scale_sets.get("rg-sf", "nt0")
    compute.virtual_machine_scale_sets.begin_update("rg-sf", "nt0", {"tags": {**(scale_set.tags or {}), "touched": "yes"},
        "properties": {"virtualMachineProfile": {"extensionProfile": {"extensionsTimeBudget": "PT1H30M"}}}}).result()
    lagging = [i.instance_id for i in compute.virtual_machine_scale_set_vms.list("rg-sf", "nt0") if not i.properties.latest_model_applied]
    assert lagging, "the model change must leave Manual-policy instances behind"
    compute.virtual_machine_scale_sets.begin_update_instances("rg-sf", "nt0", {"instanceIds": ["*"]}).result()
    assert all(i.properties.latest_model_applied for i in compute.virtual_machine_scale_set_vms.list("rg-sf", "nt0"))
    assert world_json(twin)["cluster"]["health_worst"] == "Healthy"
