"""The fleet file (``apiVersion: sfmigrate/v1``, ``kind: Fleet``): many clusters, one plan model each.

A fleet file names clusters explicitly (``clusters[]``, each with per-cluster overrides) or selects the classic
clusters of a subscription / resource group / tag set (``select[]``), minus ``exclude[]``. ``defaults`` holds any
plan-file section except apiVersion, kind, cloud and cluster; its string values (and the overrides') may use the
placeholders ``{subscription}``, ``{resourceGroup}`` and ``{cluster}``, substituted with the cluster id's parts
(migrate.fleet.resolve). Each resolved cluster is validated exactly as a plan file (migrate.spec.PlanSpec).
The JSON Schema in ``plans/fleet.schema.json`` is generated from these models (:func:`write_fleet_schema`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from ..errors import UsageError
from ..spec import (
    API_VERSION, ARM_ID_PATTERN, CloudSpec, ClusterRef, PlanFileError, _describe, _one_line, _show, _Strict,
)

# Plan-file sections a fleet may set for every cluster (defaults) or for one (clusters[] overrides).
SECTIONS = ("goal", "identity", "nodeTypes", "keyVaultExtension", "cleanup", "checks", "rollout")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# ARM resource group names: 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending in '.'.
RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")
_SECTION_DOC = "A plan-file section (see plans/schema.json); string values may use {subscription}, {resourceGroup}, {cluster}."


class FleetFileError(PlanFileError):
    """The fleet file cannot be used (exit 64); one line naming the file, the cluster and the field."""


def cluster_id(value: str) -> str:
    """A classic cluster id, checked as a plan file's ``cluster.id`` (one-line ValueError otherwise)."""
    try:
        return str(ClusterRef(id=value).id)
    except ValidationError as exc:
        raise ValueError(_describe(exc.errors()[0])[1]) from None


class _Sections(_Strict):
    goal: dict[str, Any] | None = Field(default=None, description=_SECTION_DOC)
    identity: dict[str, Any] | None = Field(default=None, description=_SECTION_DOC)
    nodeTypes: Literal["discover"] | list[str] | None = Field(default=None, description=_SECTION_DOC)
    keyVaultExtension: dict[str, Any] | None = Field(default=None, description=_SECTION_DOC)
    cleanup: dict[str, Any] | None = Field(default=None, description=_SECTION_DOC)
    checks: dict[str, Any] | None = Field(default=None, description=_SECTION_DOC)
    rollout: dict[str, Any] | None = Field(default=None, description=_SECTION_DOC)

    def sections(self) -> dict[str, Any]:
        """The sections this entry sets (unset ones are absent, so they do not erase a default)."""
        return {name: getattr(self, name) for name in SECTIONS if getattr(self, name) is not None}


class FleetDefaults(_Sections):
    """Sections every cluster of the fleet gets (deep-merged under each cluster's overrides)."""


class FleetCluster(_Sections):
    id: str = Field(description="The classic cluster's resource id (Microsoft.ServiceFabric/clusters).",
                    json_schema_extra={"pattern": ARM_ID_PATTERN})

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return cluster_id(value)


class FleetSelect(_Strict):
    subscription: str = Field(description="The subscription (GUID) whose classic clusters are listed through ARM.",
                              json_schema_extra={"pattern": f"^{_GUID.pattern}$"})
    resourceGroup: str | None = Field(default=None, description="Only clusters of this resource group.")
    tags: dict[str, str] = Field(default_factory=dict, description="Only clusters carrying every one of these tags (exact values).")

    @field_validator("subscription")
    @classmethod
    def _subscription(cls, value: str) -> str:
        if not _GUID.fullmatch(value.strip()):
            raise ValueError("must be a subscription id (a GUID)")
        return value.strip().lower()

    @field_validator("resourceGroup")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None and not RESOURCE_GROUP.fullmatch(value):
            raise ValueError("not a resource group name (1-90 letters, digits, '_', '-', '.', '(', ')')")
        return value


class FleetSpec(_Strict):
    apiVersion: Literal["sfmigrate/v1"] = Field(description="The file format version.")
    kind: Literal["Fleet"] = Field(description="Fleet (a plan file's kind is Migration).")
    cloud: CloudSpec = Field(default_factory=CloudSpec, description="Which Azure cloud (or the twin): one per fleet.")
    defaults: FleetDefaults = Field(default_factory=FleetDefaults, description="Plan-file sections shared by every cluster.")
    clusters: list[FleetCluster] = Field(default_factory=list, description="Clusters by id, each with optional overrides.")
    select: list[FleetSelect] = Field(default_factory=list, description="Classic clusters discovered through ARM.")
    exclude: list[str] = Field(default_factory=list, description="Cluster ids left out (of clusters and select).",
                               json_schema_extra={"items": {"type": "string", "pattern": ARM_ID_PATTERN}})

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: list[str]) -> list[str]:
        out = []
        for index, item in enumerate(value):
            try:
                out.append(cluster_id(item))
            except ValueError as exc:
                raise ValueError(f"[{index}]: {exc}") from None
        return out

    @field_validator("clusters")
    @classmethod
    def _unique(cls, value: list[FleetCluster]) -> list[FleetCluster]:
        seen: set[str] = set()
        for index, entry in enumerate(value):
            if entry.id.lower() in seen:
                raise ValueError(f"[{index}]: {_show(entry.id.rsplit('/', 1)[-1])} is listed twice")
            seen.add(entry.id.lower())
        return value


def parse_fleet(text: str, source: str = "fleet file") -> FleetSpec:
    """Parse and validate a fleet file's text (its own fields; each cluster's plan is checked when resolved)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise FleetFileError(_one_line(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}")) from None
    except (RecursionError, ValueError) as exc:
        raise FleetFileError(_one_line(f"{source}: not valid YAML: {type(exc).__name__}")) from None
    if not isinstance(data, dict):
        raise FleetFileError(f"{source}: a fleet file is a YAML mapping starting with 'apiVersion: {API_VERSION}' and 'kind: Fleet'")
    if data.get("apiVersion") != API_VERSION:
        raise FleetFileError(_one_line(f"{source}: apiVersion: must be '{API_VERSION}' (got {_show(data.get('apiVersion'))})"))
    if data.get("kind") != "Fleet":
        raise FleetFileError(_one_line(f"{source}: kind: must be 'Fleet' (got {_show(data.get('kind'))}; a plan file is run with plan/apply)"))
    try:
        fleet = FleetSpec.model_validate(data)
    except ValidationError as exc:
        path, message = _describe(exc.errors()[0])
        raise FleetFileError(_one_line(f"{source}: {path or '(top level)'}: {message}")) from None
    except RecursionError:
        raise FleetFileError(f"{source}: a value refers to itself (YAML anchor loop)") from None
    if not fleet.clusters and not fleet.select:
        raise FleetFileError(f"{source}: clusters: list at least one cluster id, or select clusters by subscription")
    return fleet


def load_fleet(path: str | Path) -> FleetSpec:
    from ..input_files import read_text_limited

    try:
        text = read_text_limited(path, "FLEETFILE")
    except UsageError as exc:
        raise FleetFileError(str(exc)) from None
    return parse_fleet(text, str(path))


def fleet_json_schema() -> dict[str, Any]:
    from ..spec import model_schema

    return model_schema(FleetSpec, "https://sfmigrate.dev/schema/fleet-v1.json",
                        "sfmigrate fleet file (apiVersion sfmigrate/v1, kind Fleet)")


def fleet_schema_text() -> str:
    from ..spec import schema_document

    return schema_document(fleet_json_schema())


def write_fleet_schema(path: str | Path) -> Path:
    """``python -c "from migrate.fleet.spec import write_fleet_schema; write_fleet_schema('plans/fleet.schema.json')"``."""
    target = Path(path)
    target.write_text(fleet_schema_text(), encoding="utf-8")
    return target
