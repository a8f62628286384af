"""Instances listed with ``$select=instanceView`` (what `az vmss get-instance-view --instance-id '*'` sends): each
entry carries only its instance view, never the model or the extension children (``resources``) whose ``type``
next to ``properties.type`` breaks az's client flattening (docs/twin.md, "Instance views").
"""

from __future__ import annotations

from typing import Any

from twinkit import Clients
from wirekit import API, Wire, assert_arm_error


def _instances(wire: Wire, query: str) -> list[dict[str, Any]]:
    url = f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0/virtualMachines?{query}&api-version={API['compute']}"
    value: list[dict[str, Any]] = wire.get_json(url)["value"]
    return value


def test_a_selected_instance_view_is_all_an_entry_carries(twin: Any) -> None:
    wire = Wire(twin)
    full = _instances(wire, "$expand=instanceView")
    assert full and all(entry["resources"] for entry in full)  # unselected: model, extension children, view
    selected = _instances(wire, "$select=instanceView&$expand=instanceView")
    assert len(selected) == len(full)
    for entry, whole in zip(selected, full):
        assert set(entry) == {"properties"} and set(entry["properties"]) == {"instanceView"}
        view = entry["properties"]["instanceView"]
        assert {k: v for k, v in view.items() if k != "statuses"} == {k: v for k, v in whole["properties"]["instanceView"].items() if k != "statuses"}
        assert {e["name"] for e in view["extensions"]} == {r["name"] for r in whole["resources"]}
        assert all(e["statuses"][0]["code"].startswith("ProvisioningState/") for e in view["extensions"])
    statuses = _instances(wire, "$select=instanceView/statuses")
    assert all(set(e["properties"]["instanceView"]) == {"statuses"} for e in statuses)


def test_a_selection_outside_the_documented_values_is_refused(twin: Any) -> None:
    wire = Wire(twin)
    url = f"{wire.rg}/providers/Microsoft.Compute/virtualMachineScaleSets/nt0/virtualMachines?$select=sku&api-version={API['compute']}"
    assert "$select" in assert_arm_error(wire.request("GET", url))["message"]


def test_the_sdk_reads_every_instance_view_through_the_selection(twin: Any) -> None:
    compute = Clients(twin).compute
    views = [vm.instance_view for vm in compute.virtual_machine_scale_set_vms.list("rg-sf", "nt0", select="instanceView", expand="instanceView")]
    assert views and all(v is not None and v.extensions for v in views)
    assert all(s.code == "ProvisioningState/succeeded" for v in views for e in v.extensions for s in e.statuses[:1])
