"""User-facing text cites pages a user can open (issue 14): shipped files or public URLs, never the project's
internal notes (the design brief, research notes, seeds, ../shared) nor their "§" section marks.

Checked: every Markdown page shipped (README, docs/, runbooks/, the product's own templates) and every string
literal of the product's code that is not a docstring (messages, remedies, step reasons, reports); and in every
*.py of migrate/ and aztwin/, comments and docstrings included, no mention of the internal notes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INTERNAL = re.compile(r"DESIGN(?:\.md|\s*§)|\bresearch(?:/|\s*§|\s+`[a-z_]+\.md`)|\b[a-z_]+\.md`?\s+§|\bseeds?/|\bseed \d{3}\b|\.\./shared")
SECTION = re.compile(r"§")
# "RFC 7292 §4", "[RFC 7292](…) §4", "RFC 5280 §4.2 and §5": sections of public standards
PUBLIC_SECTION = re.compile(r"RFC[\s\d]*(?:\]\([^)]*\))?\s*(?:§[\d.]+\s*(?:,|and|or|–|-)\s*)*§$")


def _violations(text: str) -> list[str]:
    found = [m.group(0) for m in INTERNAL.finditer(text)]
    for match in SECTION.finditer(text):
        before = text[max(0, match.start() - 80):match.end()]
        if not PUBLIC_SECTION.search(before):
            found.append(text[max(0, match.start() - 30):match.end() + 10])
    return found


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "runbooks").rglob("*.md"))]
    pages += [p for p in sorted((ROOT / "plans").glob("*")) if p.suffix in (".md", ".yaml")]  # example plan/fleet files
    pages += sorted((ROOT / "runbooks").rglob("*.yml"))  # the pipelines
    pages += [p for p in sorted((ROOT / "migrate").rglob("*")) if p.suffix in (".md", ".j2", ".jinja", ".html", ".yml", ".yaml")]
    return [p for p in pages if p.is_file()]


def _message_strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_shipped_pages_cite_no_internal_notes() -> None:
    bad = {str(p.relative_to(ROOT)): v for p in _pages() if (v := _violations(p.read_text(encoding="utf-8")))}
    assert not bad, bad


def test_product_messages_cite_no_internal_notes() -> None:
    bad = {f"{p.relative_to(ROOT)}:{line}": v for p in sorted((ROOT / "migrate").rglob("*.py"))
           for line, text in _message_strings(p) if (v := _violations(text))}
    assert not bad, bad


# Comments and docstrings too: any mention, in any form, of the internal notes that do not ship.
SOURCE_INTERNAL = re.compile(r"DESIGN\s*§|DESIGN\.md|research/|research\s*§|\.\./shared")


def test_product_and_twin_sources_cite_no_internal_notes() -> None:
    bad = {f"{p.relative_to(ROOT)}:{n}": line.strip()
           for package in ("migrate", "aztwin") for p in sorted((ROOT / package).rglob("*.py"))
           for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if SOURCE_INTERNAL.search(line)}
    assert not bad, bad


def test_the_source_check_catches_each_kind_of_internal_citation() -> None:
    for text in ("# (DESIGN §2)", "DESIGN.md", "research/sf_migration.md §4.1", "(research §3.2)", "../shared/specs"):
        assert SOURCE_INTERNAL.search(text), text
    for text in ("# https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates",
                 "runbooks/findings/CLUSTER_NOT_READY.md", 'docs/twin.md, "Issuer siblings"'):
        assert not SOURCE_INTERNAL.search(text), text


def test_the_check_catches_each_kind_of_internal_citation() -> None:
    for text in ("(DESIGN §2)", "see DESIGN.md", "(research §1.4)", "research `sf_migration.md` §3.2", "`research/peers.md`",
                 "seeds/003", "(seed 003)", "../shared/specs", "`peers.md` §4.5", "(§7.1)"):
        assert _violations(text), text
    for text in ("[RFC 7292](https://www.rfc-editor.org/rfc/rfc7292) §4", "RFC 9110 §9.2.2", "RFC 5280 §4.2.1.13 and §5",
                 "https://learn.microsoft.com/azure/service-fabric/cluster-security-certificate-management", "runbooks/README.md"):
        assert not _violations(text), text
