"""Threat: ARM (or a proxy in front of it) answers a fleet's cluster listing with clusters it did not ask for.

A fleet file's ``select`` lists the classic clusters of one subscription (and resource group). Whatever the
listing holds, sfmigrate only accepts ids of classic clusters inside that subscription and resource group whose
parts are ARM names; anything else refuses the whole run, before any cluster is planned or changed. Placeholders
are filled from the cluster's id only: a hostile tag or name cannot reach a plan (migrate/fleet/resolve.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from armfront import ArmFront, arm_front
from twinkit import requests_json

REPO = Path(__file__).resolve().parents[2]
OTHER_SUB = "0c1d2e3f-0000-4000-8000-000000000002"


class ListingFront(ArmFront):
    """The twin, except that a subscription's or resource group's cluster listing answers ``listing``."""

    listing: bytes = b""

    def _forward(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if self.command == "GET" and path.endswith("/providers/Microsoft.ServiceFabric/clusters") and self.listing:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.listing)))
            self.end_headers()
            self.wfile.write(self.listing)
            return
        ArmFront._forward(self)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


def _fleet(twin: Any, front: str, tmp_path: Path, selection: dict[str, Any]) -> Path:
    document = yaml.safe_load((Path(twin.state_dir) / "fleet.yaml").read_text())
    document["cloud"]["armEndpoint"] = front
    cluster = document["clusters"][0]
    document["defaults"].update({"goal": cluster["goal"], "identity": cluster["identity"]})
    document["clusters"] = []
    document["select"] = [selection]
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _cluster(sub: str, group: str, name: str) -> dict[str, Any]:
    return {"id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ServiceFabric/clusters/{name}",
            "name": name, "type": "Microsoft.ServiceFabric/clusters", "location": "westeurope", "tags": {}, "properties": {}}


def _hostile(subscription: str) -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("another subscription", _cluster(OTHER_SUB, "rg-sf", "sfcluster"), "outside subscription"),
        ("another resource group", _cluster(subscription, "rg-elsewhere", "sfcluster"), "outside resource group"),
        ("a managed cluster", {**_cluster(subscription, "rg-sf", "sfcluster"), "id": _cluster(subscription, "rg-sf", "sfcluster")["id"].replace(
            "/clusters/", "/managedClusters/")}, "not a classic cluster id"),
        ("a name that is no ARM name", _cluster(subscription, "rg-sf", "sf{cluster}x"), "not a classic cluster id"),
        ("a path in the name", {**_cluster(subscription, "rg-sf", "x"), "id": _cluster(subscription, "rg-sf", "x")["id"] + "/../../../vaults/kv"},
         "not a classic cluster id"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_a_listed_cluster_outside_the_selection_refuses_the_whole_run(twin_factory, tmp_path: Path, case: int) -> None:
    twin = twin_factory("two-clusters")
    subscription = twin.world.default_subscription
    what, hostile, refusal = _hostile(subscription)[case]
    genuine = _cluster(subscription, "rg-sf", "sfcluster")
    with arm_front(twin) as (handler, front):
        handler.__bases__ = (ListingFront,)  # the front's handler class now answers the listing as told
        handler.listing = json.dumps({"value": [genuine, hostile]}).encode()
        path = _fleet(twin, front, tmp_path, {"subscription": subscription, "resourceGroup": "rg-sf"})
        planned = subprocess.run([sys.executable, "-m", "migrate", "fleet", "plan", str(path)], cwd=REPO,
                                 capture_output=True, text=True, timeout=120)
        applied = subprocess.run([sys.executable, "-m", "migrate", "fleet", "apply", str(path), "--yes", "--state",
                                  str(tmp_path / "state")], cwd=REPO, capture_output=True, text=True, timeout=120)
    for done in (planned, applied):
        assert done.returncode == 1, (what, done.stdout, done.stderr)
        [line] = done.stderr.splitlines()
        assert line.startswith("sfmigrate: select[0]: ARM listed") and refusal in line and "refused" in line, line
        assert done.stdout == ""  # no cluster was planned
    assert requests_json(twin)["mutating"] == 0
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())


def test_placeholders_take_the_ids_parts_never_a_listed_name_or_tag(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("two-clusters")
    subscription = twin.world.default_subscription
    listed = {**_cluster(subscription, "rg-sf", "sfcluster"), "name": "evil-name", "tags": {"cluster": "evil-tag"}}
    with arm_front(twin) as (handler, front):
        handler.__bases__ = (ListingFront,)
        handler.listing = json.dumps({"value": [listed]}).encode()
        path = _fleet(twin, front, tmp_path, {"subscription": subscription})
        document = yaml.safe_load(path.read_text())
        document["defaults"]["goal"]["certificateName"] = "{cluster}-x"
        path.write_text(yaml.safe_dump(document))
        planned = subprocess.run([sys.executable, "-m", "migrate", "fleet", "plan", str(path), "--format", "json", "--out",
                                  str(tmp_path / "plans")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert planned.returncode == 1, planned.stderr  # no certificate 'sfcluster-x' in the vault: RESOURCE_NOT_FOUND
    [row] = json.loads(planned.stdout)["clusters"]
    saved = json.loads(Path(row["saved_plan"]).read_text())
    assert saved["spec"]["goal"]["certificateName"] == "sfcluster-x"
    assert "evil" not in json.dumps(saved["spec"])
