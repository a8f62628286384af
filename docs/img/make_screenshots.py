"""Regenerate the README's screenshots from the demo scenario: ``.venv/bin/python docs/img/make_screenshots.py``.

- ``report-plan.png``: the plan's HTML report (verdict, declaration, timeline), headless chromium at 1280 wide;
- ``report-run.png``: the after-run report of the same demo run (``sfmigrate report``);
- ``live-view.png``: the live view as ``LiveProgress`` leaves it at the end of the demo's apply, recorded by a rich
  console (``Console(record=True)``), exported as SVG and screenshot with chromium.

Needs Debian's chromium (``make chromium``). Runs ``make demo``'s story on a twin in a temporary folder.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPORT_SIZE = (1280, 1320)  # the three cards of the demo's reports


def screenshot(page: Path, target: Path, size: tuple[int, int], profile: Path) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        sys.exit("make_screenshots: chromium is missing (make chromium)")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
                    f"--window-size={size[0]},{size[1]}", f"--screenshot={target}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")


def run_demo_recording(out: Path) -> list[Any]:
    """The demo with its live view; every rich console sfmigrate makes records what it prints (no terminal:
    the live view prints only its final screen, as a non-transient rich Live does when it stops)."""
    import rich.console

    from migrate import progress
    from migrate.demo import run_demo

    original = rich.console.Console
    consoles: list[Any] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        kwargs.update(record=True, file=io.StringIO(), width=110, force_terminal=False, color_system="truecolor")
        console = original(*args, **kwargs)
        consoles.append(console)
        return console

    close = progress.LiveProgress.close

    def close_and_keep(self: Any) -> None:
        live = getattr(self, "live", None)
        close(self)
        if live is not None and getattr(live, "transient", False):  # a transient view leaves nothing: keep its last screen
            live.console.print(live.renderable)

    rich.console.Console = recording  # type: ignore[misc,assignment]
    progress.LiveProgress.close = close_and_keep  # type: ignore[method-assign]
    try:
        code = run_demo(out, time_scale=3000.0, echo=lambda _line: None, live=True)
    finally:
        rich.console.Console = original  # type: ignore[misc]
        progress.LiveProgress.close = close  # type: ignore[method-assign]
    if code != 0:
        sys.exit(f"make_screenshots: the demo ended with exit code {int(code)}")
    return [c for c in consoles if c.export_text(clear=False).strip()]


def main() -> None:
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="sfmigrate-shots-") as folder:
        tmp = Path(folder)
        os.environ["SFMIGRATE_LOCK_DIR"] = str(tmp / "locks")  # this machine's cluster locks: the demo's own
        os.chdir(tmp)  # the reports name the journal as make demo's do: demo-output/state/…
        consoles = run_demo_recording(Path("demo-output"))
        demo = tmp / "demo-output"
        screenshot(demo / "plan.html", HERE / "report-plan.png", REPORT_SIZE, tmp / "profile")
        screenshot(demo / "run.html", HERE / "report-run.png", REPORT_SIZE, tmp / "profile")
        if not consoles:
            sys.exit("make_screenshots: the live view printed nothing")
        svg = consoles[-1].export_svg(title="sfmigrate apply (make demo)")
        box = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
        width, height = (int(float(box.group(1))) + 1, int(float(box.group(2))) + 1) if box else (1000, 600)
        (tmp / "live.svg").write_text(svg, encoding="utf-8")
        screenshot(tmp / "live.svg", HERE / "live-view.png", (width, height), tmp / "profile")
        os.chdir(home)


if __name__ == "__main__":
    main()
