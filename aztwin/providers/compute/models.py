"""Microsoft.Compute virtual machine scale sets: the model, its instances, and how a new model rolls out.

Upgrade policy decides when an instance takes a new model (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-policy): Automatic updates
every instance as part of the update; Rolling walks batches in the background; Manual waits for
``manualupgrade``. What an instance does when it takes a model lives in :mod:`.guest`.
"""

from __future__ import annotations

import copy
import math
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ...operations import Operation
from ...resources import ResourceId, resource_not_found
from ...wire import TwinError, bad_request
from .guest import ExtensionState, InstalledCert, apply_model, extension_type
from .validation import validate_scale_set

if TYPE_CHECKING:
    from ...world import World
    from ..identity.models import Principal

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
    joined: bool = True  # False until a new VM has provisioned once (only then is it a cluster node)
    store: list[InstalledCert] = field(default_factory=list)
    extensions: dict[str, ExtensionState] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)  # Linux: link name -> thumbprint
    waagent_removed: dict[str, str] = field(default_factory=dict)  # Linux: thumbprint -> when waagent removed its files
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
    fresh_disk: bool = False  # reimage: the instances start from an empty OS disk
    busy_for: str | None = None  # a background roll-out's cluster (World.work_began); an operation carries its own
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
        properties: dict[str, Any] = self.body.setdefault("properties", {})
        return properties

    @property
    def profile(self) -> dict[str, Any]:
        profile: dict[str, Any] = self.properties.setdefault("virtualMachineProfile", {})
        return profile

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
                found: dict[str, Any] = extension
                return found
        return None

    def existing_extension(self, name: str) -> dict[str, Any]:
        """The extension child resource ``name``; 404 as CRP answers for one the scale set does not have."""
        extension = self.extension(name)
        if extension is None:
            raise TwinError(404, "NotFound", f"The extension '{name}' of virtual machine scale set '{self.rid.name}' was not found.")
        return extension

    def extensions_of_type(self, *types: str) -> list[dict[str, Any]]:
        found = []
        for extension in (self.profile.get("extensionProfile") or {}).get("extensions") or []:
            if extension_type(extension) in types:
                found.append(extension)
        return found

    def instance(self, instance_id: str) -> Instance:
        for instance in self.instances:
            if instance.instance_id == instance_id:
                return instance
        raise TwinError(404, "NotFound", f"The entity was not found in this Azure location: virtual machine '{self.rid.name}_{instance_id}'.")


class ComputeState:
    def __init__(self, world: World) -> None:
        self.world = world
        self.scale_sets: dict[str, ScaleSet] = {}
        self.layout = 0  # changes whenever a scale set is created or its model replaced (indexes built on it go stale)

    def get(self, resource_id: str) -> ScaleSet:
        found = self.scale_sets.get(resource_id.lower())
        if found is None:
            raise resource_not_found("Microsoft.Compute/virtualMachineScaleSets", resource_id)
        return found

    def all(self) -> list[ScaleSet]:
        return list(self.scale_sets.values())

    def updating(self, scale_set: ScaleSet) -> bool:
        """An operation on the scale set is still running (ARM shows provisioningState Updating)."""
        return any(op.resource_id.lower() == scale_set.rid.key and op.kind.startswith("vmss") for op in self.world.operations.in_progress())

    # -- writes -------------------------------------------------------------------------------------
    def create(self, rid: ResourceId, body: dict[str, Any], *, settle: bool = True) -> ScaleSet:
        """A new scale set; with ``settle`` (scenarios) its instances start on the model at once."""
        clean = strip_read_only(body)
        location = str(clean.get("location") or "").replace(" ", "").lower()
        scale_set = ScaleSet(rid, location, clean, self.world.iso_now(), str(uuid.uuid5(_NAMESPACE, rid.key)))
        self.scale_sets[rid.key] = scale_set
        self.layout += 1
        self._resize(scale_set)
        if settle:
            for instance in scale_set.instances:
                instance.joined = True
                apply_model(self.world, scale_set, instance, scale_set.profile, initial=True)
        return scale_set

    def _resize(self, scale_set: ScaleSet) -> list[Instance]:
        added = []
        while len(scale_set.instances) < scale_set.capacity:
            index = str(len(scale_set.instances))
            instance = Instance(
                scale_set, index, str(uuid.uuid5(_NAMESPACE, f"{scale_set.rid.key}/{index}")),
                copy.deepcopy(scale_set.profile), scale_set.model_version, joined=False,
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
        self.layout += 1
        if profile_changed:
            scale_set.model_version += 1
        added = self._resize(scale_set)
        for instance in added:
            instance.model_version = 0  # new instances provision with the current model
        return profile_changed or bool(added)

    # -- what PUT, PATCH and manualupgrade do (CRP's rules; the routes decode and render) ---------------
    def put(self, rid: ResourceId, location: str, body: dict[str, Any], principal: Principal | None) -> tuple[ScaleSet, Operation]:
        """Create or replace a scale set (a PUT is the whole model): the scale set and the operation to poll."""
        existing = self.scale_sets.get(rid.key)
        if existing is not None and location != existing.location:
            raise bad_request(f"Changing property 'location' is not allowed (from '{existing.location}').", "PropertyChangeNotAllowed")
        if not isinstance((body.get("properties") or {}).get("virtualMachineProfile"), dict):
            # CRP: "Required parameter 'virtualMachineProfile' is missing (null)." (a PUT replaces the model)
            raise bad_request("Required parameter 'properties.virtualMachineProfile' is missing (null).", "InvalidParameter")
        validate_scale_set(self.world, principal, body, existing, full=True)
        if existing is None:
            scale_set = self.create(rid, body, settle=False)
            operation = self.world.operations.start("vmss-create", rid.id, self.world.settings.instance_update_seconds)
            self.start_rollout(Rollout(operation, [list(scale_set.instances)]))
            return scale_set, operation
        return existing, self.update(existing, body)

    def patch(self, scale_set: ScaleSet, patch: dict[str, Any], location: str | None, principal: Principal | None) -> Operation:
        """A JSON merge patch of the model (``location``: the patch's, if it names one)."""
        if location is not None and location != scale_set.location:
            raise bad_request(f"Changing property 'location' is not allowed (from '{scale_set.location}').", "PropertyChangeNotAllowed")
        merged = merge_patch(copy.deepcopy(scale_set.body), patch)
        validate_scale_set(self.world, principal, merged, scale_set, full=False)
        return self.update(scale_set, merged)

    def put_extension(self, scale_set: ScaleSet, name: str, properties: dict[str, Any], principal: Principal | None) -> tuple[bool, Operation]:
        """PUT ``.../extensions/{name}``: the extension replaced whole (its ``protectedSettings`` are the body's,
        none if it has none); the scale set's model changes and rolls out like any model change."""
        body = copy.deepcopy(scale_set.body)
        listed = body.setdefault("properties", {}).setdefault("virtualMachineProfile", {}).setdefault("extensionProfile", {}).setdefault("extensions", [])
        entry = {"name": name, "properties": copy.deepcopy(properties)}
        index = next((i for i, e in enumerate(listed) if e.get("name") == name), None)
        if index is None:
            listed.append(entry)
        else:
            listed[index] = entry
        validate_scale_set(self.world, principal, body, scale_set, full=False)
        return index is None, self.update(scale_set, body)

    def patch_extension(self, scale_set: ScaleSet, name: str, properties: dict[str, Any], principal: Principal | None) -> Operation:
        """PATCH ``.../extensions/{name}``: a JSON merge patch of the extension's properties; what the patch does
        not name (``protectedSettings`` above all) is kept."""
        scale_set.existing_extension(name)
        body = copy.deepcopy(scale_set.body)
        for extension in body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]:
            if extension.get("name") == name:
                extension["properties"] = merge_patch(extension.get("properties") or {}, properties)
        validate_scale_set(self.world, principal, body, scale_set, full=False)
        return self.update(scale_set, body)

    def delete_extension(self, scale_set: ScaleSet, name: str, principal: Principal | None) -> Operation | None:
        """DELETE ``.../extensions/{name}`` (VirtualMachineScaleSetExtensions_Delete): the extension leaves the model,
        the others keep their ``protectedSettings``; ``None`` if there is no such extension (204). CRP still refuses a
        dangling ``provisionAfterExtensions`` name (validate_scale_set)."""
        body = copy.deepcopy(scale_set.body)
        profile = body.get("properties", {}).get("virtualMachineProfile", {}).get("extensionProfile") or {}
        listed = profile.get("extensions") or []
        kept = [e for e in listed if e.get("name") != name]
        if len(kept) == len(listed):
            return None
        profile["extensions"] = kept
        validate_scale_set(self.world, principal, body, scale_set, full=False)
        return self.update(scale_set, body)

    def update(self, scale_set: ScaleSet, body: dict[str, Any]) -> Operation:
        """Store a new model and roll it out as the upgrade policy says (https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-policy)."""
        world = self.world
        needs_rollout = self.replace_model(scale_set, body)
        mode = scale_set.upgrade_mode.lower()
        stale = [i for i in scale_set.instances if i.model_version != scale_set.model_version]
        if needs_rollout and mode == "automatic" and stale:  # Automatic: the update includes the instances
            operation = world.operations.start("vmss-update", scale_set.rid.id, world.settings.instance_update_seconds)
            self.start_rollout(Rollout(operation, [stale]))
            return operation
        new_instances = [i for i in stale if i.model_version == 0]
        if new_instances:
            # Scale-out (sku.capacity): under any policy the new VMs are created on the latest model and get only
            # what it delivers (virtual-machine-scale-sets-upgrade-policy: "New instances added to the scale set
            # use the most up-to-date model available"); the operation ends when they are provisioned.
            operation = world.operations.start("vmss-update", scale_set.rid.id, world.settings.instance_update_seconds)
            self.start_rollout(Rollout(operation, [new_instances]))
            stale = [i for i in stale if i not in new_instances]
        else:
            operation = world.operations.start("vmss-update", scale_set.rid.id, world.settings.model_update_seconds)
            world.after(world.settings.model_update_seconds, f"vmss-model {scale_set.rid.name}", lambda: world.operations.finish(operation))
        if needs_rollout and mode == "rolling" and stale:  # Rolling: batches walk in the background
            batches, pause = self.batches_for(scale_set, stale)
            world.after(world.settings.model_update_seconds, f"rolling-upgrade {scale_set.rid.name}",
                        lambda: self.start_rollout(Rollout(None, batches, pause)))
        return operation

    def manual_upgrade(self, scale_set: ScaleSet, instance_ids: list[str]) -> Operation:
        """``manualupgrade``: the named instances take the current model; ``"*"`` names every instance (what
        ``az vmss update-instances --instance-ids '*'`` sends)."""
        if "*" in instance_ids:
            instances = list(scale_set.instances)
        else:
            instances = [scale_set.instance(i) for i in instance_ids]
        operation = self.world.operations.start("vmss-manualupgrade", scale_set.rid.id, self.world.settings.instance_update_seconds)
        self.start_rollout(Rollout(operation, [instances]))
        return operation

    def reimage(self, scale_set: ScaleSet, instance: Instance) -> Operation:
        """``virtualMachines/{id}/reimage``: the OS disk is replaced, so the certificates on it go (research
        sf_migration §4.1), and the VM provisions again from the scale set's latest model, getting only what
        that model delivers (pessimistic: undocumented whether a VM behind the model re-provisions from its own)."""
        operation = self.world.operations.start("vmss-reimage", scale_set.rid.id, self.world.settings.instance_update_seconds)
        self.start_rollout(Rollout(operation, [[instance]], fresh_disk=True))
        return operation

    # -- rollouts -----------------------------------------------------------------------------------
    def start_rollout(self, rollout: Rollout) -> None:
        if rollout.operation is None:  # a background (Rolling) rollout is work too: the busy times count it
            first = next((batch[0] for batch in rollout.batches if batch), None)
            rollout.busy_for = self.world.work_began(first.scale_set.rid.id if first else "")
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
        self.world.servicefabric.disturbed_by(batch[0].scale_set, f"a roll-out of {batch[0].scale_set.rid.name} to "
                                              f"{', '.join(i.name for i in batch[:5])}")

        def done(instance: Instance, failure: str | None) -> None:
            self._instance_done(rollout, index, instance, failure)

        for instance in batch:
            self.update_instance(instance, done, fresh_disk=rollout.fresh_disk)

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
            self.world.work_ended(rollout.busy_for)
        if rollout.on_done:
            rollout.on_done(rollout)

    def update_instance(self, instance: Instance, done: Callable[[Instance, str | None], None], fresh_disk: bool = False) -> None:
        """Take the scale set's current model: reboot-and-provision time, then the guest applies it (on a new
        OS disk for a reimage: nothing installed survives)."""
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
                if not instance.joined:  # a new VM is a cluster node once provisioned (pessimistic: even if it failed)
                    instance.joined = True
                    self.world.servicefabric.on_nodes_changed([scale_set])
                done(instance, failure)

            if fresh_disk:
                instance.store.clear()
                instance.symlinks.clear()
                instance.waagent_removed.clear()
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
                        {"name": e.get("name"), "type": extension_type(e), "typeHandlerVersion": (e.get("properties") or {}).get("typeHandlerVersion"),
                         # whether the model holds protected settings, never their values (docs/twin.md)
                         "hasProtectedSettings": bool((e.get("properties") or {}).get("protectedSettings"))}
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
