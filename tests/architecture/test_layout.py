"""The layout's promises (docs/architecture.md): the twin is an independent oracle, and sfmigrate reaches it
only through its public API, only from the commands that run a twin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aztwin

ROOT = Path(__file__).resolve().parents[2]
MIGRATE_MODULES_THAT_MAY_USE_THE_TWIN = {"migrate/cli.py", "migrate/demo.py", "migrate/rehearsal.py"}


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute module names imported by a file (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found.extend((f"{module}.{alias.name}", node.lineno) for alias in node.names)
    return found


def test_aztwin_never_imports_migrate() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{line} {name}"
                 for p in sorted((ROOT / "aztwin").rglob("*.py"))
                 for name, line in _imports(p) if name == "migrate" or name.startswith("migrate.")]
    assert offenders == []


def test_migrate_uses_only_the_twins_public_api_and_only_from_cli_demo_and_rehearsal() -> None:
    public = set(aztwin.__all__)
    offenders = []
    for path in sorted((ROOT / "migrate").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for name, line in _imports(path):
            if not (name == "aztwin" or name.startswith("aztwin.")):
                continue
            if relative not in MIGRATE_MODULES_THAT_MAY_USE_THE_TWIN:
                offenders.append(f"{relative}:{line} imports {name} (only cli, demo and rehearsal may)")
            elif name != "aztwin" and name.removeprefix("aztwin.") not in public:
                offenders.append(f"{relative}:{line} imports {name} (not in aztwin.__all__)")
    assert offenders == []


def test_importing_aztwin_loads_no_migrate_module() -> None:
    """At run time too: a fresh interpreter that imports the twin and builds a world never loads migrate."""
    code = ("import sys, aztwin, aztwin.scenario as s; spec, _ = aztwin.load_scenario('basic'); "
            "s.build_world(spec, 'https://127.0.0.1:1'); "
            "print(sorted(m for m in sys.modules if m == 'migrate' or m.startswith('migrate.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_the_twin_ships_in_the_distribution() -> None:
    """`sfmigrate rehearse` needs the twin at run time: the package and its scenarios are installed."""
    assert "basic" in aztwin.builtin_names()
    assert aztwin.builtin_path("basic").is_file()
    assert (Path(aztwin.__file__).parent / "py.typed").is_file()
