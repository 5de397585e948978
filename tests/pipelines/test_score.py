"""score on the shared Ray cluster: the oracle (real images) scores the ceiling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from handdiff import storage
from handdiff.data.parts import read_parts
from handdiff.data.rle import rle_area
from handdiff.metrics.keypoints import keypoint_ap, mpjpe
from handdiff.metrics.score_stages import SCORE_SCHEMA
from handdiff.metrics.summary import read_resamples
from pipelines import build_benchmark_set, generate, score
from pipelines.demo_configs import demo_config
from pipelines.job import TrackingConfig

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_the_oracle_scores_dap_near_one_where_the_person_is_found(ray_session, annotated, demo_workdir, tmp_path):
    uri = f"sqlite:///{tmp_path}/db.sqlite"
    tasks = {"num_cpus": 0.5, "concurrency": 2}
    conditions = str(tmp_path / "conditions")
    bench = build_benchmark_set.Config(
        tracking=TrackingConfig(run_name="bench", tracking_uri=uri),
        output=conditions,
        size=256,
        tasks=tasks,
        index_rows_per_file=4,
        sources={"hagrid": {"path": f"{annotated.output}/hagrid", "count": 6, "stratify_by": "gesture", "splits": ["test"]}},
    )
    assert build_benchmark_set.run(bench) == 0
    oracle = generate.Config(
        tracking=TrackingConfig(run_name="oracle", tracking_uri=uri),
        conditions={"path": conditions},
        output=str(tmp_path / "generated"),
        method="oracle",
        tasks=tasks,
        index_rows_per_file=4,
        resources={"actors": 1, "batch_size": 4, "num_cpus": 0.5, "num_gpus": 0},
    )
    assert generate.run(oracle) == 0
    cfg = demo_config("score", demo_workdir, TrackingConfig(run_name="score", tracking_uri=uri))
    cfg.generated, cfg.conditions, cfg.output, cfg.bootstrap = oracle.output, conditions, str(tmp_path / "scores"), 10
    assert score.run(cfg) == 0

    rows = read_parts(f"{cfg.output}/records", schema=SCORE_SCHEMA).to_pylist()
    generated = read_parts(f"{oracle.output}/records", ["image_id"]).column("image_id").to_pylist()
    assert sorted(r["image_id"] for r in rows) == sorted(generated) and {r["method"] for r in rows} == {"oracle"}
    found = [r for r in rows if r["detected"] is not None]
    assert len(found) >= len(rows) / 2  # Holistic finds the synthetic people in their real images
    targets = [np.asarray(r["target"], np.float32).reshape(133, 3) for r in found]
    detections = [np.asarray(r["detected"], np.float32).reshape(133, 3) for r in found]
    # the real images re-detected at 256 px: near the ceiling (the face's tiny OKS sigmas take the rest)
    assert keypoint_ap(targets, detections, "wholebody", tmp_path / "ap") > 0.8
    for part in ("wholebody", "hands"):
        assert mpjpe(targets, detections, [256] * len(found), part)[0] < 0.02, part  # within 2 % of the image

    # the real side is computed once under <output>/real, one row per scored condition, and the
    # scores carry its features
    real = {r["image_id"]: r for r in read_parts(f"{cfg.output}/real/records").to_pylist()}
    assert set(real) == set(generated)
    assert all(r["real_features"] == pytest.approx(real[r["image_id"]]["real_features"]) for r in rows)
    # the oracle's generated images are the real ones: each whole image's features equal the real side's
    assert all(np.allclose(r["fake_image_features"], r["real_image_features"], atol=1e-4) for r in rows)

    # the OKS scale is each real person's mask area, from the benchmark set
    masks = {r["image_id"]: r["person_mask"] for r in read_parts(f"{conditions}/records", ["image_id", "person_mask"]).to_pylist()}
    assert [r["person_area"] for r in rows] == [float(rle_area([masks[r["image_id"]]])) for r in rows]
    summary = json.loads(storage.read_text(f"{cfg.output}/summary.json"))
    assert set(score.METRICS) <= set(summary["metrics"]) and summary["metrics"]["clipsim"] >= 0
    assert summary["conventions"] == {"oks_area": "person", "kid_subset": 1000, "min_visibility": 0.5}
    assert abs(summary["metrics"]["fid"]) < 1e-2  # whole-image FID of the real images against themselves
    assert summary["metrics"]["kid_fg_std"] >= 0
    lo, hi = summary["intervals"]["clipsim"]
    assert lo <= summary["metrics"]["clipsim"] <= hi
    samples = read_resamples(f"{cfg.output}/resamples.parquet")  # every metric per resample, for paired comparisons
    assert all(len(v) == 10 for v in samples.values()) and "kid_fg" not in samples
    assert min(samples["clipsim"]) <= summary["metrics"]["clipsim"] <= max(samples["clipsim"])
    assert set(summary["by"]) <= {r["gesture"] for r in rows}
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("handdiff-score").experiment_id])
    assert run.data.metrics["dap"] == pytest.approx(summary["metrics"]["dap"]) and "dap_ci_lo" in run.data.metrics
    m = run.data.metrics
    assert 0 < m["startup_seconds"] < m["seconds"] and m["images_per_second"] > 0 and m["steady_images_per_second"] >= 0
