"""benchmark on the shared Ray cluster: tables for every method, and a rerun that redoes only what changed."""

from __future__ import annotations

import pytest

from handdiff import storage
from handdiff.data.parts import part_uris
from handdiff.metrics.tables import read_csv_rows
from pipelines import benchmark, score
from pipelines.job import TrackingConfig

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_tables_for_every_method_and_a_rerun_redoes_only_the_changed_one(ray_session, benchmark_conditions, demo_workdir, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    zoo = f"{demo_workdir}/zoo"
    cfg = benchmark.demo_config(demo_workdir, TrackingConfig(run_name="bench", tracking_uri=uri))
    cfg.conditions, cfg.output, cfg.ablation, cfg.bootstrap = benchmark_conditions.output, str(tmp_path / "first"), None, 5
    cfg.methods = {"oracle": {"method": "oracle"}, "sd15": {"method": "sd15", "baseline": {"base": f"{zoo}/sd15", "steps": 2}}}
    cfg = benchmark.Config.model_validate(cfg.model_dump())
    assert benchmark.run(cfg) == 0
    out = capsys.readouterr().out
    assert "### Table I" in out and "| oracle |" in out and "| sd15 |" in out
    rows = {r["name"]: r for r in read_csv_rows(storage.read_text(f"{cfg.output}/table1.csv"))}
    assert set(rows) == {"oracle", "sd15"} and set(score.METRICS) <= set(rows["sd15"])
    generated = {p.name: p for p in (tmp_path / "first" / "generated").iterdir()}
    assert len(generated) == 2
    stamps = {name: sorted(part_uris(f"{path}/records")) for name, path in generated.items()}

    # the same benchmark again, with sd15 changed: only sd15 is generated (under a new key) and scored again
    again = cfg.model_copy(deep=True)
    again.methods["sd15"].baseline.steps = 3
    again.compare_to = cfg.output
    assert benchmark.run(again) == 0
    now = {p.name for p in (tmp_path / "first" / "generated").iterdir()}
    oracle = next(n for n in generated if n.startswith("oracle-"))
    assert oracle in now and len(now) == 3  # the oracle's key is unchanged, sd15 got a new one
    assert sorted(part_uris(f"{generated[oracle]}/records")) == stamps[oracle]
    assert "### Changes since" in capsys.readouterr().out and storage.exists(f"{cfg.output}/table1_deltas.md")
