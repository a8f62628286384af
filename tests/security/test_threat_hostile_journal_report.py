"""Threat: whoever can write the state folder or the blob container plants markup in a journal (a step's title, an
error, an observed value, a declaration in a step's changes) so that the after-run HTML report a reviewer opens
runs a script, loads something, or links somewhere else; or feeds a malformed journal to crash ``sfmigrate report``.
Defence (issue 14; docs/reports.md): the page comes from jinja2 templates with autoescape on and has no script of
its own; its only links are runbook paths built from a validated step kind or a finding's page; the journal is
validated field by field before anything is rendered (a bad one: one line, exit 64 or 1)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrate.cli import cli
from migrate.journal import cluster_key

FIXTURES = Path(__file__).parents[1] / "fixtures" / "v1"
ROOT = Path(__file__).parents[2]
EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)><a href="https://evil.example/">x</a>'


def _plan_file(folder: Path, cluster_id: str) -> Path:
    text = (ROOT / "plans" / "example-minimal.yaml").read_text()
    text = text.replace("/subscriptions/3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c/resourceGroups/rg-sf-test/providers/Microsoft.ServiceFabric/clusters/sf-test",
                        cluster_id)
    path = folder / "plan.yaml"
    path.write_text(text)
    return path


def _journal() -> dict[str, Any]:
    return json.loads((FIXTURES / "journal-stopped.json").read_text())


def _write(state: Path, document: Any, cluster_id: str) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / f"{cluster_key(cluster_id)}.journal.json").write_text(document if isinstance(document, str) else json.dumps(document))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def test_markup_planted_in_a_journal_stays_text_in_the_report(tmp_path: Path) -> None:
    journal = _journal()
    cluster_id = journal["cluster_id"]
    journal["format_version"] = "1.1"
    journal["status"] = "failed"
    journal["last_error"] = EVIL
    record = journal["steps"][3]  # declare-goal-secondary
    record.update(status="failed", last_error=EVIL, observed={"declaration": EVIL, "issuers": [EVIL]}, step={
        "name": record["name"], "kind": "set_cluster_certificate", "title": EVIL, "why": EVIL, "cluster_upgrade": True,
        "resources": [cluster_id], "params": {"cluster_id": cluster_id, "primary": "A" * 40, "secondary": "B" * 40},
        "changes": [{"path": "properties.certificate", "before": {"thumbprint": EVIL}, "after": {"thumbprint": "A" * 40, "thumbprintSecondary": EVIL}}],
    })
    _write(tmp_path / "state", journal, cluster_id)
    result = CliRunner().invoke(cli, ["report", "--state", str(tmp_path / "state"), str(_plan_file(tmp_path, cluster_id))])
    assert result.exit_code == 0, result.output
    page = result.output
    assert "&lt;script&gt;" in page  # the planted text is shown, as text
    parser = _Tags()
    parser.feed(page)
    assert not {"script", "img", "iframe", "object", "embed", "link"} & set(parser.tags)
    assert not any(name == "src" or name.startswith("on") for name, _ in parser.attrs)
    hrefs = [value or "" for name, value in parser.attrs if name == "href"]
    assert hrefs and all(h.startswith("runbooks/") and (ROOT / h).is_file() for h in hrefs), hrefs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(key=st.sampled_from(["status", "started_at", "finished_at", "observed", "last_error", "step", "attempts", "name"]),
       value=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40), st.lists(st.text(max_size=5), max_size=3),
                       st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
       index=st.integers(0, 6), fmt=st.sampled_from(["html", "md", "json"]))
def test_malformed_journals_never_crash_report(tmp_path: Path, key: str, value: Any, index: int, fmt: str) -> None:
    journal = _journal()
    journal["steps"][index][key] = value
    _write(tmp_path / "state", journal, journal["cluster_id"])
    result = CliRunner().invoke(cli, ["report", "--state", str(tmp_path / "state"), str(_plan_file(tmp_path, journal["cluster_id"])),
                                      "--format", fmt])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 64), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
