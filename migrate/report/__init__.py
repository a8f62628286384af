"""Renderers of a plan: text, Markdown, JSON (versioned), HTML; of a run (its journal) in :mod:`.run`.

Each format is a module with one function per kind of document: ``render_plan(plan, *, color=False) -> str``.
:func:`render_plan` picks the module's function through :func:`_renderer`. The after-run report of a journal
is :mod:`migrate.report.run` (html, md, json); a rehearsal's page is :func:`migrate.report.html.render_rehearsal_html`.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Callable

from ..errors import UsageError
from ..plan import Plan
from . import html, json, markdown, text

if TYPE_CHECKING:
    from ..snapshot import Snapshot
    from ..spec import RolloutSpec

FORMATS = ("text", "md", "json", "html")
_MODULES: dict[str, ModuleType] = {"text": text, "md": markdown, "json": json, "html": html}
_ALIASES = {"markdown": "md", "txt": "text", "htm": "html"}
EXTENSIONS = {"text": ".txt", "md": ".md", "json": ".json", "html": ".html"}


def _renderer(kind: str, fmt: str) -> Callable[..., str]:
    name = _ALIASES.get(fmt.lower(), fmt.lower())
    module = _MODULES.get(name)
    if module is None:
        raise UsageError(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
    function = getattr(module, f"render_{kind}", None)
    if function is None:
        raise UsageError(f"--format: a {kind} cannot be rendered as {name}")
    return function  # type: ignore[no-any-return]


def render_plan(plan: Plan, fmt: str = "text", *, color: bool = False, snapshot: Snapshot | None = None,
                rollout: RolloutSpec | None = None) -> str:
    """The plan as ``fmt`` (text|md|json|html); ``color`` only affects text; ``snapshot`` and ``rollout`` only
    HTML (the timeline's scale set shapes and settle window, the certificates' names)."""
    function = _renderer("plan", fmt)
    if function is html.render_plan:
        return html.render_plan(plan, color=color, snapshot=snapshot, rollout=rollout)
    return function(plan, color=color)


def write_report(plan: Plan, path: str, *, snapshot: Snapshot | None = None, rollout: RolloutSpec | None = None) -> None:
    """Write the plan's report to ``path`` in the format its extension names (folders are created)."""
    from pathlib import Path

    from ..safe_output import redact

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_plan(plan, "html" if path.lower().endswith(".htm") else format_for_path(path), snapshot=snapshot, rollout=rollout)
    target.write_text(redact(text), encoding="utf-8")  # no secret in a report (issue 13)


def format_for_path(path: str, default: str = "text") -> str:
    """The format a file name implies (``plan.md`` -> md), for ``--out`` without ``--format``."""
    lower = path.lower()
    for fmt, extension in EXTENSIONS.items():
        if lower.endswith(extension):
            return fmt
    return default


def should_color(stream: IO[Any]) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed stream
        return False


__all__ = ["FORMATS", "render_plan", "format_for_path", "should_color"]
