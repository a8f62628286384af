"""The fleet plan's HTML report in a real browser (issue 15): ``fleet plan --format html --out DIR`` on the twin's
``fleet`` scenario (13 clusters, one blocked), rendered by headless chromium at 1280x800 as the single-cluster
reports are (tests/report_browser/test_report_dom.py: one screenshot, one DOM dump with the overflow probe)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from twinkit import PlannedTwin, load_test_module

ROOT = Path(__file__).resolve().parents[2]
FLEET_CARDS = ("verdict", "fleet", "timeline")


def _browser_checks() -> Any:
    """test_report_dom.py's chromium helpers (loaded by path, under a name of its own)."""
    return load_test_module("report_browser/test_report_dom.py", "browser_checks_for_fleet")


def test_fleet_report_renders_with_its_cards_a_timeline_row_per_cluster_no_overflow_and_live_runbook_links(
        twin_factory: Callable[..., PlannedTwin], tmp_path: Path) -> None:
    browser = _browser_checks()
    browser.chromium()
    twin = twin_factory("fleet")
    out = tmp_path / "plans"
    done = subprocess.run([sys.executable, "-m", "migrate", "fleet", "plan", str(Path(twin.state_dir) / "fleet.yaml"),
                           "--format", "html", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]  # one cluster blocked
    page = out / "fleet.html"
    html = page.read_text(encoding="utf-8")
    assert done.stdout.startswith("<!DOCTYPE html>") and "id=\"verdict\"" in done.stdout  # --format html on stdout too

    rows = re.findall(r'<g class="row" data-cluster="[^"]+" data-status="(\w+)"', html)
    assert len(rows) == 13, rows  # one timeline row per cluster
    changing = [s for s in rows if s == "changes"]
    assert changing and rows.count("blocked") == 1
    bars = re.findall(r'<g class="row" data-cluster="[^"]+" data-status="changes">(.*?)</g>', html, re.S)
    assert len(bars) == len(changing) and all("<rect class=\"conversion\"" in b for b in bars), "a changing cluster has no conversion bar"
    assert re.search(r'class="summary BLOCKED">13 clusters: \d+ to change, 1 blocked', html)

    dom = browser.check_in_browser(page, tmp_path / "browser")
    assert set(FLEET_CARDS) <= dom.ids, f"cards {set(FLEET_CARDS) - dom.ids} missing"
    assert "svg" in dom.tags and "script" in dom.tags  # the timeline's SVG; the probe's script ran
    scroll, client = int(dom.body["data-scroll-width"]), int(dom.body["data-client-width"])
    assert scroll <= client, f"fleet.html: {scroll}px wide in a {client}px window"
    assert dom.body["data-overflowing"] == "", f"fleet.html: past the window's edge: {dom.body['data-overflowing']}"
    assert dom.hrefs, "the blocked cluster's findings link no runbook"
    for href in dom.hrefs:  # runbook links: repository paths, each an existing file
        assert href.startswith("runbooks/") and (ROOT / href).is_file(), href
