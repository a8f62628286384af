"""ARM resource ids and scopes (case-insensitive, compared segment by segment)."""

from __future__ import annotations


def segments(resource_id: str) -> list[str]:
    return [p for p in resource_id.split("/") if p]


def id_parts(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of ``/subscriptions/s/resourceGroups/g/providers/.../name``."""
    parts = segments(resource_id)
    return parts[1], parts[3], parts[-1]


def subscription_of(scope: str) -> str:
    return segments(scope)[1]


def scope_covers(scope: str, resource_id: str) -> bool:
    """True when ``scope`` is ``resource_id`` or above it (an assignment on one secret below a vault is not)."""
    outer = [p.lower() for p in segments(scope)]
    inner = [p.lower() for p in segments(resource_id)]
    return bool(outer) and inner[: len(outer)] == outer
