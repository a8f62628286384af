"""The `az` command lines that the runbooks (and the Azure DevOps pipeline) tell operators to run.

A command is an ``az ...`` line inside a ```bash/```sh fence of a Markdown page, or inside a ``script:``/``bash:``
or ``inlineScript:`` block of the pipeline YAML (AzureCLI@2's scripts), joined across backslash continuations and across quotes left open at a line end
(a multi-line ``--query "…"``); a trailing ``# comment`` is dropped. PowerShell fences are documented-only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
_FENCE = re.compile(r"^\s*```(\w*)")
_AZ_START = re.compile(r"^\s*(?:\w+=\$\()?az\s")


@dataclass(frozen=True)
class RunbookCommand:
    """One ``az`` command as a page shows it: where it is and its text (continuations joined)."""

    page: str  # path relative to runbooks/
    line: int  # 1-based line of the command's first line
    text: str

    @property
    def test_id(self) -> str:
        words = self.text.split()
        return f"{self.page}:{self.line}:{'-'.join(words[1:3])}"


def _is_complete(text: str) -> bool:
    """Whether ``text`` is a whole shell command: no open quote and no trailing backslash."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # "No closing quotation"
        return False
    return True


def _strip_comment(text: str) -> str:
    """``text`` without its trailing ``# comment``: the first '#' outside quotes that starts a word."""
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].rstrip()
    return text.rstrip()


def shell_blocks(path: Path) -> list[tuple[int, list[str]]]:
    """The bash blocks of a page (first line number, lines): Markdown fences, or the pipeline's script blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[int, list[str]]] = []
    if path.suffix in (".yml", ".yaml"):
        for index, line in enumerate(lines):
            match = re.match(r"^(\s*)-?\s*(script|bash|inlineScript):\s*\|", line)
            if match:
                indent = len(match.group(1)) + 1
                blocks.append((index + 2, _until_dedent(lines[index + 1:], indent)))
        return blocks
    language: str | None = None
    start = 0
    body: list[str] = []
    for index, line in enumerate(lines):
        fence = _FENCE.match(line)
        if fence and language is None:
            language, start, body = fence.group(1).lower(), index + 2, []
        elif fence:
            if language in ("bash", "sh", "shell", "console"):
                blocks.append((start, body))
            language = None
        elif language is not None:
            body.append(line)
    return blocks


def _until_dedent(lines: list[str], indent: int) -> list[str]:
    body: list[str] = []
    for line in lines:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        body.append(line)
    return body


def commands_in(path: Path) -> list[RunbookCommand]:
    page = str(path.relative_to(RUNBOOKS))
    found: list[RunbookCommand] = []
    for first_line, body in shell_blocks(path):
        index = 0
        while index < len(body):
            line = body[index]
            if not _AZ_START.match(line):
                index += 1
                continue
            start, text = index, line.strip()
            while not _is_complete(text) and index + 1 < len(body):
                index += 1
                text = text[:-1].rstrip() + " " + body[index].strip() if text.endswith("\\") else text + "\n" + body[index]
            found.append(RunbookCommand(page, first_line + start, _strip_comment(text)))
            index += 1
    return found


def runbook_pages() -> list[Path]:
    return sorted([*RUNBOOKS.rglob("*.md"), *RUNBOOKS.rglob("*.yml")])


def all_commands() -> list[RunbookCommand]:
    return [command for page in runbook_pages() for command in commands_in(page)]
