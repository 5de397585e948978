"""The library's layers: ``handdiff.data`` imports nothing above it, and ``handdiff`` never
imports the entrypoints (``pipelines``) or Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
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
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from package import module`
    return names


def test_data_imports_nothing_above_it():
    for path in (ROOT / "data").rglob("*.py"):
        above = {n for n in imports(path) if n.startswith("handdiff") and n != "handdiff" and not n.startswith(BASE)}
        assert not above, f"{path.relative_to(ROOT)} imports {sorted(above)}"


def test_the_library_imports_neither_the_entrypoints_nor_ray():
    for path in ROOT.rglob("*.py"):
        bad = {n for n in imports(path) if n.split(".")[0] in ("pipelines", "ray")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


# What every Ray *task* worker imports to run a stateless stage (read, decode, crop, write):
# a model library there costs seconds of start-up and hundreds of MiB per worker process.
TASK_STAGE_MODULES = (
    "handdiff.annotation.stages",
    "handdiff.data.set_stages",
    "handdiff.inference.generate_stages",
    "handdiff.metrics.score_stages",
    "handdiff.training.hand_batches",
    "handdiff.training.body_batches",
)
MODEL_LIBRARIES = ("torch", "torchvision", "transformers", "diffusers", "segment_anything", "mediapipe", "mlflow")


def test_stateless_stage_modules_load_no_model_library():
    code = (
        f"import importlib, sys\nfor m in {TASK_STAGE_MODULES!r}: importlib.import_module(m)\n"
        f"print(','.join(sorted(n for n in {MODEL_LIBRARIES!r} if n in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing the stage modules loads {out}: import it where the model is built"


REPO = ROOT.parent
PACKAGES = ("handdiff", "pipelines", "benchmarks", "devtools")


def module_graph() -> dict[str, set[str]]:
    """Every module of the project's packages -> the project modules it imports (anywhere in it,
    function-level imports included: a cycle there is a cycle in what the code means)."""
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: {n for n in imports(path) if n in modules and n != name} for name, path in modules.items()}


def package_of(module: str) -> str:
    """``handdiff.<subpackage>`` (or a top-level library module), ``pipelines``, ``benchmarks``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "handdiff" else parts[0]


def test_no_module_imports_itself_back_through_others():
    import networkx as nx

    graph = nx.DiGraph([(a, b) for a, targets in module_graph().items() for b in targets])
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_no_package_imports_itself_back_through_others():
    """Package level: e.g. models -> inference -> annotation -> models was one (the MLflow pyfuncs,
    which run the inference pipelines, now live in handdiff.serving above both)."""
    import networkx as nx

    edges = {(package_of(a), package_of(b)) for a, targets in module_graph().items() for b in targets}
    graph = nx.DiGraph([(a, b) for a, b in edges if a != b])
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"package cycles: {cycles}"
    assert not graph.has_edge("handdiff.models", "handdiff.serving") and not graph.has_edge("handdiff.inference", "handdiff.serving")


def test_the_benchmarks_and_the_library_never_import_the_tests():
    """What the tests and the benchmarks share (local servers, process memory) is ``devtools``."""
    for package in ("handdiff", "pipelines", "benchmarks", "devtools"):
        for path in (REPO / package).rglob("*.py"):
            bad = {n for n in imports(path) if n.split(".")[0] == "tests"}
            assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"
