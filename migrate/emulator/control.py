"""Control operations beyond the core set (scenario-level actions such as certificate renewal)."""

from __future__ import annotations

from typing import Any

from .wire import Request, Response


def extra_control(world: Any, request: Request) -> Response | None:
    return None
