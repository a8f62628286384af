"""Regenerate docs/img/live-view.svg: the live view of a real ``apply`` on the Azure twin, captured as rich draws
it (one frame during the cluster conversion, then the per-step table left at the end).

    .venv/bin/python docs/img/live_view.py
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.rule import Rule

from aztwin import start_twin
from migrate import commands
from migrate.progress import Heartbeat, LiveProgress, cluster_state_probe
from migrate.twin_plan import write_plan_for

OUT = Path(__file__).with_name("live-view.svg")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        twin = start_twin("multi-nodetype", time_scale=200, state_dir=Path(folder) / "twin")
        try:
            os.environ.update(twin.env)
            plan_file = write_plan_for(twin)
            assert plan_file is not None
            spec, _ = commands.load_source(plan_file)
            session = commands.open_session(spec)
            live = LiveProgress(Console(file=io.StringIO(), force_terminal=True, width=110))
            frame: list[Any] = []

            class Capture:  # the live view, and one frame of it once the conversion's upgrade shows
                def __call__(self, event: dict[str, Any]) -> None:
                    live(event)
                    if event["type"] == "cluster" and event.get("step") == "convert-cluster" and not frame:
                        time.sleep(1.5)  # let the elapsed columns move
                        frame.append(live._render())

                def heartbeat(self, event: dict[str, Any]) -> None:
                    live.heartbeat(event)

            watch = Heartbeat(Capture(), None, probe=cluster_state_probe(session), probe_interval=1)
            try:
                result = commands.apply(plan_file, state_location=str(Path(folder) / "state"), emit=watch, session=session)
            finally:
                watch.close()
                live.close()
        finally:
            twin.stop()
    shot = Console(record=True, width=110, file=io.StringIO(), force_terminal=True)
    shot.print(Rule("during the cluster conversion"))
    shot.print(Group(*frame))
    shot.print(Rule("when the run ends"))
    shot.print(live.summary())
    shot.print(f"complete: {len(result.plan.steps)} steps, {result.mutating} changes sent (credential: DefaultAzureCredential)")
    OUT.write_text(shot.export_svg(title="sfmigrate apply"), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
