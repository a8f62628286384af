"""ARM resource ids and scopes: the one parser of ids in sfmigrate, over ``azure.mgmt.core.tools``.

ARM ids are case-insensitive (some tools print ``resourcegroups``): parts keep the case they were written in,
and comparisons lower-case them where they are made.
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id, resource_id

__all__ = [
    "ArmId", "parse", "is_arm_id", "id_parts", "subscription_of", "resource_group_of", "name_of", "is_type",
    "build", "role_definition_id", "role_guid", "scope_covers", "segments",
]


@dataclass(frozen=True)
class ArmId:
    """The parts of ``/subscriptions/s[/resourceGroups/g[/providers/ns/type/name[/child_type/child_name...]]]``."""

    subscription: str
    resource_group: str | None = None
    namespace: str | None = None
    type: str | None = None  # the target resource's type (the last child's, for a child resource)
    name: str | None = None  # the target resource's name (the last child's, for a child resource)


def parse(rid: str) -> ArmId:
    """Parse an ARM id (subscription, resource group, provider resource or one of its children).

    A trailing slash is ignored. Raises ``ValueError`` for anything else: a data-plane URL, a tenant-level
    ``/providers/...`` id, a missing part (``parse_resource_id`` alone would return a partial answer)."""
    if not is_arm_id(rid):
        raise ValueError(f"not an ARM resource id: {rid!r}")
    parts = parse_resource_id(rid.rstrip("/"))

    def text(key: str) -> str | None:
        value = parts.get(key)
        return str(value) if value is not None else None

    return ArmId(str(parts["subscription"]), text("resource_group"), text("resource_namespace"), text("resource_type"),
                 text("resource_name"))


def is_arm_id(rid: str) -> bool:
    """``rid`` is a whole ARM id (``is_valid_resource_id``: it parses and rebuilds to itself), trailing slash aside."""
    trimmed = (rid or "").rstrip("/")
    return bool(trimmed) and is_valid_resource_id(trimmed)


def id_parts(rid: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of ``/subscriptions/s/resourceGroups/g/providers/ns/type/name``."""
    parsed = parse(rid)
    if parsed.resource_group is None or parsed.name is None:
        raise ValueError(f"not the id of a resource in a resource group: {rid!r}")
    return parsed.subscription, parsed.resource_group, parsed.name


def subscription_of(scope: str) -> str:
    return parse(scope).subscription


def resource_group_of(rid: str) -> str:
    return id_parts(rid)[1]


def name_of(rid: str) -> str:
    """The resource's own name: the last child's for a child resource. Ids ``parse_resource_id`` does not cover
    (tenant-level ``/providers/Microsoft.Authorization/roleDefinitions/<guid>``) give their last segment."""
    if is_arm_id(rid):
        name = parse(rid).name
        if name:
            return name
    found = segments(rid)
    return found[-1] if found else ""


def is_type(rid: str, namespace_and_type: str) -> bool:
    """``rid`` is an id of a resource of ``Namespace/type`` (e.g. ``Microsoft.Compute/virtualMachineScaleSets``),
    case-insensitively; False for anything that is not an ARM id."""
    if not is_arm_id(rid):
        return False
    parsed = parse(rid)
    return f"{parsed.namespace}/{parsed.type}".lower() == namespace_and_type.lower()


def build(*, subscription: str, resource_group: str | None = None, namespace: str | None = None,
          type: str | None = None, name: str | None = None) -> str:
    """The id of the given parts (``resource_id``: it stops at the first part missing)."""
    return resource_id(subscription=subscription, resource_group=resource_group, namespace=namespace, type=type, name=name)


def role_definition_id(subscription: str, role_guid: str) -> str:
    """``/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/<guid>`` (what a role assignment names)."""
    return build(subscription=subscription, namespace="Microsoft.Authorization", type="roleDefinitions", name=role_guid)


def role_guid(role_definition: str) -> str:
    """The GUID of a role definition id (subscription-scoped, tenant-level or a bare GUID), lower-case."""
    return name_of(role_definition.rstrip("/")).lower()


def segments(rid: str) -> list[str]:
    """The non-empty path segments of an id or scope."""
    return [p for p in rid.split("/") if p]


def scope_covers(scope: str, rid: str) -> bool:
    """True when ``scope`` is ``rid`` or above it (an assignment on one secret below a vault is not)."""
    outer = [p.lower() for p in segments(scope)]
    inner = [p.lower() for p in segments(rid)]
    return bool(outer) and inner[: len(outer)] == outer
