"""House rules that keep the code base in shape."""

from __future__ import annotations

import ast
from pathlib import Path

import ops

FORBIDDEN = {"typer", "rich", "click"}
PACKAGE = Path(ops.__file__).parent


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_cli_imports_typer_rich_click():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("cli", "_shipped") or "bundled" in rel.parts:
            continue
        bad = imported_roots(path) & FORBIDDEN
        if bad:
            offenders[str(rel)] = sorted(bad)
    assert offenders == {}


def test_the_checker_sees_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom rich.console import Console\nimport typer as t\n")
    assert imported_roots(sample) & FORBIDDEN == {"rich", "typer"}


def test_library_import_does_not_load_cli():
    import subprocess
    import sys

    # Only typer is checked here: httpx itself imports click and rich for its own CLI when they are
    # installed, so their presence in sys.modules says nothing about our code (the AST test does).
    code = "import sys, ops.profiles, ops.stack, ops.state, ops.secrets; print('typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
