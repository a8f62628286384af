"""Azure DevOps mode: the pipeline writer's events, ``##vso[task.setprogress]`` at each step's start and end, and
the heartbeat as a plain line (migrate.azure_devops emits every logging command; nothing here writes one itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .events import RunTracker, heartbeat_text

if TYPE_CHECKING:
    from ..azure_devops import AzureDevOps
    from .heartbeat import HeartbeatSink


class PipelineProgress:
    def __init__(self, ado: AzureDevOps) -> None:
        self.ado = ado
        self.tracker = RunTracker()

    def __call__(self, event: dict[str, Any]) -> None:
        from ..azure_devops import set_progress

        self.tracker.see(event)
        self.ado(event)
        if event.get("type") in ("step-start", "step-done"):  # N = done steps / all steps * 100
            set_progress(self.ado, self.tracker.done, self.tracker.total, str(event.get("step") or ""))

    def heartbeat(self, event: dict[str, Any]) -> None:
        self.ado.write(f"{str(event.get('time', ''))[11:19]} {heartbeat_text(event)}")


class PipelineRecorder:
    """An explicit ``--output`` in Azure DevOps mode: ``sink`` shows the progress on stdout; the pipeline records the
    steps for apply's summary and gets ``setprogress`` on its own stream (stderr), so stdout stays one format."""

    def __init__(self, sink: HeartbeatSink, ado: AzureDevOps) -> None:
        self.sink, self.ado = sink, ado
        self.tracker = RunTracker()

    def __call__(self, event: dict[str, Any]) -> None:
        from ..azure_devops import set_progress

        self.tracker.see(event)
        self.ado.record(event)
        self.sink(event)
        if event.get("type") in ("step-start", "step-done"):
            set_progress(self.ado, self.tracker.done, self.tracker.total, str(event.get("step") or ""))

    def heartbeat(self, event: dict[str, Any]) -> None:
        self.sink.heartbeat(event)
