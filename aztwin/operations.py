"""Long-running operations: what ARM's status endpoints report while the world does the work.

An operation is started by a provider, finished by the world's events, and polled by clients through the
provider's own status URL (Compute: ``Azure-AsyncOperation``; Service Fabric: ``Location`` to
``operationResults``). Its retry hint is the simulated time left, converted to wall milliseconds, so a
client that honours ``retry-after-ms`` never idles longer than the work takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .resources import new_guid

if TYPE_CHECKING:
    from .world import World


@dataclass
class Operation:
    id: str
    kind: str
    resource_id: str
    started: str
    status: str = "InProgress"  # InProgress | Succeeded | Failed | Canceled
    ended: str | None = None
    error: dict[str, Any] | None = None
    expected_done: float | None = None  # simulated seconds since world start
    busy_for: str | None = None  # the cluster whose busy time this operation counts in (World.work_began)
    result: Callable[[], Any] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def status_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.id, "status": self.status, "startTime": self.started}
        if self.ended:
            body["endTime"] = self.ended
        if self.error:
            body["error"] = self.error
        return body


class OperationRegistry:
    def __init__(self, world: World) -> None:
        self.world = world
        self.by_id: dict[str, Operation] = {}
        self._active: dict[str, Operation] = {}  # in progress: what a status check walks, not every operation ever

    def start(self, kind: str, resource_id: str, expected_seconds: float | None = None) -> Operation:
        now = self.world.clock.seconds()
        operation = Operation(
            new_guid(),
            kind,
            resource_id,
            self.world.iso_now(),
            expected_done=None if expected_seconds is None else now + expected_seconds,
        )
        self.by_id[operation.id] = operation
        self._active[operation.id] = operation
        operation.busy_for = self.world.work_began(resource_id)
        return operation

    def finish(self, operation: Operation, error: dict[str, Any] | None = None) -> None:
        if operation.done:
            return
        operation.status = "Failed" if error else "Succeeded"
        operation.error = error
        operation.ended = self.world.iso_now()
        self._active.pop(operation.id, None)
        self.world.work_ended(operation.busy_for)

    def get(self, operation_id: str) -> Operation | None:
        return self.by_id.get(operation_id)

    def in_progress(self) -> list[Operation]:
        return list(self._active.values())

    def retry_headers(self, operation: Operation | None = None) -> dict[str, str]:
        settings = self.world.settings
        if settings.retry_after_ms is None:
            return {"Retry-After": str(settings.retry_after_seconds)}
        wait_ms = settings.retry_after_ms
        if operation is not None and operation.expected_done is not None and not operation.done:
            remaining = operation.expected_done - self.world.clock.seconds()
            wait_ms = int(self.world.clock.real_delay(remaining) * 1000) + 5
        wait_ms = max(settings.retry_after_min_ms, min(wait_ms, settings.retry_after_max_ms))
        return {"retry-after-ms": str(wait_ms)}

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"id": op.id, "kind": op.kind, "resourceId": op.resource_id, **op.status_body()}
            for op in self.by_id.values()
        ]
