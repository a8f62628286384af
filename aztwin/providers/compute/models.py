"""Microsoft.Compute virtual machine scale sets: the model, its instances, and how a new model rolls out.

Upgrade policy decides when an instance takes a new model (research/sf_migration.md §4): Automatic updates
every instance as part of the update; Rolling walks batches in the background; Manual waits for
``manualupgrade``. What an instance does when it takes a model lives in :mod:`.guest`.
"""

from __future__ import annotations

import copy
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ...operations import Operation
from ...resources import ResourceId
from ...wire import TwinError
from .guest import ExtensionState, InstalledCert, apply_model, extension_type

READ_ONLY = {"provisioningState", "uniqueId", "timeCreated"}
_NAMESPACE = uuid.UUID("a8a9b5a4-6f0e-4c51-8e7f-5c0b9a2c7d13")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (how CRP applies a PATCH: objects merge, arrays and scalars replace)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strip_read_only(body: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(body)
    for key in ("id", "name", "type", "etag"):
        clean.pop(key, None)
    properties = clean.get("properties")
    if isinstance(properties, dict):
        for key in READ_ONLY:
            properties.pop(key, None)
        profile = properties.get("virtualMachineProfile")
        if isinstance(profile, dict):
            profile.pop("timeCreated", None)
    identity = clean.get("identity")
    if isinstance(identity, dict):
        identity.pop("principalId", None)
        identity.pop("tenantId", None)
        for value in (identity.get("userAssignedIdentities") or {}).values():
            if isinstance(value, dict):
                value.pop("principalId", None)
                value.pop("clientId", None)
    return clean


@dataclass
class Instance:
    scale_set: "ScaleSet" = field(repr=False)
    instance_id: str
    vm_id: str
    model: dict[str, Any]  # the virtualMachineProfile this instance runs
    model_version: int
    provisioning_state: str = "Succeeded"
    updating: bool = False
    store: list[InstalledCert] = field(default_factory=list)
    extensions: dict[str, ExtensionState] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)  # Linux: link name -> thumbprint
    poll_events: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.scale_set.rid.name}_{self.instance_id}"

    @property
    def update_domain(self) -> int:
        return int(self.instance_id) % 5

    @property
    def latest_model_applied(self) -> bool:
        return self.model_version == self.scale_set.model_version and not self.updating

    def thumbprints(self) -> list[str]:
        return [c.thumbprint for c in self.store]

    def installed(self, thumbprint: str) -> InstalledCert | None:
        for cert in self.store:
            if cert.thumbprint == thumbprint.upper():
                return cert
        return None


@dataclass
class Rollout:
    """A set of instances taking a model, with the operation that reports on it."""

    operation: Operation | None
    batches: list[list[Instance]]
    pause_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    on_done: Callable[["Rollout"], None] | None = None
    _pending: set[str] = field(default_factory=set)


@dataclass
class ScaleSet:
    rid: ResourceId
    location: str
    body: dict[str, Any]  # the resource as last written, read-only fields stripped
    created: str
    unique_id: str
    model_version: int = 1
    writes: int = 0  # the resource's etag: every accepted PUT/PATCH changes it
    instances: list[Instance] = field(default_factory=list)
    provisioning_state: str = "Succeeded"

    @property
    def properties(self) -> dict[str, Any]:
        return self.body.setdefault("properties", {})

    @property
    def profile(self) -> dict[str, Any]:
        return self.properties.setdefault("virtualMachineProfile", {})

    @property
    def upgrade_mode(self) -> str:
        return str((self.properties.get("upgradePolicy") or {}).get("mode") or "Manual")

    @property
    def capacity(self) -> int:
        return int((self.body.get("sku") or {}).get("capacity") or 0)

    @property
    def os(self) -> str:
        os_profile = self.profile.get("osProfile") or {}
        disk = ((self.profile.get("storageProfile") or {}).get("osDisk") or {}).get("osType")
        return "linux" if os_profile.get("linuxConfiguration") or str(disk).lower() == "linux" else "windows"

    def user_assigned_identities(self) -> list[str]:
        identity = self.body.get("identity") or {}
        return list((identity.get("userAssignedIdentities") or {}).keys())

    def extension(self, name: str) -> dict[str, Any] | None:
        for extension in (self.profile.get("extensionProfile") or {}).get("extensions") or []:
            if extension.get("name") == name:
                return extension
        return None

    def extensions_of_type(self, *types: str) -> list[dict[str, Any]]:
        found = []
        for extension in (self.profile.get("extensionProfile") or {}).get("extensions") or []:
            if extension_type(extension) in types:
                found.append(extension)
        return found


class ComputeState:
    def __init__(self, world: Any) -> None:
        self.world = world
        self.scale_sets: dict[str, ScaleSet] = {}

    def get(self, resource_id: str) -> ScaleSet:
        found = self.scale_sets.get(resource_id.lower())
        if found is None:
            rid = ResourceId.parse(resource_id)
            raise TwinError(404, "ResourceNotFound", f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{rid.name}' under resource group '{rid.resource_group}' was not found.")
        return found

    def all(self) -> list[ScaleSet]:
        return list(self.scale_sets.values())

    # -- writes -------------------------------------------------------------------------------------
    def create(self, rid: ResourceId, body: dict[str, Any], *, settle: bool = True) -> ScaleSet:
        """A new scale set; with ``settle`` (scenarios) its instances start on the model at once."""
        clean = strip_read_only(body)
        location = str(clean.get("location") or "").replace(" ", "").lower()
        scale_set = ScaleSet(rid, location, clean, self.world.iso_now(), str(uuid.uuid5(_NAMESPACE, rid.key)))
        self.scale_sets[rid.key] = scale_set
        self._resize(scale_set)
        if settle:
            for instance in scale_set.instances:
                apply_model(self.world, scale_set, instance, scale_set.profile, initial=True)
        return scale_set

    def _resize(self, scale_set: ScaleSet) -> list[Instance]:
        added = []
        while len(scale_set.instances) < scale_set.capacity:
            index = str(len(scale_set.instances))
            instance = Instance(
                scale_set, index, str(uuid.uuid5(_NAMESPACE, f"{scale_set.rid.key}/{index}")),
                copy.deepcopy(scale_set.profile), scale_set.model_version,
            )
            scale_set.instances.append(instance)
            added.append(instance)
        del scale_set.instances[max(scale_set.capacity, 0):]
        return added

    def replace_model(self, scale_set: ScaleSet, new_body: dict[str, Any]) -> bool:
        """Store a new model; True when instances need to take it (the VM profile changed)."""
        scale_set.writes += 1
        new_body = strip_read_only(new_body)
        new_body["location"] = scale_set.location
        profile_changed = new_body.get("properties", {}).get("virtualMachineProfile") != scale_set.profile
        scale_set.body = new_body
        if profile_changed:
            scale_set.model_version += 1
        added = self._resize(scale_set)
        for instance in added:
            instance.model_version = 0  # new instances provision with the current model
        return profile_changed or bool(added)

    # -- rollouts -----------------------------------------------------------------------------------
    def start_rollout(self, rollout: Rollout) -> None:
        if rollout.operation is None:  # a background (Rolling) rollout is work too: the bench's busy time counts it
            self.world.busy.begin()
        self._start_batch(rollout, 0)

    def _start_batch(self, rollout: Rollout, index: int) -> None:
        if index >= len(rollout.batches):
            self._finish_rollout(rollout)
            return
        batch = rollout.batches[index]
        if not batch:
            self._start_batch(rollout, index + 1)
            return
        rollout._pending = {i.name for i in batch}
        for instance in batch:
            self.update_instance(instance, lambda inst, failure, r=rollout, i=index: self._instance_done(r, i, inst, failure))

    def _instance_done(self, rollout: Rollout, index: int, instance: Instance, failure: str | None) -> None:
        if failure:
            rollout.failures.append(failure)
        rollout._pending.discard(instance.name)
        if not rollout._pending:
            self.world.after(rollout.pause_seconds, "rolling-batch", lambda: self._start_batch(rollout, index + 1))

    def _finish_rollout(self, rollout: Rollout) -> None:
        if rollout.operation is not None:
            error = None
            if rollout.failures:
                error = {
                    "code": "VMExtensionProvisioningError",
                    "message": rollout.failures[0],
                    "details": [{"code": "VMExtensionProvisioningError", "message": f} for f in rollout.failures[1:6]],
                }
            self.world.operations.finish(rollout.operation, error)
        else:
            self.world.busy.end()
        if rollout.on_done:
            rollout.on_done(rollout)

    def update_instance(self, instance: Instance, done: Callable[[Instance, str | None], None]) -> None:
        """Take the scale set's current model: reboot-and-provision time, then the guest applies it."""
        scale_set = instance.scale_set
        target_profile = copy.deepcopy(scale_set.profile)
        target_version = scale_set.model_version
        instance.updating = True
        instance.provisioning_state = "Updating"

        def provision() -> None:
            def finished(failure: str | None) -> None:
                instance.model = target_profile
                instance.model_version = target_version
                instance.updating = False
                instance.provisioning_state = "Failed" if failure else "Succeeded"
                done(instance, failure)

            apply_model(self.world, scale_set, instance, target_profile, on_finished=finished)

        self.world.after(self.world.settings.instance_update_seconds, f"instance-update {instance.name}", provision)

    def batches_for(self, scale_set: ScaleSet, instances: list[Instance]) -> tuple[list[list[Instance]], float]:
        """Automatic: all at once. Rolling: batches of maxBatchInstancePercent (default 20%), with pauses."""
        if scale_set.upgrade_mode.lower() != "rolling":
            return [instances], 0.0
        policy = (scale_set.properties.get("upgradePolicy") or {}).get("rollingUpgradePolicy") or {}
        percent = int(policy.get("maxBatchInstancePercent") or 20)
        size = max(1, math.ceil(len(instances) * percent / 100))
        pause = _iso_duration_seconds(str(policy.get("pauseTimeBetweenBatches") or "PT0S"))
        ordered = sorted(instances, key=lambda i: (i.update_domain, int(i.instance_id)))
        return [ordered[i : i + size] for i in range(0, len(ordered), size)], pause

    def snapshot(self) -> list[dict[str, Any]]:
        out = []
        for scale_set in self.scale_sets.values():
            out.append(
                {
                    "id": scale_set.rid.id,
                    "name": scale_set.rid.name,
                    "os": scale_set.os,
                    "upgradeMode": scale_set.upgrade_mode,
                    "modelVersion": scale_set.model_version,
                    "identities": scale_set.user_assigned_identities(),
                    "secrets": [
                        c.get("certificateUrl")
                        for group in (scale_set.profile.get("osProfile") or {}).get("secrets") or []
                        for c in group.get("vaultCertificates") or []
                    ],
                    "extensions": [
                        {"name": e.get("name"), "type": extension_type(e), "typeHandlerVersion": (e.get("properties") or {}).get("typeHandlerVersion")}
                        for e in (scale_set.profile.get("extensionProfile") or {}).get("extensions") or []
                    ],
                    "instances": [
                        {
                            "name": i.name,
                            "instanceId": i.instance_id,
                            "latestModelApplied": i.latest_model_applied,
                            "provisioningState": i.provisioning_state,
                            "certificates": [c.public() for c in i.store],
                            "extensions": {n: s.public() for n, s in i.extensions.items()},
                            **({"symlinks": i.symlinks} if i.symlinks else {}),
                        }
                        for i in scale_set.instances
                    ],
                }
            )
        return out


def _iso_duration_seconds(text: str) -> float:
    import re

    match = re.match(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$", text.upper())
    if not match:
        return 0.0
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds
