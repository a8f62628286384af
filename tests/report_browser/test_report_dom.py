"""The HTML reports in a real browser (issue 14): Debian's chromium, headless, at 1280x800.

Each report (a plan with changes, a blocked plan, the after-run report, a rehearsal) is rendered from a real run
on the twin, screenshot to a PNG and dumped as a DOM. The checks: the three cards are there, nothing overflows
the window horizontally, and every runbook link names a file of the repository.

The report has no script, so the layout is measured on a test-only copy of it (in the test's folder) with one
inline script appended that writes the page's widths and any element sticking out past the viewport into
``data-`` attributes of ``<body>``, which ``--dump-dom`` then shows. ``make test`` installs chromium
(``make chromium``); without it these tests fail, saying so: a missing browser is a broken setup, not a skip.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable

import pytest

from migrate import commands
from migrate.rehearsal import rehearse
from migrate.report import write_report
from migrate.report.run import render_run, report_for
from twinkit import PlannedTwin, fast_session

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1280, 800
CARDS = ("verdict", "declaration", "timeline")
# Appended to a copy of the report only: what overflows the viewport, written where --dump-dom shows it.
MEASURE = """<script>
(function () {
  var root = document.documentElement, limit = root.clientWidth + 1, out = [];
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > limit) { out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + e.className); }
  });
  document.body.setAttribute("data-scroll-width", String(root.scrollWidth));
  document.body.setAttribute("data-client-width", String(root.clientWidth));
  document.body.setAttribute("data-overflowing", out.slice(0, 10).join(" | "));
})();
</script>"""


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        # `make test` installs it (make chromium); a missing browser is a broken setup, not a skip
        pytest.fail("chromium is missing: run `make chromium` (apt-get install chromium, as root or with sudo)")
    return found


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},{HEIGHT}",
                           f"--user-data-dir={profile}", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=60)


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.body: dict[str, str] = {}
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "href" in values:
            self.hrefs.append(values["href"])
        if tag == "body":
            self.body = values


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def check_in_browser(report: Path, work: Path) -> Dom:
    """Screenshot the report as it is, measure a copy with the probe, and return the measured DOM."""
    html = report.read_text(encoding="utf-8")
    assert "<script" not in html, f"{report.name} has a script"
    shot = work / f"{report.stem}.png"
    done = run_chromium(work / "profile-shot", f"--screenshot={shot}", report.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    assert png_size(shot) == (WIDTH, HEIGHT)
    probe = work / f"{report.stem}-probe.html"
    probe.write_text(html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dumped = run_chromium(work / "profile-dom", "--dump-dom", probe.as_uri())
    assert dumped.returncode == 0 and "<body" in dumped.stdout, dumped.stderr[-2000:]
    dom = Dom()
    dom.feed(dumped.stdout)
    return dom


def assert_report_reads_well(dom: Dom, name: str) -> None:
    assert set(CARDS) <= dom.ids, f"{name}: cards {set(CARDS) - dom.ids} missing"
    assert "svg" in dom.tags and "script" in dom.tags  # the timeline's SVG; the probe's script ran (body attributes)
    scroll, client = int(dom.body["data-scroll-width"]), int(dom.body["data-client-width"])
    assert scroll <= client, f"{name}: {scroll}px wide in a {client}px window"
    assert dom.body["data-overflowing"] == "", f"{name}: past the window's edge: {dom.body['data-overflowing']}"
    for href in dom.hrefs:  # runbook links: repository paths, each an existing file
        assert not href.startswith(("http:", "https:", "file:", "/")), href
        assert (ROOT / href).is_file(), f"{name}: link {href} names no file of the repository"


@pytest.fixture
def reports(twin_factory: Callable[..., PlannedTwin], tmp_path: Path) -> dict[str, Path]:
    """The four kinds of page, each from a real run on the twin."""
    out = tmp_path / "reports"
    pages: dict[str, Path] = {}
    blocked = twin_factory("issuer-not-pinned")
    planned = commands.plan(blocked.plan_file, session=fast_session(blocked))
    assert planned.plan.blocked
    pages["blocked"] = out / "blocked.html"
    write_report(planned.plan, str(pages["blocked"]), snapshot=planned.snapshot)

    live = twin_factory("multi-nodetype")
    session = fast_session(live)
    planned = commands.plan(live.plan_file, session=session)
    pages["plan"] = out / "plan.html"
    write_report(planned.plan, str(pages["plan"]), snapshot=planned.snapshot, rollout=session.spec.rollout)
    rehearsal = rehearse(live.plan_file, out=tmp_path / "rehearsal", session=session)
    assert rehearsal.report_file is not None
    pages["rehearsal"] = rehearsal.report_file
    commands.apply(live.plan_file, state_location=str(tmp_path / "state"), session=session)
    pages["run"] = out / "run.html"
    pages["run"].write_text(render_run(report_for(str(live.plan_file), str(tmp_path / "state")), "html"), encoding="utf-8")
    return pages


def test_reports_render_in_chromium_with_three_cards_no_overflow_and_live_runbook_links(reports: dict[str, Path], tmp_path: Path) -> None:
    chromium()
    links: dict[str, Any] = {}
    for name, page in reports.items():
        dom = check_in_browser(page, tmp_path / "browser" / name)
        assert_report_reads_well(dom, name)
        links[name] = dom.hrefs
    # The pages with findings link each one's runbook page (the blocked plan's blockers twice: verdict and table).
    assert any(h.startswith("runbooks/findings/ISSUER_NOT_PINNED") for h in links["blocked"])
    assert len(links["plan"]) >= 3


def test_the_probe_would_see_an_overflow(tmp_path: Path) -> None:
    """The check can fail: a page wider than the window is reported."""
    chromium()
    page = tmp_path / "wide.html"
    page.write_text('<!DOCTYPE html><html><body><div id="verdict"></div><div id="declaration"></div><div id="timeline">'
                    '<svg></svg><pre>' + "x" * 400 + "</pre></div></body></html>", encoding="utf-8")
    dom = check_in_browser(page, tmp_path / "browser")
    with pytest.raises(AssertionError, match="wide in a"):
        assert_report_reads_well(dom, "wide")
