"""``fleet apply``'s live view at a terminal (rich ``Progress``): one line per cluster — spinner, cluster, current
step (steps done / total, and the cluster's state or the scale set's roll-out while it waits), elapsed time,
outcome. Not transient: when the run ends the lines give way to a per-cluster table that stays on screen.

Events come from ``migrate.fleet.apply.FleetRun`` (each carries ``cluster``, the cluster's label), one at a time
under the fleet's emit lock."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

from .events import RunTracker, elapsed_text

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID
    from rich.table import Table

# outcome words of migrate.fleet.apply, with the mark shown beside them
OUTCOME_MARKS = {"done": "[green]✓[/green]", "nothing-to-do": "[green]✓[/green]", "postponed": "[yellow]‖[/yellow]",
                 "skipped-blocked": "[yellow]⊘[/yellow]", "failed": "[red]✗[/red]", "locked": "[red]✗[/red]",
                 "interrupted": "[red]■[/red]", "not-started": "·"}


class FleetLiveProgress:
    """A live display of a fleet run; call it with events, then ``close(rows)`` to leave the per-cluster table."""

    def __init__(self, labels: Sequence[str], console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.table import Column

        self.console = console or Console()
        self._lock = threading.RLock()
        width = max([len(label) for label in labels] + [7])
        # the step gives way (ellipsis) before the cluster, elapsed time and outcome do, at any width
        self.progress: Progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.fields[cluster]}", table_column=Column(min_width=min(width, 40), no_wrap=True, overflow="ellipsis")),
            TextColumn("{task.fields[step]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            TimeElapsedColumn(),
            TextColumn("{task.fields[outcome]}", table_column=Column(min_width=14, no_wrap=True)),
            console=self.console, auto_refresh=False, expand=True)
        from rich.markup import escape

        self.trackers: dict[str, RunTracker] = {}
        self.tasks: dict[str, TaskID] = {}
        for label in labels:  # every cluster has its line from the start: waiting ones show "waiting"
            self.tasks[label] = self.progress.add_task("", total=1, start=False, cluster=escape(label), step="[dim]waiting[/dim]", outcome="")
            self.trackers[label] = RunTracker()
        self._final: RenderableType | None = None
        self._more = ""  # "… N more clusters" when the terminal cannot show every line
        self._closed = False
        self._fit()
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False,
                         get_renderable=self._render)
        self.live.start()

    def __call__(self, event: dict[str, Any]) -> None:
        from rich.markup import escape

        label = str(event.get("cluster") or "")
        with self._lock:  # never held while taking rich's lock (its refresh thread takes rich's, then this one)
            task = self.tasks.get(label)
            if task is None:
                return
            tracker = self.trackers[label]
            if not self.progress.tasks[self._index(task)].started:
                self.progress.start_task(task)
            if event.get("type") == "cluster-finished":
                outcome = str((event.get("detail") or {}).get("outcome") or "")
                self.progress.update(task, completed=1, step=self._step_text(tracker, finished=True),
                                     outcome=f"{OUTCOME_MARKS.get(outcome, '?')} {escape(outcome)}")
                self.progress.stop_task(task)  # its elapsed time stops there
            else:
                tracker.see(event)
                self.progress.update(task, step=self._step_text(tracker), outcome="[yellow]running[/yellow]")
            self._fit()
        if not self._closed:
            self.live.refresh()

    def heartbeat(self, event: dict[str, Any]) -> None:
        """The screen shows each cluster's elapsed time already: nothing to add."""

    def _fit(self) -> None:
        """No more lines than the terminal has: the running clusters first, then the waiting, then the finished
        ones (in the fleet's order within each), and one line counting those left out."""
        tasks = self.progress.tasks
        limit = max(3, self.console.size.height - 2)
        if len(tasks) <= limit:
            self._more = ""
            return

        def rank(index: int) -> tuple[int, int]:
            task = tasks[index]
            return (2 if task.finished else 0 if task.started else 1), index

        shown = set(sorted(range(len(tasks)), key=rank)[:limit - 1])
        for index, task in enumerate(tasks):
            self.progress.update(task.id, visible=index in shown)
        hidden = [tasks[i] for i in range(len(tasks)) if i not in shown]
        finished = sum(1 for t in hidden if t.finished)
        self._more = f"… {len(hidden)} more clusters: {finished} finished, {len(hidden) - finished} waiting"

    def _index(self, task: TaskID) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == task)

    @staticmethod
    def _step_text(tracker: RunTracker, finished: bool = False) -> str:
        from rich.markup import escape

        count = f"{tracker.done}/{tracker.total or '?'}"
        if finished:
            return f"{count} steps"
        row = tracker.rows.get(tracker.current or "")
        if row is None:  # before the first step (planning) or between two (a settle window, re-attaching)
            return f"{count} [dim]{escape(tracker.state or ('between steps' if tracker.rows else 'planning'))}[/dim]"
        state = f" · {escape(tracker.state)}" if tracker.state else ""  # a roll-out's or the cluster's state: from Azure
        return f"{count} [bold]{escape(row.name)}[/bold]{state}"

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        with self._lock:
            if self._final is not None:
                return self._final
            return Group(self.progress.get_renderable(), Text(self._more, style="dim")) if self._more else self.progress.get_renderable()

    @staticmethod
    def summary(rows: Sequence[dict[str, Any]]) -> Table:
        """Every cluster's outcome (``FleetApplyResult.to_report()["clusters"]``): steps, writes, seconds, detail."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="sfmigrate fleet apply", title_justify="left")
        for name, justify in (("cluster", "left"), ("outcome", "left"), ("steps", "right"), ("writes", "right"),
                              ("elapsed", "right"), ("detail", "left")):
            table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in rows:
            outcome = str(row.get("outcome") or "")
            seconds = row.get("seconds")
            table.add_row(escape(str(row.get("label"))), f"{OUTCOME_MARKS.get(outcome, '')} {escape(outcome)}",
                          str(row.get("steps") or 0), str(row.get("mutating_requests") or 0),
                          "-" if seconds is None else elapsed_text(float(seconds)), escape(str(row.get("detail") or "")))
        return table

    def close(self, rows: Sequence[dict[str, Any]] | None = None) -> None:
        """Replace the live lines by the per-cluster table (``rows``; nothing when None) and leave it on screen."""
        from rich.console import Group

        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._final = Group(self.summary(rows)) if rows else Group()
        self.live.refresh()
        self.live.stop()
