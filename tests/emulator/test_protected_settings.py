"""Protected settings are write-only: a GET never returns them, a full PUT built from a GET drops them, and
the Service Fabric extension then fails on the next instance update (docs/twin.md, "Protected settings").
Extension child resources keep them: PATCH merges, and only what it names changes."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from aztwin.clock import ManualClock
from aztwin.scenario import build_world, builtin_names, load_scenario
from sfsteps import RG, Step
from twinkit import Clients, world_json

RULE = "ServiceFabricProtectedSettingsMissing"


def extensions(twin: Any, scale_set: str = "nt0") -> dict[str, dict[str, Any]]:
    found = next(s for s in world_json(twin)["scale_sets"] if s["name"] == scale_set)
    return {e["name"]: e for e in found["extensions"]}


def all_instance_ids(compute: Any, name: str = "nt0") -> list[str]:
    return [vm.instance_id for vm in compute.virtual_machine_scale_set_vms.list(RG, name)]


def test_a_get_never_returns_protected_settings(twin_factory: Any) -> None:
    twin = twin_factory("old-primary")
    compute = Clients(twin).compute
    assert extensions(twin)["nt0_ServiceFabricNode"]["hasProtectedSettings"] is True
    raw = compute.virtual_machine_scale_sets.get(RG, "nt0", cls=lambda response, *_: response.http_response.json())
    sf = next(e for e in raw["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"] if e["name"] == "nt0_ServiceFabricNode")
    assert "protectedSettings" not in sf["properties"] and sf["properties"]["settings"]["nodeTypeRef"] == "nt0"
    child = compute.virtual_machine_scale_set_extensions.get(RG, "nt0", "nt0_ServiceFabricNode", cls=lambda response, *_: response.http_response.json())
    assert "protectedSettings" not in child["properties"] and child["properties"]["provisioningState"] == "Succeeded"
    listed = compute.virtual_machine_scale_set_extensions.list(RG, "nt0")
    assert [e.name for e in listed] == ["nt0_ServiceFabricNode"]
    assert "twin-redacted" not in str(world_json(twin))  # the world says whether, never what


def test_a_full_put_built_from_a_get_drops_them_and_the_next_instance_update_fails(twin_factory: Any) -> None:
    """The wrong step: GET the scale set, change a setting, PUT it back (what sfmigrate did before issue 10).
    nt1's policy is Manual: the PUT is accepted, and the next instance update fails, naming the rule."""
    twin = twin_factory("multi-nodetype")
    step = Step(Clients(twin), "kv-sf-multi")
    scale_set = step.compute.virtual_machine_scale_sets.get(RG, "nt1")
    step._sf_extension(scale_set).properties.settings["enableParallelJobs"] = False
    step.compute.virtual_machine_scale_sets.begin_create_or_update(RG, "nt1", scale_set).result()  # accepted
    assert extensions(twin, "nt1")["nt1_ServiceFabricNode"]["hasProtectedSettings"] is False
    with pytest.raises(HttpResponseError) as caught:
        step.compute.virtual_machine_scale_sets.begin_update_instances(RG, "nt1", {"instanceIds": ["0"]}).result()
    assert RULE in str(caught.value)
    view = step.compute.virtual_machine_scale_set_vms.get_instance_view(RG, "nt1", "0")
    sf = next(e for e in view.extensions if e.name == "nt1_ServiceFabricNode")
    assert sf.statuses[0].code == "ProvisioningState/failed" and RULE in sf.statuses[0].message
    instance = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt1")["instances"][0]
    assert instance["extensions"]["nt1_ServiceFabricNode"]["status"] == "failed"


def test_under_the_automatic_policy_the_full_put_itself_fails(twin_factory: Any) -> None:
    twin = twin_factory("old-primary")
    step = Step(Clients(twin), "kv-sf-old-primary")
    scale_set = step.compute.virtual_machine_scale_sets.get(RG, "nt0")
    step._sf_extension(scale_set).properties.settings["enableParallelJobs"] = False
    with pytest.raises(HttpResponseError) as caught:  # the update includes the instances, which fail
        step.compute.virtual_machine_scale_sets.begin_create_or_update(RG, "nt0", scale_set).result()
    assert RULE in str(caught.value) and "VMExtensionProvisioningError" in str(caught.value)
    assert extensions(twin)["nt0_ServiceFabricNode"]["hasProtectedSettings"] is False


def test_the_same_change_by_extension_patch_keeps_them_and_rolls_out_like_a_model_change(twin_factory: Any) -> None:
    twin = twin_factory("multi-nodetype")
    compute = Clients(twin).compute
    before = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt1")["modelVersion"]
    patched = compute.virtual_machine_scale_set_extensions.begin_update(
        RG, "nt1", "nt1_ServiceFabricNode", {"properties": {"settings": {"enableParallelJobs": False}}},
    ).result()
    assert patched.properties.settings["enableParallelJobs"] is False and patched.properties.settings["nodeTypeRef"] == "nt1"
    world = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt1")
    assert world["modelVersion"] == before + 1 and not any(i["latestModelApplied"] for i in world["instances"])  # Manual policy
    assert extensions(twin, "nt1")["nt1_ServiceFabricNode"]["hasProtectedSettings"] is True
    compute.virtual_machine_scale_sets.begin_update_instances(RG, "nt1", {"instanceIds": all_instance_ids(compute, "nt1")}).result()
    instances = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt1")["instances"]
    assert all(i["latestModelApplied"] and i["extensions"]["nt1_ServiceFabricNode"]["status"] == "succeeded" for i in instances)


def test_an_extension_put_creates_a_child_and_an_unknown_patch_is_not_found(twin_factory: Any) -> None:
    twin = twin_factory("old-primary")
    compute = Clients(twin).compute
    body = {"properties": {"publisher": "Microsoft.Compute", "type": "CustomScriptExtension", "typeHandlerVersion": "1.10",
                           "settings": {"commandToExecute": "echo"}, "protectedSettings": {"secret": "x"}}}
    created = compute.virtual_machine_scale_set_extensions.begin_create_or_update(RG, "nt0", "script", body).result()
    assert created.name == "script" and created.properties.protected_settings is None
    assert extensions(twin)["script"]["hasProtectedSettings"] is True
    with pytest.raises(HttpResponseError) as caught:
        compute.virtual_machine_scale_set_extensions.begin_update(RG, "nt0", "absent", {"properties": {"settings": {}}}).result()
    assert caught.value.status_code == 404


@pytest.mark.parametrize("scenario", builtin_names())
def test_every_built_in_scenarios_sf_extension_has_protected_settings(scenario: str) -> None:
    spec, _ = load_scenario(scenario)
    world = build_world(spec, "https://127.0.0.1:1", clock=ManualClock()).snapshot()
    sf = [e for s in world["scale_sets"] for e in s["extensions"] if e["type"] in ("ServiceFabricNode", "ServiceFabricLinuxNode")]
    assert sf and all(e["hasProtectedSettings"] for e in sf)
