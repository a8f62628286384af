"""``fleet apply`` at a real terminal (a pseudo-terminal): one live line per cluster (spinner, cluster, current step,
elapsed, outcome) while it runs, and a per-cluster table left on screen at the end (issue 15, "Progress")."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from twinkit import world_json, load_test_module

REPO = Path(__file__).resolve().parents[2]
LABELS = ("rg-sf/sfcluster", "rg-sf-b/sfcluster")  # two-clusters: both clusters are named sfcluster


def _pty_helpers() -> Any:
    """tests/e2e/test_live_view_pty.py's pseudo-terminal runner (loaded by path, under a name of its own)."""
    return load_test_module("e2e/test_live_view_pty.py", "pty_helpers_for_fleet")


def test_fleet_apply_at_a_terminal_shows_a_line_per_cluster_then_leaves_a_table_per_cluster(twin_factory, tmp_path: Path) -> None:
    pty = _pty_helpers()
    twin = twin_factory("two-clusters", time_scale=300)  # each cluster upgrade lasts a few wall seconds
    env = {**os.environ, **twin.env}
    fleet_file = Path(twin.state_dir) / "fleet.yaml"
    code, output = pty.in_pty(["fleet", "apply", str(fleet_file), "--yes", "--concurrency", "2", "--state", str(tmp_path / "state")], env)
    assert code == 0, output[-3000:]
    text = pty.ANSI.sub("", output)
    assert pty.SPINNER & set(text), "no spinner frame was drawn"
    assert re.search(r"\b0:00:0\d\b", text), "no elapsed time (h:mm:ss) was drawn"
    # while both ran, one screen showed both clusters' lines, each with its current step and 'running'
    frames = [pty.ANSI.sub("", frame) for frame in pty.ERASE.split(output)]
    both_running = [f for f in frames if all(re.search(rf"{re.escape(label)}\s+\d+/\d+ \S+.*running", f) for label in LABELS)]
    assert both_running, text[-3000:]
    assert any(re.search(r"\d+/\d+ install-kv-extension:nt0 · nt0: \d/3 instances on the latest model", f) for f in frames), \
        "a scale set's roll-out was not shown beside its step"

    final = pty.after_last_redraw(output)
    assert "sfmigrate fleet apply" in final and "outcome" in final and "writes" in final, final
    for label in LABELS:
        row = next((line for line in final.splitlines() if label in line), "")
        assert re.search(r"✓ done\s.*\s\d+\s.*\d+s", row), (label, final)
    assert not pty.SPINNER & set(final), "the live lines were left on screen instead of the table"
    assert "[rg-sf/sfcluster]" not in text, "plain lines were printed at a terminal"
    for cluster in world_json(twin)["clusters"]:
        assert cluster["declaration"] == "common_name", cluster["id"]


def test_a_fleet_taller_than_the_terminal_shows_the_running_clusters_and_counts_the_rest() -> None:
    """In process, on a 100x8 console: 20 clusters cannot all have a line; the running one keeps its line."""
    import io

    from rich.console import Console

    from migrate.progress.fleet_view import FleetLiveProgress

    screen = Console(file=io.StringIO(), force_terminal=True, width=100, height=8)
    labels = [f"rg/sf-{n:02d}" for n in range(20)]
    view = FleetLiveProgress(labels, console=screen)
    try:
        view({"type": "run-start", "cluster": "rg/sf-15", "step": None, "time": "", "detail": {"steps": 4}})
        view({"type": "step-start", "cluster": "rg/sf-15", "step": "stage-goal:nt0", "time": "", "detail": {"title": "stage"}})
        view({"type": "cluster-finished", "cluster": "rg/sf-03", "step": None, "time": "", "detail": {"outcome": "done"}})
        shown = io.StringIO()
        Console(file=shown, width=100, height=8).print(view._render())
    finally:
        view.close([{"label": label, "outcome": "done", "steps": 4, "mutating_requests": 9, "seconds": 12.0} for label in labels])
    lines = [line for line in shown.getvalue().splitlines() if line.strip()]
    assert len(lines) <= 6, lines
    assert any("rg/sf-15" in line and "stage-goal:nt0" in line for line in lines), lines
    assert not any("rg/sf-03" in line for line in lines), "a finished cluster took a line from a waiting one"
    assert lines[-1] == "… 15 more clusters: 1 finished, 14 waiting", lines
    final = io.StringIO()
    Console(file=final, width=100, height=8).print(view._render())
    assert all(label in final.getvalue() for label in labels)  # the table at the end has every cluster
