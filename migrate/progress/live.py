"""The live view at a terminal (rich): a spinner with the run's and the current step's elapsed time, the
cluster's state polled during upgrades, the scale set's instances and update domain; at the end, a table of
every step with its status and duration stays on screen (not transient), after a failure too."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .events import RUN_END, RunTracker, elapsed_text

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID
    from rich.table import Table

def duration_text(seconds: float) -> str:
    """A step's duration: tenths under a minute (most steps that change no cluster take seconds)."""
    return f"{seconds:.1f}s" if seconds < 60 else elapsed_text(seconds)


_MARKS = {"done": "[green]✓[/green]", "running": "[yellow]→[/yellow]", "failed": "[red]✗[/red]",
          "interrupted": "[red]■[/red]"}


class LiveProgress:
    """A live display at a terminal. Call it with events; ``close()`` leaves the per-step table on screen."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column

        self.console = console or Console()
        self.tracker = RunTracker()
        self._lock = threading.RLock()
        # the description gives way (ellipsis) before the spinner and the elapsed time do, at any width
        self.progress: Progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            TimeElapsedColumn(), console=self.console, auto_refresh=False, expand=True)
        self.run_task: TaskID = self.progress.add_task("sfmigrate apply", total=None)
        self.step_task: TaskID | None = None
        self._final: RenderableType | None = None  # the per-step table, once closed
        self._closed = False
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False,
                         get_renderable=self._render)
        self.live.start()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:  # never hold it while taking rich's (its refresh thread takes rich's, then this one)
            self.tracker.see(event)
            kind = event.get("type")
            if kind == "step-start":
                if self.step_task is not None:
                    self.progress.remove_task(self.step_task)
                self.step_task = self.progress.add_task(self._step_text(), total=None)
            elif kind in ("step-done", "step-failed", *RUN_END) and self.step_task is not None:
                self.progress.remove_task(self.step_task)
                self.step_task = None
            self._describe_run()
        if not self._closed:
            self.live.refresh()

    def heartbeat(self, event: dict[str, Any]) -> None:
        """The screen shows the elapsed time already: nothing to add."""

    def _describe_run(self) -> None:
        t = self.tracker
        self.progress.update(self.run_task, description=f"sfmigrate apply: {t.done}/{t.total or '?'} steps done")

    def _step_text(self) -> str:
        from rich.markup import escape

        row = self.tracker.rows.get(self.tracker.current or "")
        return f"[bold]{escape(row.name)}[/bold]: {escape(row.title)}" if row else ""  # names come from Azure

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        with self._lock:
            if self._final is not None:
                return self._final
            parts: list[RenderableType] = []
            for row in [r for r in self.tracker.rows.values() if r.status != "running"][-12:]:
                parts.append(Text.from_markup(_MARKS.get(row.status, "?")) + Text(f" {row.name} ({duration_text(row.seconds or 0)})"))
            parts.append(self.progress.get_renderable())
            if self.tracker.current is None and self.tracker.waiting_since is not None and self.tracker.state:
                parts.append(Text(f"    {self.tracker.state}"))  # a resumed run re-attaching or settling
            elif self.tracker.current:
                if self.tracker.cluster:
                    parts.append(Text(f"    cluster: {self.tracker.cluster}"))
                if self.tracker.instances:
                    parts.append(Text(f"    instances: {self.tracker.instances}"))
            return Group(*parts)

    def summary(self) -> Table:
        """Every step the run reached: status and duration."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="sfmigrate apply", title_justify="left")
        table.add_column("step")
        table.add_column("status")
        table.add_column("duration", justify="right")
        for row in self.tracker.rows.values():
            seconds = row.seconds if row.seconds is not None else self.tracker.clock() - row.started
            table.add_row(escape(row.name), f"{_MARKS.get(row.status, '')} {row.status}", duration_text(seconds))
        left = self.tracker.total - len(self.tracker.rows)
        if left > 0:
            table.add_row(f"({left} more not started)", "", "")
        return table

    def close(self) -> None:
        """Replace the live part by the per-step table and the run's outcome, and leave them on screen."""
        from rich.console import Group

        with self._lock:
            if self._closed:
                return
            self._closed = True
            # the outcome and its error are the CLI's to say, once (stderr)
            self._final = Group(self.summary()) if self.tracker.rows else Group()
        self.live.refresh()
        self.live.stop()
