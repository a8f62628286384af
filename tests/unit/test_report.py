"""Plan renderers: text, Markdown, JSON, HTML, on plans built by hand."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pytest

from migrate.errors import UsageError
from migrate.findings import Finding
from migrate.plan import FORMAT_VERSION, Change, Plan, Step
from migrate.steps import convert_cluster, ensure_identity, set_cluster_certificate, stage_goal
from migrate.report import FORMATS, format_for_path, render_plan, should_color
from migrate.report._common import summary_line

CLUSTER = "/subscriptions/7c0e1f0a-5b8d-4d2e-9f3a-2a6b1c4d8e90/resourceGroups/rg/providers/Microsoft.ServiceFabric/clusters/sfprod"
VMSS = "/subscriptions/7c0e1f0a-5b8d-4d2e-9f3a-2a6b1c4d8e90/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/nt0"
IDENTITY = "/subscriptions/7c0e1f0a-5b8d-4d2e-9f3a-2a6b1c4d8e90/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id"
EVIL = "<script>alert('x')</script> | `tick` *bold* & more"


def finding(code: str, severity: str, message: str = "why it matters", resource: str | None = CLUSTER) -> Finding:
    return Finding(code, severity, message, resource, f"fix {code.lower()}", f"findings/{code}.md")


def steps() -> list[Step]:
    # Typed steps (issue 9): real kinds with their parameter classes; the changes are what the renderers show.
    return [
        Step("ensure-identity", "ensure_identity", "Create the user-assigned identity", [IDENTITY],
             [Change("identity", None, {"name": "id", "location": "westeurope"})],
             ensure_identity.Params(identity_id=IDENTITY, location="westeurope"), why="DESIGN §2: user-assigned identity"),
        Step("add-goal-secret", "stage_goal", "Add the goal as a VMSS secret", [VMSS],
             [Change("properties.virtualMachineProfile.osProfile.secrets[0].vaultCertificates[1]", None,
                     {"certificateUrl": "https://kv.vault.azure.net/secrets/c/1", "certificateStore": "My"})],
             stage_goal.Params(vmss_id=VMSS, vault_id="/v", secret_url="https://kv.vault.azure.net/secrets/c/1", primary="A" * 40)),
        Step("declare-goal", "set_cluster_certificate", "Declare the goal as secondary", [CLUSTER],
             [Change("properties.certificate.thumbprintSecondary", None, "B" * 40)],
             set_cluster_certificate.Params(cluster_id=CLUSTER, primary="A" * 40, secondary="B" * 40), cluster_upgrade=True),
        Step("convert", "convert_cluster", "Convert the cluster to common name", [CLUSTER, VMSS],
             [Change("properties.certificate", {"thumbprint": "B" * 40}, None),
              Change("properties.certificateCommonNames", None, {"commonNames": [{"certificateCommonName": "sfprod.contoso.com"}]}),
              Change("settings.certificate.commonNames", ["old"], ["sfprod.contoso.com"])],
             convert_cluster.Params(cluster_id=CLUSTER, common_name="sfprod.contoso.com", issuers=["C" * 40]),
             cluster_upgrade=True),
    ]


def make_plan(findings: list[Finding] | None = None, with_steps: bool = True, state: str = "GOAL_ABSENT_GOAL_NEWER") -> Plan:
    return Plan(cluster_id=CLUSTER, starting_state=state, findings=list(findings or []), steps=steps() if with_steps else [],
                created_at="2026-06-01T12:00:00+00:00", spec_fingerprint="0123456789abcdef", notes=[])


BLOCKED = make_plan([finding("ISSUER_NOT_PINNED", "error"), finding("SHARED_SUBJECT", "warning"), finding("ALREADY_COMMON_NAME", "info")])
READY = make_plan([finding("OLD_SECRETS_KEPT", "info")])
NOTHING = make_plan([finding("ALREADY_COMMON_NAME", "info")], with_steps=False, state="ALREADY_COMMON_NAME")


# -- the summary line -------------------------------------------------------------------------------------
def test_summary_line_blocked() -> None:
    assert summary_line(BLOCKED) == "Plan for sfprod: BLOCKED by 1 error finding; 4 steps, 2 cluster upgrades, 3 resources touched once resolved."


def test_summary_line_changes() -> None:
    assert summary_line(READY) == ("Plan for sfprod: 4 steps, 2 cluster upgrades, 3 resources touched; "
                                   "starting state GOAL_ABSENT_GOAL_NEWER; no blocking findings.")


def test_summary_line_nothing() -> None:
    assert summary_line(NOTHING) == "Plan for sfprod: nothing to do (starting state ALREADY_COMMON_NAME)."


# -- text -------------------------------------------------------------------------------------------------
def test_text_puts_the_summary_first_then_findings_then_steps() -> None:
    out = render_plan(BLOCKED, "text")
    assert out.splitlines()[0] == summary_line(BLOCKED)
    head = out.split("Findings (3)")[0]
    for expected in ("starting state   GOAL_ABSENT_GOAL_NEWER", "findings         1 error, 1 warning, 1 info",
                     "steps            4 (2 cluster upgrades)", "resources        3 touched", "Blocking findings", "ISSUER_NOT_PINNED"):
        assert expected in head
    assert out.index("Findings (3)") < out.index("Steps (4)")
    assert out.index("ERROR   ISSUER_NOT_PINNED") < out.index("WARNING SHARED_SUBJECT") < out.index("INFO    ALREADY_COMMON_NAME")
    assert "runbook: runbooks/findings/ISSUER_NOT_PINNED.md" in out
    assert "\x1b[" not in out


def test_text_shows_property_changes_before_and_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = render_plan(READY, "text")
    assert '+ properties.certificate.thumbprintSecondary: (absent) -> "' + "B" * 40 + '"' in out
    assert '- properties.certificate: {"thumbprint": "' + "B" * 40 + '"} -> (absent)' in out
    # issue 14: a list of plain values shows the entries that left and came, not both whole lists
    assert '- settings.certificate.commonNames[]: "old" -> (absent)' in out
    assert '+ settings.certificate.commonNames[]: (absent) -> "sfprod.contoso.com"' in out
    assert "4. Convert the cluster to common name  [convert]  (cluster upgrade)" in out
    assert "why: DESIGN §2: user-assigned identity" in out


def test_text_colour_only_on_request() -> None:
    coloured = render_plan(BLOCKED, "text", color=True)
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == render_plan(BLOCKED, "text")


def test_text_nothing_to_do() -> None:
    out = render_plan(NOTHING, "text")
    assert "Steps (0)" in out and "nothing would change" in out and "Blocking" not in out


def test_should_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert should_color(Tty()) and not should_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not should_color(Tty())


# -- JSON -------------------------------------------------------------------------------------------------
def test_json_is_exactly_the_report_in_contract_order() -> None:
    out = render_plan(BLOCKED, "json")
    data = json.loads(out)
    assert data == json.loads(json.dumps(BLOCKED.to_report()))
    assert list(data)[:6] == ["format_version", "cluster", "starting_state", "has_changes", "blocked", "summary"]
    assert {"findings", "steps"} <= set(data)
    assert data["format_version"] == FORMAT_VERSION and data["blocked"] is True and data["has_changes"] is True
    assert data["findings"][0]["code"] == "ISSUER_NOT_PINNED"
    step = data["steps"][3]
    assert {"name", "resources", "changes"} <= set(step)
    assert step["changes"][0] == {"path": "properties.certificate", "before": {"thumbprint": "B" * 40}, "after": None}
    assert render_plan(BLOCKED, "json") == out  # stable


# -- Markdown ---------------------------------------------------------------------------------------------
def test_markdown_has_summary_findings_and_change_tables() -> None:
    out = render_plan(BLOCKED, "md")
    assert out.startswith("## sfmigrate plan: sfprod\n")
    assert "| Verdict | ⛔ **Blocked**" in out
    assert "| Severity | Code | Resource | Finding | Remedy |" in out
    assert re.search(r"^\| ⛔ error \| `ISSUER_NOT_PINNED` \| `/subscriptions/.*` \| why it matters \| fix issuer\\_not\\_pinned "
                     r"\(runbook: `runbooks/findings/ISSUER_NOT_PINNED.md`\) \|$", out, re.M)
    assert "#### 3. Declare the goal as secondary (cluster upgrade)" in out
    assert "| + | `properties.certificate.thumbprintSecondary` | `(absent)` | `\"" + "B" * 40 + "\"` |" in out


def test_markdown_escapes_cells() -> None:
    plan = make_plan([finding("CN_MISMATCH", "error", EVIL)])
    plan.steps[0].changes.append(Change("tags.note", None, "a|b`c"))
    out = render_plan(plan, "md")
    assert "<script>" not in out and "&lt;script&gt;" in out
    row = next(line for line in out.splitlines() if "CN\\_MISMATCH" in line or "`CN_MISMATCH`" in line)
    assert row.count(" | ") == 4  # the pipe in the message did not add a column
    assert '``"a\\|b`c"``' in out


# -- HTML -------------------------------------------------------------------------------------------------
class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def test_html_escapes_and_is_self_contained() -> None:
    plan = make_plan([finding("CN_MISMATCH", "error", EVIL, resource='"/><img src=x onerror=alert(1)>')])
    plan.steps[0].title = EVIL
    out = render_plan(plan, "html")
    assert "<script>" not in out and "&lt;script&gt;" in out
    parser = _Collector()
    parser.feed(out)
    assert "script" not in parser.tags and "img" not in parser.tags and "link" not in parser.tags
    assert not any(name == "src" or name.startswith("on") for name, _ in parser.attrs)
    # The one kind of link (issue 14): a finding's runbook page, by its path in the repository; nothing external.
    assert [value for name, value in parser.attrs if name == "href"] == ["runbooks/findings/CN_MISMATCH.md"] * 2
    assert out.startswith("<!DOCTYPE html>") and "<style>" in out and "http" not in out.split("<body>")[0].replace("https://", "")


def test_html_has_summary_findings_and_steps() -> None:
    out = render_plan(BLOCKED, "html")
    assert summary_line(BLOCKED) in out and 'class="summary BLOCKED"' in out
    assert "<h2>Findings (3)</h2>" in out and "<h2>Steps (4)</h2>" in out
    assert "<code>properties.certificate.thumbprintSecondary</code>" in out


# -- dispatch ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS + ("markdown", "TEXT"))
def test_every_format_renders_every_plan(fmt: str) -> None:
    for plan in (BLOCKED, READY, NOTHING):
        out = render_plan(plan, fmt)
        assert out.endswith("\n") and "sfprod" in out


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--format: 'yaml' is not one of text, md, json, html"):
        render_plan(READY, "yaml")


def test_format_for_path() -> None:
    assert format_for_path("out/plan.md") == "md" and format_for_path("plan.JSON") == "json"
    assert format_for_path("plan.html") == "html" and format_for_path("plan.bin") == "text"
