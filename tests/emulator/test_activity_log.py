"""The activity log (``Microsoft.Insights/eventtypes/management/values``): the writes the twin received, with
their caller and outcome, filtered as the REST docs allow (docs/twin.md, "Activity log"). Writes go through
Microsoft's SDKs; the log is read on the wire as az reads it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import pytest
from azure.core.exceptions import HttpResponseError

from aztwin.providers.insights.models import MAX_EVENTS, ActivityLog, Write
from sfsteps import Step
from twinkit import Clients, requests_json, world_json
from wirekit import Wire, assert_arm_error

CN = "sfcluster.contoso.com"


def _since(twin: Any, hours: float = 1) -> str:
    return (twin.world.now() - dt.timedelta(hours=hours)).isoformat()


def _events(wire: Wire, filter_text: str) -> list[dict[str, Any]]:
    url = (f"/subscriptions/{wire.sub}/providers/Microsoft.Insights/eventtypes/management/values"
           f"?api-version=2015-04-01&$filter={quote(filter_text)}")
    events: list[dict[str, Any]] = wire.get_json(url)["value"]
    return events


def test_a_write_is_logged_as_started_then_accepted_then_succeeded_with_its_caller(twin: Any) -> None:
    wire = Wire(twin)
    Step(Clients(twin), "kv-sf-basic").add_secret("cluster-cert")  # a scale-set PUT: a long-running write
    twin.control().advance_clock(3600)  # its operation ends
    events = _events(wire, f"eventTimestamp ge '{_since(twin, 2)}' and resourceGroupName eq 'rg-sf'")
    puts = [e for e in reversed(events) if e["operationName"]["value"] == "Microsoft.Compute/virtualMachineScaleSets/write"]
    assert [e["status"]["value"] for e in puts][:3] == ["Started", "Accepted", "Succeeded"]
    assert len({e["correlationId"] for e in puts[:3]}) == 1 and puts[0]["eventName"]["value"] == "BeginRequest"
    assert all(e["resourceId"].endswith("/virtualMachineScaleSets/nt0") and e["resourceGroupName"] == "rg-sf" for e in puts)
    writers = {r["caller"] for r in requests_json(twin)["requests"] if r["mutating"] and r["caller"]}
    assert {e["caller"] for e in events} == writers and len(writers) == 1  # the token's object id
    stamps = [e["eventTimestamp"] for e in events]
    assert stamps == sorted(stamps, reverse=True)  # newest first


def test_a_refused_write_is_logged_as_failed_with_its_error(twin: Any) -> None:
    wire = Wire(twin)
    step = Step(Clients(twin), "kv-sf-basic")
    with pytest.raises(HttpResponseError):
        step.patch_thumbprints("0" * 40, "1" * 40)  # thumbprints no node has: SFRP accepts, or refuses with a code
    cluster_id = world_json(twin)["cluster"]["id"]
    events = _events(wire, f"eventTimestamp ge '{_since(twin)}' and resourceId eq '{cluster_id}'")
    failed = [e for e in events if e["status"]["value"] == "Failed"]
    assert failed and all(e["level"] == "Error" and e["resourceId"].lower() == cluster_id.lower() for e in failed)
    assert all(e["operationName"]["value"] == "Microsoft.ServiceFabric/clusters/write" for e in events)
    assert _events(wire, f"eventTimestamp ge '{_since(twin)}' and resourceId eq '{cluster_id}' and status eq 'Failed'") == failed


def test_the_time_range_and_subject_filter_the_log(twin: Any) -> None:
    wire = Wire(twin)
    Step(Clients(twin), "kv-sf-basic").add_secret("cluster-cert")
    assert _events(wire, f"eventTimestamp ge '{_since(twin)}'")
    later = (twin.world.now() + dt.timedelta(hours=1)).isoformat()
    assert _events(wire, f"eventTimestamp ge '{later}'") == []
    assert _events(wire, f"eventTimestamp ge '{_since(twin, 48)}' and eventTimestamp le '{_since(twin, 24)}'") == []
    assert _events(wire, f"eventTimestamp ge '{_since(twin)}' and resourceGroupName eq 'rg-other'") == []
    assert _events(wire, f"eventTimestamp ge '{_since(twin)}' and caller eq 'nobody'") == []


@pytest.mark.parametrize("bad", [
    "",  # the time range is required
    "resourceGroupName eq 'rg-sf'",
    "eventTimestamp ge '2026-01-01T00:00:00Z' and level eq 'Error'",
    "eventTimestamp ge '2026-01-01T00:00:00Z' and resourceGroupName eq 'a' and resourceUri eq 'b'",
    "eventTimestamp ge 'yesterday'",
])
def test_a_filter_outside_the_documented_patterns_is_a_400(twin: Any, bad: str) -> None:
    wire = Wire(twin)
    url = f"/subscriptions/{wire.sub}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter={quote(bad)}"
    assert "$filter" in assert_arm_error(wire.request("GET", url))["message"]


def test_the_log_keeps_only_the_newest_events(twin: Any) -> None:
    log = ActivityLog(twin.world)
    for index in range(MAX_EVENTS):
        log.record(Write("PUT", f"/subscriptions/{twin.world.default_subscription}/resourceGroups/rg-sf/providers/"
                                f"Microsoft.Compute/virtualMachineScaleSets/s{index}", 200, "caller", "tenant", "", {}))
    assert len(log.events) == MAX_EVENTS and log.events[0]["resourceId"].endswith("/s2500")
