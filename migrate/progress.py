"""Progress sinks for ``apply``: plain lines, JSON lines (terraform's machine-readable UI), a live view.

Each sink is a callable taking one event ``{"type", "step", "time", "detail"}`` (the journal keeps the same
events, bounded).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from .safe_output import safe

if TYPE_CHECKING:
    from rich.table import Table

_WORDS = {
    "run-start": "started",
    "step-start": "start",
    "step-done": "done",
    "step-failed": "FAILED",
    "step-retry": "retry",
    "change": "change",
    "operation": "operation",
    "reattach": "re-attach",
    "cluster": "cluster",
    "instances": "instances",
    "manual-upgrade": "upgrade",
    "waiting": "waiting",
    "grant-propagation": "waiting",
    "run-complete": "complete",
    "run-stopped": "stopped",
    "run-failed": "failed",
    "run-interrupted": "interrupted",
}


def describe(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    kind = event.get("type", "")
    step = event.get("step") or ""
    if kind == "step-start":
        return f"{step}: {detail.get('title', '')}"
    if kind == "step-done":
        return f"{step} ({detail.get('seconds', '?')} s)"
    if kind == "cluster":
        return f"{step}: cluster {detail.get('cluster_state')} / {detail.get('provisioning_state')}"
    if kind == "instances":
        return f"{step}: {detail.get('scale_set')} {detail.get('updated')}/{detail.get('total')} instances on the latest model"
    if kind == "manual-upgrade":
        return (f"{step}: manual upgrade of {detail.get('scale_set')} update domain {detail.get('update_domain')}: "
                f"instances {', '.join(detail.get('instances') or [])}")
    if kind == "change":
        return f"{step}: updating {str(detail.get('resource', '')).rsplit('/', 1)[-1]} ({detail.get('properties')} properties)"
    if kind == "grant-propagation":
        return (f"{step}: the vault still denies the Key Vault extension on {detail.get('denied')} instance(s) of "
                f"{detail.get('scale_set')} although ARM shows the grant (propagating: {detail.get('waited_minutes')} of at most "
                f"{detail.get('bound_minutes')} minutes); running the extension again (attempt {detail.get('rerun')})")
    if kind == "run-start":
        return f"{detail.get('steps')} steps for {str(detail.get('cluster', '')).rsplit('/', 1)[-1]}"
    parts = [step] if step else []
    parts += [f"{k}={v}" for k, v in detail.items() if k not in ("observed",)]
    return " ".join(str(p) for p in parts)


class PlainProgress:
    """One line per event, flushed (pipelines read stdout line by line)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        time = str(event.get("time", ""))[11:19]
        word = _WORDS.get(event.get("type", ""), event.get("type", ""))
        self.stream.write(safe(f"{time} {word:<10} {describe(event)}") + "\n")  # data, never a pipeline command
        self.stream.flush()


class JsonProgress:
    """``--output json``: one JSON object per line (type, step, time, detail)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        self.stream.write(safe(json.dumps(event, default=str)) + "\n")
        self.stream.flush()


class LiveProgress:
    """A live display at a terminal: the current step, the cluster's upgrade phase, instances updated."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.current = ""
        self.cluster = ""
        self.instances = ""
        self.done: list[str] = []
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=True)
        self.live.start()

    def _render(self) -> Table:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        for line in self.done[-12:]:
            table.add_row("[green]✓[/green]", line)
        if self.current:
            table.add_row("[yellow]→[/yellow]", f"[bold]{self.current}[/bold]")
        if self.cluster:
            table.add_row("", f"cluster: {self.cluster}")
        if self.instances:
            table.add_row("", f"instances: {self.instances}")
        return table

    def __call__(self, event: dict[str, Any]) -> None:
        kind, detail = event.get("type"), event.get("detail") or {}
        if kind == "step-start":
            self.current, self.cluster, self.instances = f"{event.get('step')}: {detail.get('title', '')}", "", ""
        elif kind == "step-done":
            self.done.append(f"{event.get('step')} ({detail.get('seconds')} s)")
            self.current = ""
        elif kind == "cluster":
            self.cluster = f"{detail.get('cluster_state')} / {detail.get('provisioning_state')}"
        elif kind == "instances":
            self.instances = f"{detail.get('scale_set')}: {detail.get('updated')}/{detail.get('total')} on the latest model"
        elif kind == "manual-upgrade":
            self.instances = f"{detail.get('scale_set')}: upgrading update domain {detail.get('update_domain')} ({', '.join(detail.get('instances') or [])})"
        elif kind in ("step-failed", "run-failed", "run-stopped", "run-interrupted", "run-complete"):
            self.console.print(f"{_WORDS.get(kind, kind)}: {describe(event)}")
        self.live.update(self._render())

    def close(self) -> None:
        self.live.stop()
