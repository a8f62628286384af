"""How a scale-set change is written without losing extension ``protectedSettings`` (pure).

A GET never returns ``protectedSettings`` (write-only), so a full scale-set PUT built from a GET would drop
them (azure-sdk-for-net#2716; docs/twin.md, "Protected settings"), and a full PUT re-checks every linked
resource (Azure/AKS#2040). sfmigrate therefore writes only the subtrees it changes:

- identity and ``osProfile.secrets``: one scale-set PATCH carrying just those (VirtualMachineScaleSets_Update);
- a new extension: PUT of its child resource ``.../extensions/{name}`` (it has no protected settings of ours);
- a changed extension: PATCH of its child resource naming only the changed properties; ``protectedSettings``
  are not named, so they are kept.

Every write changes the model once; the instances then take it as the upgrade policy says. The number of
writes is :func:`write_targets` of the step's changes, which the bench's planner minimum counts too.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Sequence

from .plan import Change

SCALE_SET = "scale-set"
_EXTENSION_PATH = re.compile(r"^properties\.virtualMachineProfile\.extensionProfile\.extensions\[([^\]]+)\]")
_SCALE_SET_PATHS = ("identity", "properties.virtualMachineProfile.osProfile.secrets")
_SCALE_SET_PARENTS = ("properties.virtualMachineProfile.osProfile",)  # created where there was none
_NO_WRITE = ("instances.",)  # the plan's roll-out line: instances taking the model, no model write


@dataclass(frozen=True)
class ScaleSetWrite:
    route: str  # "scale-set-patch" | "extension-put" | "extension-patch"
    body: dict[str, Any]
    extension: str | None = None  # the child resource's name, for extension routes


def _target(path: str) -> str | None:
    if path.startswith(_NO_WRITE):
        return None
    named = _EXTENSION_PATH.match(path)
    if named:
        return f"extension:{named.group(1)}"
    if any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in _SCALE_SET_PATHS) or path in _SCALE_SET_PARENTS:
        return SCALE_SET
    raise ValueError(f"no write route for a change of '{path}' (sfmigrate writes identity, osProfile.secrets and extensions only)")


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def write_targets(changes: Sequence[Change]) -> list[str]:
    """The distinct resources a scale-set step writes, one write each: ``scale-set`` and ``extension:<name>``."""
    targets: list[str] = []
    for change in changes:
        if _empty(change.before) and _empty(change.after):
            continue  # e.g. no secrets -> an empty list: nothing to write
        target = _target(change.path)
        if target and target not in targets:
            targets.append(target)
    return targets


def _extensions(body: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (((body.get("properties") or {}).get("virtualMachineProfile") or {}).get("extensionProfile") or {}).get("extensions") or []
    return found


def _secrets(body: dict[str, Any]) -> list[Any]:
    found: list[Any] = (((body.get("properties") or {}).get("virtualMachineProfile") or {}).get("osProfile") or {}).get("secrets") or []
    return found


def _secret_urls(body: dict[str, Any]) -> set[str]:
    return {str(c.get("certificateUrl", "")).lower() for g in _secrets(body) for c in g.get("vaultCertificates") or []}


def settings_patch(before: Any, after: Any) -> Any:
    """``after`` whole, with ``null`` for every key ``before`` had and ``after`` drops (recursively): a JSON
    merge patch (RFC 7396) that yields ``after``, and still ``after`` if the settings are replaced whole."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return copy.deepcopy(after)
    patch: dict[str, Any] = {key: settings_patch(before.get(key), value) for key, value in after.items()}
    for key in before:
        if key not in after:
            patch[key] = None
    return patch


def _identity_patch(identity: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {"type": identity.get("type")}
    if identity.get("userAssignedIdentities"):
        patch["userAssignedIdentities"] = {key: {} for key in identity["userAssignedIdentities"]}  # ids only: the rest is read-only
    return patch


def _scale_set_patch(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    if (before.get("identity") or {}) != (after.get("identity") or {}):
        patch["identity"] = _identity_patch(after.get("identity") or {})
    if _secrets(before) != _secrets(after):
        patch["properties"] = {"virtualMachineProfile": {"osProfile": {"secrets": copy.deepcopy(_secrets(after))}}}
    return patch


def _extension_write(name: str, before: dict[str, Any] | None, after: dict[str, Any]) -> ScaleSetWrite:
    new = copy.deepcopy(after.get("properties") or {})
    if before is None:
        return ScaleSetWrite("extension-put", {"name": name, "properties": new}, name)
    old = before.get("properties") or {}
    changed: dict[str, Any] = {}
    for key in list(old) + [k for k in new if k not in old]:
        if old.get(key) == new.get(key):
            continue
        changed[key] = settings_patch(old.get(key), new[key]) if key in new else None
    return ScaleSetWrite("extension-patch", {"properties": changed}, name)


def scale_set_writes(before: dict[str, Any], after: dict[str, Any], changes: Sequence[Change]) -> list[ScaleSetWrite]:
    """The writes that take the scale set from ``before`` (a GET) to ``after``, in a safe order: the scale-set
    PATCH first when it adds an identity or a secret (extensions may rely on them), last when it only removes
    secrets; extensions in the order the model lists them (a new Key Vault extension before the SF extension
    that provisions after it)."""
    targets = write_targets(changes)
    old = {str(e.get("name")): e for e in _extensions(before)}
    new = {str(e.get("name")): e for e in _extensions(after)}
    order = list(new)
    extension_writes = []
    for target in sorted((t for t in targets if t != SCALE_SET), key=lambda t: order.index(t.split(":", 1)[1]) if t.split(":", 1)[1] in new else -1):
        name = target.split(":", 1)[1]
        if name not in new:
            raise ValueError(f"removing the extension '{name}' is not a change sfmigrate makes")
        extension_writes.append(_extension_write(name, old.get(name), new[name]))
    if SCALE_SET not in targets:
        return extension_writes
    scale_set = ScaleSetWrite("scale-set-patch", _scale_set_patch(before, after))
    if not scale_set.body:
        return extension_writes
    adds = "identity" in scale_set.body or bool(_secret_urls(after) - _secret_urls(before))
    return [scale_set, *extension_writes] if adds else [*extension_writes, scale_set]
