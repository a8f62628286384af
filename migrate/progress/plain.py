"""``apply --output plain`` (and any apply not at a terminal): one flushed line per event."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..safe_output import safe
from .events import WORDS, describe, heartbeat_text


class PlainProgress:
    """One line per event, flushed (pipelines read stdout line by line)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        time = str(event.get("time", ""))[11:19]
        if event.get("type") == "heartbeat":  # "still running: STEP: cluster ... [12m30s elapsed]"
            self._line(f"{time} {heartbeat_text(event)}")
            return
        word = WORDS.get(event.get("type", ""), event.get("type", ""))
        self._line(f"{time} {word:<10} {describe(event)}")

    def heartbeat(self, event: dict[str, Any]) -> None:
        self(event)

    def _line(self, text: str) -> None:
        self.stream.write(safe(text) + "\n")  # data, never a pipeline command
        self.stream.flush()
