"""A fleet file -> one plan model (PlanSpec) per cluster, validated exactly as a plan file.

Order: the explicit ``clusters[]`` (in file order), then each ``select[]``'s clusters as ARM lists them (sorted by
id), minus ``exclude[]``; a cluster both listed and selected keeps its explicit entry. Each cluster's sections are
``defaults`` deep-merged with its overrides (mappings merge, lists and scalars replace), then the placeholders
``{subscription}``, ``{resourceGroup}`` and ``{cluster}`` are substituted with the parts of the cluster's *id*,
never with anything else Azure returned (a tag or a name cannot inject text into a plan), and the parts must be
ARM names first. A selection only accepts ids of classic clusters inside its own subscription (and resource
group): ARM answering with anything else is refused (tests/security/test_fleet_selection.py).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from ..errors import OperationalError
from ..spec import API_VERSION, PlanSpec, _describe, _one_line, _show
from .spec import RESOURCE_GROUP, FleetFileError, FleetSelect, FleetSpec, cluster_id

PLACEHOLDERS = ("subscription", "resourceGroup", "cluster")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][-A-Za-z0-9]{0,62}")  # what a classic cluster's name may be (no '.', '/')
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ListClusters = Callable[[str, str | None], list[dict[str, Any]]]  # (subscription, resource group) -> raw ARM clusters


class SelectionRefused(OperationalError):
    """ARM listed something a selection must not accept (exit 1; nothing was planned or changed)."""


@dataclass(frozen=True)
class FleetMember:
    """One resolved cluster: where it came from (``clusters[3]``, ``select[0]``) and its plan model."""

    origin: str
    spec: PlanSpec

    @property
    def cluster_id(self) -> str:
        return self.spec.cluster.id

    @property
    def parts(self) -> tuple[str, str, str]:
        """(subscription, resource group, cluster name) of the id."""
        segments = self.cluster_id.split("/")
        return segments[2], segments[4], segments[-1]

    @property
    def name(self) -> str:
        return self.parts[2]


def id_placeholders(cluster: str) -> dict[str, str]:
    """The placeholder values of a cluster id, each checked to be an ARM name (ValueError otherwise)."""
    segments = cluster.split("/")
    subscription, group, name = segments[2], segments[4], segments[-1]
    if not _GUID.fullmatch(subscription):
        raise ValueError(f"subscription {_show(subscription)} is not a GUID")
    if not RESOURCE_GROUP.fullmatch(group):
        raise ValueError(f"resource group {_show(group)} is not an ARM resource group name")
    if not _CLUSTER_NAME.fullmatch(name):
        raise ValueError(f"cluster name {_show(name)} is not a Service Fabric cluster name (letters, digits, '-')")
    return {"subscription": subscription, "resourceGroup": group, "cluster": name}


def substitute(value: Any, values: dict[str, str], path: str = "") -> Any:
    """``value`` with every ``{placeholder}`` of its strings replaced; an unknown one is a ValueError naming its path."""
    if isinstance(value, str):
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise ValueError(f"{path}: unknown placeholder {{{_show(key, 30)[1:-1]}}} (use {{subscription}}, {{resourceGroup}} or {{cluster}})")
            return values[key]
        return _PLACEHOLDER.sub(one, value)
    if isinstance(value, dict):
        return {key: substitute(item, values, f"{path}.{key}" if path else str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, values, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge key by key, anything else (lists included) replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def member_spec(fleet: FleetSpec, cluster: str, overrides: dict[str, Any], origin: str, source: str) -> FleetMember:
    """The plan model of one cluster; a problem is one line: ``fleet.yaml: clusters[3] (sf-b): goal.vaultId: ...``."""
    name = cluster.rsplit("/", 1)[-1]
    where = f"{source}: {origin} ({_show(name, 40)[1:-1]})"
    try:
        values = id_placeholders(cluster)
        sections = substitute(deep_merge(fleet.defaults.sections(), overrides), values)
    except ValueError as exc:
        raise FleetFileError(_one_line(f"{where}: {exc}")) from None
    document = {"apiVersion": API_VERSION, "kind": "Migration", "cloud": fleet.cloud.model_dump(mode="json", exclude_none=True),
                "cluster": {"id": cluster}, **sections}
    try:
        spec = PlanSpec.model_validate(document)
    except ValidationError as exc:
        path, message = _describe(exc.errors()[0])
        raise FleetFileError(_one_line(f"{where}: {path or '(top level)'}: {message}")) from None
    return FleetMember(origin, spec)


def selected_ids(selection: FleetSelect, listed: list[dict[str, Any]], origin: str) -> list[str]:
    """The ids of the listed clusters this selection keeps (its tags all match), each checked to be a classic
    cluster inside the selection's subscription (and resource group): anything else refuses the whole run."""
    kept: list[str] = []
    for item in listed:
        raw_id = str(item.get("id") or "")
        try:
            rid = cluster_id(raw_id)
            id_placeholders(rid)
        except ValueError as exc:
            raise SelectionRefused(_one_line(f"{origin}: ARM listed {_show(raw_id, 120)}, not a classic cluster id ({exc}); refused, nothing was changed")) from None
        segments = rid.split("/")
        # ARM may spell the fixed segments in any case ("resourcegroups"): one spelling, so that a cluster selected
        # today and listed by id tomorrow has the same plan fingerprint (its journal resumes without --replan)
        rid = f"/subscriptions/{segments[2]}/resourceGroups/{segments[4]}/providers/Microsoft.ServiceFabric/clusters/{segments[-1]}"
        if segments[2].lower() != selection.subscription.lower():
            raise SelectionRefused(_one_line(f"{origin}: ARM listed {_show(rid, 160)} outside subscription {selection.subscription}; refused, nothing was changed"))
        if selection.resourceGroup and segments[4].lower() != selection.resourceGroup.lower():
            raise SelectionRefused(_one_line(f"{origin}: ARM listed {_show(rid, 160)} outside resource group {selection.resourceGroup}; refused, nothing was changed"))
        tags = item.get("tags")
        if all(isinstance(tags, dict) and tags.get(key) == value for key, value in selection.tags.items()):
            kept.append(rid)
    return sorted(kept, key=str.lower)


def resolve(fleet: FleetSpec, source: str, list_clusters: ListClusters | None = None) -> list[FleetMember]:
    """Every cluster of the fleet with its validated plan model (selections are listed through ``list_clusters``)."""
    excluded = {rid.lower() for rid in fleet.exclude}
    members: list[FleetMember] = []
    seen: set[str] = set()
    for index, entry in enumerate(fleet.clusters):
        seen.add(entry.id.lower())
        if entry.id.lower() not in excluded:
            members.append(member_spec(fleet, entry.id, entry.sections(), f"clusters[{index}]", source))
    for index, selection in enumerate(fleet.select):
        if list_clusters is None:
            raise FleetFileError(f"{source}: select[{index}]: selecting clusters needs ARM (not available here)")
        for rid in selected_ids(selection, list_clusters(selection.subscription, selection.resourceGroup), f"select[{index}]"):
            if rid.lower() in seen or rid.lower() in excluded:
                continue
            seen.add(rid.lower())
            members.append(member_spec(fleet, rid, {}, f"select[{index}]", source))
    return members


def labels(members: list[FleetMember]) -> dict[str, str]:
    """cluster id -> a short unique label: the name, or resource-group/name (then subscription/...) when shared."""
    keys = {m.cluster_id: m.parts for m in members}
    out: dict[str, str] = {}
    for rid, (sub, group, name) in keys.items():
        same_name = [k for k in keys.values() if k[2].lower() == name.lower()]
        same_group = [k for k in same_name if k[1].lower() == group.lower()]
        out[rid] = name if len(same_name) == 1 else f"{group}/{name}" if len(same_group) == 1 else f"{sub}/{group}/{name}"
    return out
