"""DELETE of a scale set's extension child resource (VirtualMachineScaleSetExtensions_Delete), through the real
compute client: the extension leaves the model, the Service Fabric extension keeps its protected settings, and
CRP's dangling provisionAfterExtensions rule still holds (issue 12: the runbooks' rollback uses it)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from twinkit import Clients, world_json


def _extensions(twin) -> dict[str, dict]:
    return {e["name"]: e for e in world_json(twin)["scale_sets"][0]["extensions"]}


def test_deleting_an_extension_keeps_the_others_protected_settings(twin) -> None:
    compute = Clients(twin).compute
    compute.virtual_machine_scale_set_extensions.begin_create_or_update("rg-sf", "nt0", "Probe", {
        "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}}).result()
    assert "Probe" in _extensions(twin)
    compute.virtual_machine_scale_set_extensions.begin_delete("rg-sf", "nt0", "Probe").result()
    extensions = _extensions(twin)
    assert "Probe" not in extensions and extensions["nt0_ServiceFabricNode"]["hasProtectedSettings"] is True
    compute.virtual_machine_scale_set_extensions.begin_delete("rg-sf", "nt0", "Probe").result()  # absent: 204, no error
    assert world_json(twin)["cluster"]["health_worst"] == "Healthy"


def test_an_extension_another_provisions_after_cannot_be_deleted(twin) -> None:
    compute = Clients(twin).compute
    compute.virtual_machine_scale_set_extensions.begin_create_or_update("rg-sf", "nt0", "First", {
        "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1"}}).result()
    compute.virtual_machine_scale_set_extensions.begin_update("rg-sf", "nt0", "nt0_ServiceFabricNode", {
        "properties": {"provisionAfterExtensions": ["First"]}}).result()
    with pytest.raises(HttpResponseError) as refused:
        compute.virtual_machine_scale_set_extensions.begin_delete("rg-sf", "nt0", "First").result()
    assert "provisionAfterExtensions" in str(refused.value) and "First" in _extensions(twin)
