"""The after-run report (issue 14): `sfmigrate report --state STATE PLANFILE` renders what a run did from its
journal alone; `rehearse` writes rehearsal.html with the durations the twin measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from migrate import commands
from migrate.rehearsal import rehearse
from twinkit import fast_session, requests_json


def _report(twin_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", "report", *args], env={**os.environ, **twin_env},
                          capture_output=True, text=True, timeout=120)


def test_report_renders_the_run_from_the_journal_without_azure(twin_factory, tmp_path: Path) -> None:
    live = twin_factory("goal-primary")
    state = tmp_path / "state"
    applied = commands.apply(live.plan_file, state_location=str(state), session=fast_session(live))
    before = requests_json(live)["total"]

    done = _report(live.env, "--state", str(state), str(live.plan_file), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "run" and report["status"] == "complete"
    assert [s["name"] for s in report["steps"]] == [s.name for s in applied.plan.steps]
    assert all(s["status"] == "done" and s["started_at"] and s["finished_at"] for s in report["steps"])
    assert report["declaration"]["before"]["kind"] == "thumbprint"
    assert report["declaration"]["after"]["kind"] == "common name"
    assert report["declaration"]["observed"]["declaration"] == "common_name"

    page = tmp_path / "out" / "run.html"
    done = _report(live.env, "--state", str(state), str(live.plan_file), "--out", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    for card in ('id="verdict"', 'id="declaration"', 'id="timeline"'):
        assert card in html
    assert "<script" not in html and "complete" in html
    assert all(f'data-step="{s.name}"' in html for s in applied.plan.steps)  # one timeline bar per step
    markdown = _report(live.env, "--state", str(state), str(live.plan_file), "--format", "md")
    assert markdown.returncode == 0 and "| 1 |" in markdown.stdout
    assert report["findings"] is None  # a YAML plan file: the journal keeps no findings
    # The journal was enough: the twin received no request while the reports were rendered.
    assert requests_json(live)["total"] == before
    # Given the saved plan instead, the report lists the plan's findings too.
    saved = commands.save_plan(applied.plan, fast_session(live).spec, tmp_path / "saved.json")
    with_findings = json.loads(_report(live.env, "--state", str(state), str(saved), "--format", "json").stdout)
    assert applied.plan.findings  # goal-primary has some (info at least)
    assert sorted(f["code"] for f in with_findings["findings"]) == sorted(f.code for f in applied.plan.findings)


def test_report_without_a_journal_names_state_and_exits_64(twin_factory, tmp_path: Path) -> None:
    live = twin_factory("goal-primary")
    done = _report(live.env, "--state", str(tmp_path / "empty"), str(live.plan_file))
    assert done.returncode == 64
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--state" in lines[0] and "no journal" in lines[0], done.stderr
    bad = _report(live.env, "--state", str(tmp_path / "empty"), str(live.plan_file), "--format", "yaml")
    assert bad.returncode == 64 and "--format" in bad.stderr


def test_rehearse_writes_its_report_with_the_twin_durations_in_azure_time(twin_factory, tmp_path: Path) -> None:
    live = twin_factory("goal-primary")
    result = rehearse(live.plan_file, out=tmp_path / "rehearsal", session=fast_session(live), time_scale=2000.0)
    assert result.outcome == "Healthy"
    assert result.report_file == tmp_path / "rehearsal" / "rehearsal.html" and result.report_file.is_file()
    html = result.report_file.read_text()
    for card in ('id="verdict"', 'id="declaration"', 'id="timeline"'):
        assert card in html
    assert all(f'data-step="{name}"' in html for name in result.twin_steps)
    # A cluster upgrade walks its update domains for simulated minutes: in Azure's time it shows in minutes,
    # although the rehearsal took seconds of wall time.
    assert "min</text>" in html and result.seconds < 120


def test_demo_writes_the_after_run_report_beside_the_plan_report(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    done = subprocess.run([sys.executable, "-m", "migrate", "demo", "--out", str(out), "--time-scale", "3000"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (out / "plan.html").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and all(s["status"] == "done" for s in run["steps"])
    html = (out / "run.html").read_text()
    assert all(card in html for card in ('id="verdict"', 'id="declaration"', 'id="timeline"'))
    assert "run.html" in done.stdout
