"""benchmark on the shared Ray cluster: tables for every method, and a rerun that redoes only what changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file, save_file

from handdiff import storage
from handdiff.data.images import decode_image
from handdiff.data.parts import part_uris, read_parts
from handdiff.metrics.tables import read_csv_rows
from pipelines import benchmark, score
from pipelines.demo_configs import demo_config

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_tables_for_every_method_and_a_rerun_redoes_only_the_changed_one(benchmark_run, capsys):
    cfg = benchmark_run
    rows = {r["name"]: r for r in read_csv_rows(storage.read_text(f"{cfg.output}/table1.csv"))}
    assert set(rows) == {"oracle", "sd15"} and set(score.METRICS) <= set(rows["sd15"])
    assert "| oracle |" in storage.read_text(f"{cfg.output}/table1.md")
    generated = {p.name: p for p in (Path(cfg.output) / "generated").iterdir()}
    assert len(generated) == 2
    stamps = {name: sorted(part_uris(f"{path}/records")) for name, path in generated.items()}
    # one real side for the condition set, shared by both methods: each method's rows carry its features
    (real,) = (Path(cfg.output) / "real").iterdir()
    real_rows = {r["image_id"]: r["real_features"] for r in read_parts(str(real / "records")).to_pylist()}
    condition_ids = set(read_parts(f"{cfg.conditions}/records", ["image_id"]).column("image_id").to_pylist())
    assert set(real_rows) == condition_ids
    for scores in (Path(cfg.output) / "scores").glob("*-*"):
        rows = read_parts(str(scores / "records"), ["image_id", "real_features"]).to_pylist()
        assert rows and all(r["real_features"] == pytest.approx(real_rows[r["image_id"]]) for r in rows), scores.name
    real_parts = sorted(part_uris(str(real / "records")))

    # SD 1.5's model retrained in place (same folder, new weights), then the same benchmark again:
    # only sd15 is generated (under a new key: what the model is, not where) and scored again
    unet = Path(cfg.methods["sd15"].baseline.base) / "unet"
    (weights,) = unet.glob("*.safetensors")
    tensors = load_file(weights)
    save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in tensors.items()}, weights)
    again = cfg.model_copy(deep=True)
    again.compare_to, again.paired_reference = cfg.output, "oracle"
    assert benchmark.run(again) == 0
    now = {p.name for p in (Path(cfg.output) / "generated").iterdir()}
    oracle = next(n for n in generated if n.startswith("oracle-"))
    assert oracle in now and len(now) == 3  # the oracle's key is unchanged, sd15 got a new one
    client = MlflowClient(cfg.tracking.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(cfg.experiment).experiment_id], "attributes.run_name = 'bench'")
    runs = json.loads(Path(client.download_artifacts(run.info.run_id, "runs.json", str(weights.parent.parent.parent))).read_text())
    assert set(runs["table1"]["sd15"]["models"]) == {str(weights.parent.parent)}  # what each method's models were, by content
    assert sorted(part_uris(f"{generated[oracle]}/records")) == stamps[oracle]
    assert [p.name for p in (Path(cfg.output) / "real").iterdir()] == [real.name] and sorted(part_uris(str(real / "records"))) == real_parts
    # the paper's Figure 1: conditions in rows, a column per method and the pose last, in the run and beside the tables
    figure = client.download_artifacts(run.info.run_id, "figures/figure1.png", str(weights.parent.parent.parent))
    grid = decode_image(Path(figure).read_bytes())
    assert grid.shape == (4 * 160, 3 * 160, 3) and storage.exists(f"{cfg.output}/figure1.png")
    pose = grid[160:320, 320:480]  # the second condition's pose column: a skeleton on black
    assert pose.max() > 0 and np.median(pose) == 0
    # the scoring pass is one pass for every method: its timing is the benchmark run's
    assert run.data.metrics["scoring.records"] >= 1 and "scoring.steady_images_per_second" in run.data.metrics
    out = capsys.readouterr().out
    assert "### Table I" in out and "### Changes since" in out and storage.exists(f"{cfg.output}/table1_deltas.md")
    # every row against the reference on the same resamples of the same conditions
    paired = storage.read_text(f"{cfg.output}/table1_paired.md")
    assert "oracle minus each method" in paired and "| sd15 |" in paired and "| oracle |" not in paired
    assert "### Table I, paired" in out


def test_each_method_is_keyed_and_logged_by_the_settings_it_reads(tmp_path):
    """A shared ``baseline`` block names every baseline's models: each row keeps only its own, so
    changing HumanSD's model changes HumanSD's key and no other's."""
    cfg = demo_config("benchmark", str(tmp_path))
    runs = {name: section for _, name, section, _ in benchmark.method_runs(cfg)}
    assert set(runs["sd15"]["baseline"]) == {"base", "steps"}  # guidance unset: each method's authors' own
    assert set(runs["humansd"]["baseline"]) == {"base", "steps", "humansd", "humansd_pose_threshold"}
    assert {"handrefiner", "inpainting", "handrefiner_control_scale"} <= set(runs["handrefiner"]["baseline"]) and "humansd" not in runs[
        "handrefiner"
    ]["baseline"]
    assert "baseline" not in runs["oracle"] and "baseline" not in runs["handdiff"]
    moved = cfg.model_copy(deep=True)
    moved.methods["humansd"].baseline.humansd = str(tmp_path / "elsewhere")
    again = {name: section for _, name, section, _ in benchmark.method_runs(moved)}
    assert [name for name in runs if again[name] != runs[name]] == ["humansd"]


def test_handrefiner_refines_the_images_of_an_sd15_row_drawn_with_the_same_settings(tmp_path):
    """HandRefiner's first step is SD 1.5's image from the same seed: a benchmark with both rows
    generates SD 1.5 first and hands its images over instead of drawing them twice."""
    cfg = demo_config("benchmark", str(tmp_path))
    names = [name for _, name, _, _ in benchmark.method_runs(cfg)]
    assert names.index("sd15") < names.index("handrefiner")
    runs = {name: section for _, name, section, _ in benchmark.method_runs(cfg)}
    done = {"sd15": {"method": "sd15", "section": runs["sd15"], "generated": "/out/generated/sd15-abc"}}
    assert benchmark.with_sd_images(runs["handrefiner"], done)["baseline"]["sd_images"] == "/out/generated/sd15-abc"
    assert "sd_images" not in runs["handrefiner"]["baseline"]  # the method's own section is left as it was
    other_steps = {**runs["sd15"], "baseline": {**runs["sd15"]["baseline"], "steps": 7}}
    assert "sd_images" not in benchmark.with_sd_images(runs["handrefiner"], {"sd15": {**done["sd15"], "section": other_steps}})["baseline"]
    assert benchmark.with_sd_images(runs["controlnet"], done) == runs["controlnet"]
    # keyed by what the images are (the SD 1.5 row's folder name holds its key), not where the output lies
    here, there = ({"sd15": {**done["sd15"], "generated": f"{root}/generated/sd15-abc"}} for root in ("runs/demo", "/abs/runs/demo"))
    keys = {
        benchmark.run_key(benchmark.keyed_by_folder_name(benchmark.with_sd_images(runs["handrefiner"], d)), str(tmp_path), None, {})
        for d in (here, there)
    }
    assert len(keys) == 1
    moved = benchmark.with_sd_images(runs["handrefiner"], {"sd15": {**done["sd15"], "generated": "/out/generated/sd15-def"}})
    assert benchmark.run_key(benchmark.keyed_by_folder_name(moved), str(tmp_path), None, {}) not in keys  # other SD images: another key


def test_a_method_is_keyed_by_what_its_models_are_not_where_they_are(tmp_path):
    (tmp_path / "set" / "records").mkdir(parents=True)
    conditions = str(tmp_path / "set")

    def key(base: str, contents: str) -> str:
        return benchmark.run_key({"method": "sd15", "baseline": {"base": base, "steps": 50}}, conditions, 4, {base: contents})

    assert key("/models/sd15", "f00d") == key("s3://bucket/sd15", "f00d")  # the same model, moved
    assert key("/models/sd15", "f00d") != key("/models/sd15", "beef")  # retrained in place
    assert key("/models/sd15", "f00d") != benchmark.run_key(
        {"method": "sd15", "baseline": {"base": "/models/sd15", "steps": 20}}, conditions, 4, {"/models/sd15": "f00d"}
    )
