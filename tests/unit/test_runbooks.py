"""The runbooks stay complete and true to the code.

Every finding code, step kind, step name and exit code has its page; every ``runbooks/…`` path the code names
exists; every relative link and anchor inside ``runbooks/`` resolves; every page is reachable from the index;
the Azure DevOps pipeline parses, keeps its contract, and (like the pages) calls sfmigrate only with options
the CLI really has.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Iterator

import click
import pytest
import yaml

from migrate.checks import CATALOGUE, runbook
from migrate.cli import cli
from migrate.errors import ExitCode
from migrate.report._common import RUNBOOK_ROOT
from migrate.steps import STEP_KINDS

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / RUNBOOK_ROOT
PIPELINE = RUNBOOKS / "azure-devops" / "azure-pipelines.yml"
INDEX = RUNBOOKS / "README.md"

LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
RUNBOOK_PATH = re.compile(r"runbooks/[A-Za-z0-9_.<>/-]+?\.md")


def pages() -> list[Path]:
    return sorted(RUNBOOKS.rglob("*.md"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def fenced_blocks(text: str) -> Iterator[tuple[str, str]]:
    """(info string, body) of every fenced code block, paired the way CommonMark pairs them."""
    fence, info, body = None, "", []
    for line in text.splitlines():
        match = re.match(r"^ {0,3}(`{3,}|~{3,})(.*)$", line)
        if fence is None:
            if match:
                fence, info, body = match.group(1), match.group(2).strip(), []
        elif match and match.group(1).startswith(fence) and not match.group(2).strip():
            yield info, "\n".join(body) + "\n"
            fence = None
        else:
            body.append(line)


def prose(text: str) -> str:
    """Markdown without fenced code blocks (their '#' lines are comments, their brackets are not links)."""
    out, fence = [], None
    for line in text.splitlines():
        match = re.match(r"^ {0,3}(`{3,}|~{3,})(.*)$", line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1).startswith(fence) and not match.group(2).strip():
            fence = None
        elif fence is None:
            out.append(line)
    return "\n".join(out) + "\n"


# -- anchors, as GitHub (and Azure DevOps) generate them -------------------------------------------------------
def slug(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in re.finditer(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", prose(read(path)), re.M):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[str]:
    text = INLINE_CODE.sub("", prose(read(path)))
    yield from (m.group(1) for m in LINK.finditer(text))


def local(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)  # not http:, https:, mailto:, …


# -- 1. findings --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_finding_code_has_a_page_with_its_severity(code: str) -> None:
    page = RUNBOOKS / runbook(code)
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing (the finding's runbook field names it)"
    text = read(page)
    severity, _ = CATALOGUE[code]
    assert text.startswith(f"# `{code}`"), f"{page.name}: the title must be the code"
    assert f"**Severity:** {severity}" in text, f"{page.name}: must state severity '{severity}' (CATALOGUE)"
    for section in ("## Raised when", "## Why it matters", "## Confirm by hand", "## Remedy"):
        assert section in text, f"{page.name}: section '{section}' is missing"


def test_no_finding_page_without_a_code() -> None:
    orphans = sorted(p.stem for p in (RUNBOOKS / "findings").glob("*.md") if p.stem not in CATALOGUE)
    assert not orphans, f"pages for codes that are not in CATALOGUE: {orphans}"


def test_the_index_lists_every_code_with_its_severity() -> None:
    text = read(INDEX)
    for code, (severity, _) in CATALOGUE.items():
        assert f"| [`{code}`](findings/{code}.md) | {severity} |" in text, f"runbooks/README.md: row for {code}"


# -- 2. steps -----------------------------------------------------------------------------------------------
def step_page(kind: str) -> Path:
    return RUNBOOKS / "steps" / f"{kind.replace('_', '-')}.md"


@pytest.mark.parametrize("kind", sorted(STEP_KINDS))
def test_every_step_kind_has_a_page(kind: str) -> None:
    page = step_page(kind)
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing for step kind '{kind}'"
    text = read(page)
    for section in ("## What it changes", "## Why", "## Verify by hand", "## Roll back", "## What leads here"):
        assert section in text, f"{page.name}: section '{section}' is missing"
    assert "```bash" in text and "```powershell" in text, f"{page.name}: verify with both az and PowerShell"


def planner_step_names() -> list[tuple[str, str]]:
    """(name prefix, kind) of every step the planner can produce, read from its source."""
    tree = ast.parse(read(ROOT / "migrate" / "planner.py"))
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            name = first.value
        elif isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
            name = str(first.values[0].value)
        else:
            continue
        if node.func.attr == "cluster_step":
            found.append((name, "set_cluster_certificate"))
        elif node.func.attr == "add" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            found.append((name, str(node.args[1].value)))
    return found


def test_every_step_name_the_planner_makes_is_documented_on_its_kinds_page() -> None:
    names = planner_step_names()
    assert {kind for _, kind in names} == set(STEP_KINDS), "the planner and STEP_KINDS disagree; update this test"
    for name, kind in names:
        assert f"`{name}" in read(step_page(kind)), f"step '{name}' is not named on {step_page(kind).name}"
        assert f"`{name}" in read(INDEX), f"step '{name}' is not named in runbooks/README.md"


FAILURE_MODES = ("kv-extension-sync", "upgrade-stuck", "upgrade-rolled-back", "issuer-rekey", "lock-held", "stale-plan",
                 "throttling", "interrupted", "blocked")


@pytest.mark.parametrize("name", FAILURE_MODES)
def test_every_failure_mode_has_a_page_naming_what_leads_there(name: str) -> None:
    page = RUNBOOKS / "failures" / f"{name}.md"
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing"
    text = read(page)
    assert re.search(r"exit \**\d+", text) or re.search(r"findings/[A-Z_]+\.md", text), \
        f"{page.name}: name the exit code or finding code that leads here"


# -- 3. exit codes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [int(c) for c in ExitCode])
def test_every_exit_code_is_documented(code: int) -> None:
    assert re.search(rf"^## {code} — ", read(RUNBOOKS / "exit-codes.md"), re.M), f"exit-codes.md: no '## {code} — …' section"
    assert re.search(rf"^\| {code} \|", read(RUNBOOKS / "exit-codes.md"), re.M), f"exit-codes.md: no table row for {code}"
    assert re.search(rf"^\| {code} \|", read(INDEX), re.M), f"runbooks/README.md: no table row for exit {code}"


# -- 4. paths the code names ----------------------------------------------------------------------------------
def referenced_paths() -> list[tuple[str, str]]:
    sources = [*sorted((ROOT / "migrate").rglob("*.py")), *sorted((ROOT / "plans").glob("*.md")),
               *sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    found = []
    for source in sources:
        if source.is_file():
            for match in RUNBOOK_PATH.finditer(read(source)):
                if "<" not in match.group(0):  # a template such as runbooks/findings/<CODE>.md
                    found.append((str(source.relative_to(ROOT)), match.group(0)))
    return found


def test_the_code_names_runbook_paths() -> None:
    assert referenced_paths(), "no runbooks/… path found in migrate/: the scan is broken"


@pytest.mark.parametrize("source,path", referenced_paths())
def test_every_runbook_path_named_in_the_code_exists(source: str, path: str) -> None:
    assert (ROOT / path).is_file(), f"{source} names {path}, which does not exist"


# -- 5. links -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(RUNBOOKS)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if not local(target):
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading with anchor '#{fragment}' in {resolved.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_page_is_reachable_from_the_index() -> None:
    linked = {(INDEX.parent / t.partition("#")[0]).resolve() for t in links(INDEX) if local(t) and t.partition("#")[0]}
    wanted = {p.resolve() for p in pages() if p != INDEX} | {PIPELINE.resolve()}
    missing = sorted(str(p.relative_to(RUNBOOKS)) for p in wanted - linked)
    assert not missing, f"runbooks/README.md does not link: {missing}"


# -- 6. sfmigrate command lines use real options -----------------------------------------------------------------
PLACEHOLDER = "PLACEHOLDER"
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}  # fenced blocks whose sfmigrate lines are commands
STOP = {"|", "||", "&&", ";", "&", ">", ">>", "2>", ")", "(", "<"}


def options_of(command: click.Command) -> dict[str, click.Parameter]:
    table: dict[str, click.Parameter] = {"--help": None, "-h": None}  # type: ignore[dict-item]
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                table[name] = param
    return table


def check_command_line(line: str) -> list[str]:
    """Problems with the sfmigrate invocation(s) on one shell line ([] when fine)."""
    text = re.sub(r"<[^<>\n]+>", PLACEHOLDER, line)
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError as exc:
        return [f"cannot tokenise {line!r}: {exc}"]
    problems = []
    for start, token in enumerate(tokens):
        if token != "sfmigrate" and not token.endswith("/sfmigrate"):
            continue
        rest = tokens[start + 1:]
        command: click.Command = cli
        while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
            name = rest.pop(0)
            if name == PLACEHOLDER:
                command = None  # type: ignore[assignment]
                break
            sub = command.commands.get(name)
            if sub is None:
                problems.append(f"{line.strip()!r}: no command '{name}'")
                command = None  # type: ignore[assignment]
                break
            command = sub
        if command is None or command is cli:
            continue
        known = options_of(command)
        index = 0
        while index < len(rest):
            word = rest[index]
            index += 1
            if word in STOP:
                break
            if not word.startswith("-") or word in ("-", "--"):
                continue
            name, _, inline_value = word.partition("=")
            if name not in known:
                problems.append(f"{line.strip()!r}: '{command.name}' has no option {name}")
                continue
            param = known[name]
            if param is None or param.is_flag:
                continue
            value = inline_value or (rest[index] if index < len(rest) else "")
            if not inline_value:
                index += 1
            choices = getattr(param.type, "choices", None)
            if choices and value and PLACEHOLDER not in value and "$" not in value and value not in choices:
                problems.append(f"{line.strip()!r}: {name} {value!r} is not one of {list(choices)}")
    return problems


def shell_lines(script: str) -> list[str]:
    """Logical lines of a shell snippet: backslash continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", script)
    return [ln for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def pipeline() -> dict:
    return yaml.safe_load(read(PIPELINE))


def pipeline_scripts() -> list[str]:
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("inlineScript", "script", "bash") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(pipeline())
    return found


def markdown_command_lines() -> list[tuple[str, str]]:
    found = []
    for page in [*pages()]:
        text = read(page)
        for info, body in fenced_blocks(text):
            if info not in SHELL_BLOCKS:
                continue
            for line in shell_lines(body):
                if re.search(r"(^|[\s;|&(])(\S*/)?sfmigrate\s+[a-z]", line):
                    found.append((str(page.relative_to(RUNBOOKS)), line))
        for span in INLINE_CODE.finditer(prose(text)):
            if span.group(2).startswith("sfmigrate ") and re.match(r"sfmigrate\s+[a-z]", span.group(2)):
                found.append((str(page.relative_to(RUNBOOKS)), span.group(2)))
    return found


def test_the_pipeline_yaml_parses_and_keeps_its_contract() -> None:
    document = pipeline()
    stages = {s["stage"]: s for s in document["stages"]}
    assert list(stages) == ["Plan", "Apply"]

    plan_job = stages["Plan"]["jobs"][0]
    assert plan_job["job"] == "plan"
    plan_task = next(s for s in plan_job["steps"] if s.get("task", "").startswith("AzureCLI@"))
    assert plan_task["name"] == "planStep", "the output variable path plan.planStep.hasChanges needs this name"
    assert any(s.get("publish") and s.get("artifact") == "sfmigrate-plan" for s in plan_job["steps"])

    apply_stage = stages["Apply"]
    assert "dependencies.Plan.outputs['plan.planStep.hasChanges']" in apply_stage["condition"]
    deployment = apply_stage["jobs"][0]
    assert deployment.get("deployment") and deployment.get("environment"), "Apply must be a deployment job on an environment"
    deploy_steps = deployment["strategy"]["runOnce"]["deploy"]["steps"]
    assert any(s.get("download") == "current" and s.get("artifact") == "sfmigrate-plan" for s in deploy_steps)

    tasks = [plan_task, *(s for s in deploy_steps if s.get("task", "").startswith("AzureCLI@"))]
    for task in tasks:  # AzurePipelinesCredential needs the secret mapped into every sfmigrate step
        assert task["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)", task.get("displayName")
        assert "sfmigrate" in task["inputs"]["inlineScript"]
        assert "set -x" not in task["inputs"]["inlineScript"], "set -x garbles ##vso logging commands"

    plan_line = " ".join(shell_lines(plan_task["inputs"]["inlineScript"]))
    for fragment in ("sfmigrate plan", "--ci azure-devops", "--out", "saved-plan.json", "plan.md", "plan.html"):
        assert fragment in plan_line, f"the plan step lost '{fragment}'"
    apply_line = " ".join(shell_lines(deploy_steps[next(i for i, s in enumerate(deploy_steps) if s.get("name") == "applyStep")]["inputs"]["inlineScript"]))
    for fragment in ("sfmigrate apply", "saved-plan.json", "--yes", "--ci azure-devops", "--state"):
        assert fragment in apply_line, f"the apply step lost '{fragment}'"
    assert "https://<account>.blob.core.windows.net/<container>/<prefix>" in document["variables"]["stateUrl"]


def test_pipeline_sfmigrate_lines_use_only_real_options() -> None:
    lines = [line for script in pipeline_scripts() for line in shell_lines(script) if "sfmigrate" in line]
    assert len(lines) >= 3, "expected plan, apply and status command lines in the pipeline"
    problems = [p for line in lines for p in check_command_line(line)]
    assert not problems, "\n".join(problems)


def test_runbook_sfmigrate_lines_use_only_real_options() -> None:
    found = markdown_command_lines()
    assert len(found) >= 10, "the scan of the pages' sfmigrate command lines found too few: is it broken?"
    problems = [f"{page}: {p}" for page, line in found for p in check_command_line(line)]
    assert not problems, "\n".join(problems)


def test_the_option_checker_catches_a_wrong_option() -> None:
    assert check_command_line("sfmigrate apply plan.json --yes --state /tmp/st") == []
    assert check_command_line("sfmigrate plan p.yaml --ci azure-devops --report a.md | tee x") == []
    assert check_command_line("sfmigrate apply plan.json --resume")
    assert check_command_line("sfmigrate plan p.yaml --ci jenkins")
    assert check_command_line("sfmigrate frobnicate plan.json")
