"""A plan file aimed at a running twin, written by sfmigrate (the twin knows nothing of plan files).

The twin publishes its scenario's goal (cluster, vault, certificate, identity, pinned issuers) in
``GET /_emulator/world``; this turns it into an ``apiVersion: sfmigrate/v1`` plan file for that twin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import yaml


class _Controls(Protocol):
    def world(self) -> dict[str, Any]: ...


class RunningTwinLike(Protocol):
    """What sfmigrate needs of a running twin (``aztwin.RunningTwin`` has it; this module never imports aztwin)."""

    @property
    def base_url(self) -> str: ...

    @property
    def state_dir(self) -> Path: ...

    @property
    def ca_bundle(self) -> str: ...

    def control(self) -> _Controls: ...


def twin_plan_document(goal: dict[str, Any] | None, arm_endpoint: str, ca_bundle: str) -> dict[str, Any] | None:
    """The plan for the twin's published goal (``None`` for a scenario without one)."""
    if not goal:
        return None
    document: dict[str, Any] = {
        "apiVersion": "sfmigrate/v1",
        "kind": "Migration",
        "cloud": {"name": "Custom", "armEndpoint": arm_endpoint, "caBundle": ca_bundle},
        "cluster": {"id": goal["cluster"]},
        "goal": {
            "vaultId": goal["vault"],
            "certificateName": goal["certificate"],
            "pinnedIssuers": goal["pinnedIssuers"],
        },
        "identity": {"id": goal["identity"]},
        "nodeTypes": "discover",
        # The twin's time runs fast: re-read resources often (operations carry their own retry-after-ms).
        "rollout": {"pollIntervalSeconds": 0.05},
    }
    if goal.get("commonName"):
        document["goal"]["commonName"] = goal["commonName"]
    if goal.get("allowUnpinnedIssuers"):
        document["goal"]["allowUnpinnedIssuers"] = True
    return document


def write_twin_plan(world: dict[str, Any], arm_endpoint: str, ca_bundle: str, directory: str | Path) -> Path | None:
    """Write ``plan.yaml`` for the twin whose ``/_emulator/world`` is ``world``; ``None`` without a goal."""
    document = twin_plan_document(world.get("goal"), arm_endpoint, ca_bundle)
    if document is None:
        return None
    path = Path(directory) / "plan.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Plan for scenario '{world.get('scenario')}' on the Azure twin at {arm_endpoint}\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def write_plan_for(twin: RunningTwinLike) -> Path | None:
    """``plan.yaml`` in the twin's state directory, for the goal it publishes; ``None`` without a goal."""
    return write_twin_plan(twin.control().world(), twin.base_url, twin.ca_bundle, twin.state_dir)


def ready_line(ready_info: dict[str, Any], plan_file: Path | None) -> dict[str, Any]:
    """``sfmigrate emulator serve``'s ready line: the twin's ready info with ``plan_file`` added, in the
    documented order (…, env, plan_file, scenario)."""
    line = {key: value for key, value in ready_info.items() if key != "scenario"}
    line["plan_file"] = str(plan_file) if plan_file else None
    line["scenario"] = ready_info.get("scenario")
    return line


def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1 (what ``--host`` may be without --allow-remote)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere
