"""Nothing the project runs unpickles what storage holds: weights go through ``weights_only``
or safetensors, tables through Parquet, configs through ``yaml.safe_load``, LAION-Human's
object arrays through ``handdiff.data.safe_npz``. This test greps the code for the others."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("handdiff", "pipelines", "benchmarks", "notebooks", "clusters")

UNSAFE = {
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "pickle/cloudpickle/dill/joblib/marshal load": re.compile(r"\b(c?pickle|cloudpickle|dill|joblib|marshal)\.loads?\("),
    "pandas read_pickle": re.compile(r"\bread_pickle\("),
    "shelve": re.compile(r"\bshelve\.open\("),
    "torch.load without weights_only=True": re.compile(r"\btorch\.load\((?![^\n]*weights_only\s*=\s*True)"),
    "weights_only=False": re.compile(r"weights_only\s*=\s*False"),
    "use_safetensors=False": re.compile(r"use_safetensors\s*=\s*False"),
    "yaml.load / unsafe_load / full_load": re.compile(r"\byaml\.(load|unsafe_load|full_load)\("),
    "trust_remote_code=True": re.compile(r"trust_remote_code\s*=\s*True"),
}


def unsafe_lines(text: str) -> list[str]:
    return [f"{what}: {line.strip()}" for line in text.splitlines() for what, pattern in UNSAFE.items() if pattern.search(line)]


def test_the_check_finds_what_it_looks_for():
    planted = """
        state = torch.load(path, map_location="cpu")
        ok = torch.load(path, map_location="cpu", weights_only=True)
        people = np.load(buf, allow_pickle=True)["arr_0"]
        obj = pickle.loads(blob)
        cfg = yaml.load(text, Loader=yaml.Loader)
        fine = yaml.safe_load(text)
    """
    found = [line.split(": ", 1)[1] for line in unsafe_lines(planted)]
    assert found == [line.strip() for line in planted.splitlines() if line.strip().startswith(("state", "people", "obj", "cfg"))]


def test_no_shipped_code_unpickles_from_storage():
    files = [p for root in SHIPPED for p in (REPO / root).rglob("*") if p.suffix in (".py", ".ipynb", ".yaml", ".sh") and p.is_file()]
    assert len(files) > 50
    found = {str(p.relative_to(REPO)): lines for p in files if (lines := unsafe_lines(p.read_text(errors="replace")))}
    assert found == {}
