"""The HTML report's pure parts (issue 14): expected durations from the scale sets' shapes, actual times from a
journal, the rehearsal's measured times, the declaration before -> after, and the page's three cards."""

from __future__ import annotations

import re

from migrate.journal.model import JournalState, StepRecord
from migrate.report import render_plan
from migrate.report.declaration import plan_declaration, run_declaration
from migrate.report.html import render_rehearsal_html
from migrate.report.run import build_run_report, render_run
from migrate.report.timeline import (
    BATCH_SECONDS, CERTIFICATE_PASSES, DOMAIN_WORK, HEALTH_CHECK_STABLE, ScaleSetShape, expected_timeline, layout,
    measured_timeline, rollout_batches, run_timeline,
)
from migrate.spec import RolloutSpec
from test_report import BLOCKED, CLUSTER, EVIL, VMSS, READY, make_plan

CARDS = ('id="verdict"', 'id="declaration"', 'id="timeline"')


def shape(instances: int, domains: int, mode: str) -> dict[str, ScaleSetShape]:
    return {VMSS.lower(): ScaleSetShape("nt0", instances, domains, mode)}


def test_rollout_batches_follow_the_upgrade_policy() -> None:
    assert rollout_batches(ScaleSetShape("a", 10, 5, "automatic")) == 1  # every instance at once
    assert rollout_batches(ScaleSetShape("r", 10, 5, "rolling")) == 5  # 20 % per batch
    assert rollout_batches(ScaleSetShape("m", 10, 5, "manual")) == 5  # one batch per update domain
    assert rollout_batches(ScaleSetShape("m", 10, 5, "manual"), manual_percent=10) == 10  # 2 per domain, 1 per batch
    assert rollout_batches(ScaleSetShape("m", 0, 0, "manual")) == 0


def test_expected_timeline_grows_with_update_domains_and_waits_out_the_settle_window() -> None:
    plan = READY
    small = expected_timeline(plan, shape(2, 2, "manual"), RolloutSpec(settleMinutes=15))
    large = expected_timeline(plan, shape(10, 5, "manual"), RolloutSpec(settleMinutes=15))
    bars = {bar.step: bar for bar in large.bars}
    per_domain = DOMAIN_WORK + HEALTH_CHECK_STABLE
    assert bars["declare-goal"].seconds == CERTIFICATE_PASSES * 5 * per_domain
    assert bars["declare-goal"].settle == 15 * 60  # another step follows the upgrade
    assert bars["convert"].settle == 0  # the last step: nothing waits after it
    assert bars["add-goal-secret"].seconds == 5 * BATCH_SECONDS
    assert large.total > small.total
    # Back to back: each bar starts where the previous one (with its settle wait) ended.
    for earlier, later in zip(large.bars, large.bars[1:]):
        assert later.start == earlier.end
    assert expected_timeline(plan, {}).footnotes[-1].startswith("The scale sets were not read")


def test_run_timeline_takes_the_journal_times() -> None:
    state = JournalState.new(CLUSTER, "hash", "fp", ["a", "b", "c"])
    state.steps[0] = StepRecord("a", "done", 1, "2026-06-01T10:00:00Z", "2026-06-01T10:00:30Z")
    state.steps[1] = StepRecord("b", "failed", 2, "2026-06-01T10:01:00Z", "2026-06-01T11:01:00Z", last_error="boom")
    state.status = "failed"
    timeline = run_timeline(state)
    a, b, c = timeline.bars
    assert (a.start, a.seconds, b.start, b.seconds) == (0.0, 30.0, 60.0, 3600.0)
    assert (b.status, c.status, c.seconds) == ("failed", "pending", 0.0)
    assert timeline.started_at == "2026-06-01T10:00:00Z"
    report = build_run_report(state, "file:/x")
    assert report.current is not None and report.current.name == "b" and "failed at step b" in report.summary()
    html = render_run(report, "html")
    assert all(card in html for card in CARDS) and "boom" in html and "1 h</text>" in html


def test_measured_timeline_scales_wall_time_to_the_twin_clock() -> None:
    events = [{"type": "step-start", "step": "s", "at": 10.0, "detail": {"title": "S"}},
              {"type": "step-done", "step": "s", "at": 10.5},
              {"type": "step-start", "step": "t", "at": 11.0},
              {"type": "step-failed", "step": "t", "at": 11.25}]
    timeline = measured_timeline(events, 2000.0, {"s": "set_cluster_certificate"})
    s, t = timeline.bars
    assert (s.seconds, s.phase, t.start, t.seconds, t.status) == (1000.0, "cluster-upgrade", 2000.0, 500.0, "failed")


def test_declaration_before_and_after_fold_the_cluster_changes() -> None:
    ba = plan_declaration(READY)
    assert ba.before.kind == "thumbprint" and ba.after.kind == "common name" and ba.changes
    assert [line.value for line in ba.after.lines] == ["sfprod.contoso.com"]
    nothing = plan_declaration(make_plan(with_steps=False))
    assert nothing.before.kind == "unknown" and not nothing.changes
    # A run: only the done steps' changes count.
    state = JournalState.new(CLUSTER, "h", "f", [s.name for s in READY.steps])
    for record, step in zip(state.steps, READY.steps):
        record.step = step
        record.status = "done" if step.name != "convert" else "failed"
    assert run_declaration(state).after.kind == "thumbprint"


def test_every_page_has_the_three_cards_is_escaped_and_has_no_script() -> None:
    plan = make_plan()
    plan.steps[-1].changes[1].after = {"commonNames": [{"certificateCommonName": EVIL}]}
    pages = [render_plan(BLOCKED, "html"), render_plan(plan, "html"),
             render_rehearsal_html(outcome="Broken", verdict={"health_worst_reasons": [EVIL]}, findings=BLOCKED.findings,
                                   timeline=expected_timeline(plan, {}), declaration=plan_declaration(plan), notes=[EVIL],
                                   error=None, scenario_file="/tmp/s.yaml", cluster_id=CLUSTER)]
    for page in pages:
        assert all(card in page for card in CARDS)
        assert "<script" not in page and "<svg" in page
        assert "word-break:break-all" not in page  # prose never breaks mid-letter
    assert "&lt;script&gt;" in pages[1] and "&lt;script&gt;" in pages[2]
    # Long ids wrap between their segments.
    assert "/<wbr>resourceGroups/<wbr>rg/<wbr>" in pages[0]


def test_layout_fits_every_bar_in_the_chart() -> None:
    timeline = expected_timeline(READY, shape(10, 5, "rolling"))
    geometry = layout(timeline)
    for row in geometry.rows:
        assert geometry.label_width <= row.x and row.settle_x + row.settle_width <= geometry.width - 60
    assert re.match(r"\d", geometry.ticks[-1][1])


def test_every_template_ships_as_package_data() -> None:
    """The templates are read through the package loader: pyproject's package-data must name each of them."""
    import fnmatch
    from pathlib import Path

    import pytest

    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["migrate"]
    templates = sorted((root / "migrate" / "report" / "templates").iterdir())
    assert templates
    for path in templates:
        relative = path.relative_to(root / "migrate").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), f"{relative} is not in package-data"


def test_declaration_shows_the_reverse_proxy_when_declared() -> None:
    from migrate.plan import Change

    plan = make_plan()
    plan.steps[-1].changes.append(Change("properties.reverseProxyCertificate", {"thumbprint": "D" * 40}, None))
    plan.steps[-1].changes.append(Change("properties.reverseProxyCertificateCommonNames", None, {
        "commonNames": [{"certificateCommonName": "proxy.contoso.com", "certificateIssuerThumbprint": "e" * 40 + ", " + "F" * 40}]}))
    ba = plan_declaration(plan)
    assert [(line.role, line.by, line.value) for line in ba.before.lines if line.role == "reverse proxy"] == \
        [("reverse proxy", "thumbprint", "D" * 40)]
    after = [line for line in ba.after.lines if line.role == "reverse proxy"]
    assert [(line.by, line.value, line.issuers) for line in after] == [("common name", "proxy.contoso.com", ("E" * 40, "F" * 40))]
    page = render_plan(plan, "html")
    assert "reverse proxy, common name" in page and "proxy.contoso.com" in page


def test_expected_timeline_starts_a_phase_on_every_node_type_together_as_apply_does() -> None:
    import dataclasses

    from migrate.steps import stage_goal

    nt1 = VMSS.rsplit("/", 1)[0] + "/nt1"
    first = READY.steps[1]
    second = dataclasses.replace(first, name="add-goal-secret-nt1", resources=[nt1],
                                 params=stage_goal.Params(vmss_id=nt1, vault_id="/v", secret_url="https://kv.vault.azure.net/secrets/c/1",
                                                          primary="A" * 40))
    plan = dataclasses.replace(READY, steps=[READY.steps[0], first, second, *READY.steps[2:]])
    shapes = {**shape(10, 5, "manual"), nt1.lower(): ScaleSetShape("nt1", 4, 2, "manual")}
    together = {bar.step: bar for bar in expected_timeline(plan, shapes).bars}
    assert together["add-goal-secret"].start == together["add-goal-secret-nt1"].start  # default: all node types at once
    assert together["declare-goal"].start == together["add-goal-secret"].end  # the longer one ends the phase
    one_by_one = {bar.step: bar for bar in expected_timeline(plan, shapes, node_type_concurrency=1).bars}
    assert one_by_one["add-goal-secret-nt1"].start == one_by_one["add-goal-secret"].end
