"""A plan file aimed at a running twin, written by sfmigrate (the twin knows nothing of plan files).

The twin publishes its scenario's goals (cluster, vault, certificate, identity, pinned issuers) in
``GET /_emulator/world`` (``goal``, and ``goals``: one per cluster that has one); this turns each into an
``apiVersion: sfmigrate/v1`` plan file for that twin.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
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


def twin_fleet_document(goals: list[dict[str, Any]], arm_endpoint: str, ca_bundle: str) -> dict[str, Any]:
    """A fleet file (kind Fleet) for the twin's goals: each cluster listed with its own goal and identity."""
    clusters = []
    for goal in goals:
        plan = twin_plan_document(goal, arm_endpoint, ca_bundle)
        assert plan is not None
        clusters.append({"id": goal["cluster"], "goal": plan["goal"], "identity": plan["identity"]})
    return {
        "apiVersion": "sfmigrate/v1",
        "kind": "Fleet",
        "cloud": {"name": "Custom", "armEndpoint": arm_endpoint, "caBundle": ca_bundle},
        "defaults": {"nodeTypes": "discover", "rollout": {"pollIntervalSeconds": 0.05}},
        "clusters": clusters,
    }


@dataclass(frozen=True)
class TwinPlans:
    """The plan files written for a twin: ``plan_file`` for its ``goal``, ``plan_files`` one per goal by cluster id,
    and ``fleet_file`` (every goal's cluster in one fleet file) when it publishes two goals or more."""

    plan_file: Path | None = None
    plan_files: dict[str, Path] = field(default_factory=dict)
    fleet_file: Path | None = None


def _file_names(goals: list[dict[str, Any]]) -> list[str]:
    """``plan.yaml`` for the first goal (the twin's ``goal``), ``plan-<cluster>.yaml`` for the others; cluster names are
    unique per resource group only, so a name two goals share adds the resource group (then the subscription id)."""
    # /subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.ServiceFabric/clusters/{name} -> (name, g, s)
    keys = [(parts[-1], parts[4], parts[2]) for parts in (str(g["cluster"]).lower().split("/") for g in goals)]
    names = ["plan.yaml"]
    for key in keys[1:]:
        shared = sum(k[0] == key[0] for k in keys) > 1
        in_group = sum(k[:2] == key[:2] for k in keys) > 1
        names.append(f"plan-{'-'.join(key[:3] if in_group else key[:2] if shared else key[:1])}.yaml")
    return names


def write_twin_plans(world: dict[str, Any], arm_endpoint: str, ca_bundle: str, directory: str | Path) -> TwinPlans:
    """Write a plan file per goal of the twin whose ``/_emulator/world`` is ``world`` (none without a goal)."""
    goals = [g for g in world.get("goals") or [world.get("goal")] if g]
    written: dict[str, Path] = {}
    for goal, name in zip(goals, _file_names(goals)):
        document = twin_plan_document(goal, arm_endpoint, ca_bundle)
        assert document is not None
        path = Path(directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"# Plan for cluster '{str(goal['cluster']).rsplit('/', 1)[-1]}' of scenario '{world.get('scenario')}' on the Azure twin at {arm_endpoint}\n"
        path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        written[str(goal["cluster"])] = path
    fleet_file = None
    if len(goals) >= 2:
        fleet_file = Path(directory) / "fleet.yaml"
        header = f"# Fleet of the {len(goals)} clusters with a goal in scenario '{world.get('scenario')}' on the Azure twin at {arm_endpoint}\n"
        fleet_file.write_text(header + yaml.safe_dump(twin_fleet_document(goals, arm_endpoint, ca_bundle), sort_keys=False), encoding="utf-8")
    return TwinPlans(next(iter(written.values()), None), written, fleet_file)


def write_plans_for(twin: RunningTwinLike) -> TwinPlans:
    """A plan file per goal the twin publishes, in its state directory (``plan.yaml`` for its ``goal``)."""
    return write_twin_plans(twin.control().world(), twin.base_url, twin.ca_bundle, twin.state_dir)


def write_plan_for(twin: RunningTwinLike) -> Path | None:
    """``plan.yaml`` in the twin's state directory, for the goal it publishes; ``None`` without a goal."""
    return write_plans_for(twin).plan_file


def ready_line(ready_info: dict[str, Any], plan_file: Path | None, plan_files: dict[str, Path] | None = None,
               fleet_file: Path | None = None) -> dict[str, Any]:
    """``sfmigrate emulator serve``'s ready line: the twin's ready info with ``plan_file`` (the plan for the goal),
    ``plan_files`` (cluster id -> plan file, one per goal) and ``fleet_file`` (a fleet file of every goal's cluster,
    ``null`` with fewer than two goals) added, in the documented order (…, env, plan_file, plan_files, fleet_file,
    scenario)."""
    line = {key: value for key, value in ready_info.items() if key != "scenario"}
    line["plan_file"] = str(plan_file) if plan_file else None
    line["plan_files"] = {cluster: str(path) for cluster, path in (plan_files or {}).items()}
    line["fleet_file"] = str(fleet_file) if fleet_file else None
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


# -- `sfmigrate emulator env`: the environment of a running twin, as shell lines ------------------------------
READY_FILE = "ready.json"  # the twin writes it in its state folder while it serves (base_url, pid, env)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def env_lines(state_dir: str | Path, shell: str = "sh") -> list[str]:
    """``export NAME='value'`` (sh) or ``$env:NAME = 'value'`` (powershell) for the twin serving from
    ``state_dir``. The file is input: names must be environment-variable names and values strings, and both are
    quoted for the shell, so a value cannot run a command."""
    from .errors import UsageError

    path = Path(state_dir) / READY_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(1024 * 1024 + 1)
    except OSError:
        raise UsageError(f"--state-dir: no running twin there ({path} is missing; start one with "
                         "'sfmigrate emulator serve --state-dir DIR')") from None
    try:
        if len(raw) > 1024 * 1024:
            raise ValueError("larger than 1 MiB")
        env = json.loads(raw.decode("utf-8")).get("env")
        if not isinstance(env, dict):
            raise ValueError("no 'env' object")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--state-dir: {path} is not a twin's ready line: {exc}") from None
    lines = []
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name) or not isinstance(value, str):
            raise UsageError(f"--state-dir: {path}: env entry {name!r} is not NAME=string")
        if shell == "powershell":
            lines.append(f"$env:{name} = '" + value.replace("'", "''") + "'")
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return lines
