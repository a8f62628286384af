"""``apply --output json``: one JSON object per line (type, step, time, detail), terraform's machine-readable UI."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from ..safe_output import safe


class JsonProgress:
    """``--output json``: one JSON object per line; a heartbeat is ``{"type": "heartbeat", ...}`` too."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        self.stream.write(safe(json.dumps(event, default=str)) + "\n")
        self.stream.flush()

    def heartbeat(self, event: dict[str, Any]) -> None:
        self(event)
