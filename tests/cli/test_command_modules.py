"""CLI command modules share code through the Python API and cli/common.py, never each other."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "gleitzeit_core" / "cli"


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_command_module_imports_another():
    commands = sorted(CLI.glob("*_cmd.py"))
    assert len(commands) > 10
    crossing = {p.name: sorted(m for m in imported(p) if m.startswith("gleitzeit_core.cli.") and m.endswith("_cmd"))
                for p in commands}
    assert {k: v for k, v in crossing.items() if v} == {}


def test_shared_modules_import_no_command_module():
    for p in sorted(set(CLI.glob("*.py")) - set(CLI.glob("*_cmd.py")) - {CLI / "main.py"}):
        assert not [m for m in imported(p) if m.endswith("_cmd")], p.name
