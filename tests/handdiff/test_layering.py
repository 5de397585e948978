"""The library's layers: ``handdiff.data`` imports nothing above it, and ``handdiff`` never
imports the entrypoints (``pipelines``) or Ray."""

from __future__ import annotations

import ast
from pathlib import Path

import handdiff

ROOT = Path(handdiff.__file__).parent
BASE = ("handdiff.data", "handdiff.storage", "handdiff.config", "handdiff.provenance")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "handdiff")
    return names


def test_data_imports_nothing_above_it():
    for path in (ROOT / "data").rglob("*.py"):
        above = {n for n in imports(path) if n.startswith("handdiff") and n != "handdiff" and not n.startswith(BASE)}
        assert not above, f"{path.relative_to(ROOT)} imports {sorted(above)}"


def test_the_library_imports_neither_the_entrypoints_nor_ray():
    for path in ROOT.rglob("*.py"):
        bad = {n for n in imports(path) if n.split(".")[0] in ("pipelines", "ray")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
