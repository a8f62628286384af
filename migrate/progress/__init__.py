"""Progress sinks for ``apply``: plain lines, JSON lines (terraform's machine-readable UI), a live view, the
Azure DevOps writer's progress; and the heartbeat timer in front of any of them (migrate.progress.heartbeat).

Each sink is a callable taking one event ``{"type", "step", "time", "detail"}`` (the journal keeps the same
events, bounded) and has ``heartbeat(event)`` for the timer's ``{"type": "heartbeat", ...}`` event.
"""

from __future__ import annotations

from .events import WORDS, RunTracker, describe, elapsed_text, heartbeat_text
from .heartbeat import Heartbeat, HeartbeatSink, cluster_state_probe
from .json_lines import JsonProgress
from .live import LiveProgress
from .pipeline import PipelineProgress, PipelineRecorder
from .plain import PlainProgress
from .apply_view import ApplyProgress  # noqa: E402  (after the sinks it wires)

_WORDS = WORDS  # the name before the split

__all__ = ["ApplyProgress", "Heartbeat", "HeartbeatSink", "JsonProgress", "LiveProgress", "PipelineProgress", "PipelineRecorder", "PlainProgress", "RunTracker",
           "cluster_state_probe", "describe", "elapsed_text", "heartbeat_text"]
