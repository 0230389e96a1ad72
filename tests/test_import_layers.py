"""The house's dependencies point down (pyproject's import-linter contracts) and no private name crosses a
module."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_import_layers_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    proc = subprocess.run([lint, "--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and "Contracts: 2 kept, 0 broken." in proc.stdout


def test_no_private_name_is_imported_from_another_module():
    crossing = []
    for path in sorted((REPO / "stylegan_exp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stylegan_exp"):
                crossing += [f"{path.relative_to(REPO)}: {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_")]
    assert crossing == []
