"""Session-wide fixtures: one S3 server, one Ray cluster and one MLflow server for
the whole test session, started on free ports of 127.0.0.1 and stopped at the end.

The S3 server starts before the Ray head so that its endpoint and keys are in
every Ray worker's environment, as they are on a real cluster (from secrets).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devtools.services import MlflowServer, RayHead, S3Server, patched_environ, start_mlflow, start_ray_head, start_s3
from pipelines.demo_configs import demo_config


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session", autouse=True)
def job_logs(tmp_path_factory) -> Path:
    """The jobs' log files (``setup_logging``) go to a session folder, not the checkout."""
    folder = tmp_path_factory.mktemp("job-logs")
    with patched_environ({"HANDDIFF_LOG_DIR": str(folder)}):
        yield folder


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def s3_server(services_dir) -> S3Server:
    server = start_s3(services_dir)
    with patched_environ(server.env):
        yield server
    server.service.stop()


@pytest.fixture(scope="session")
def ray_cluster(services_dir, s3_server) -> RayHead:
    """A Ray head started with ``ray start --head``, shared by every test that uses Ray."""
    head = start_ray_head(services_dir, env=s3_server.env)
    yield head
    import ray

    if ray.is_initialized():
        ray.shutdown()
    head.service.stop()


@pytest.fixture(scope="session")
def ray_session(ray_cluster):
    """This process connected to the shared cluster as a driver (``ray.init(address=...)``)."""
    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"
    if not ray.is_initialized():
        # as a job's own driver does (pipelines.job.init_ray): workers' output stays in Ray's logs
        ray.init(address=ray_cluster.address, logging_level="WARNING", log_to_driver=False)
    return ray_cluster


@pytest.fixture(scope="session")
def mlflow_server(services_dir) -> MlflowServer:
    server = start_mlflow(services_dir)
    yield server
    server.service.stop()


@pytest.fixture
def s3_prefix(s3_server, request) -> str:
    """A fresh ``s3://`` prefix for one test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"s3://{s3_server.bucket}/{name}-{os.getpid()}"


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> str:
    """The sample datasets, written once per session to a local folder."""
    from handdiff.assets.sample_data import build_sample_data

    out = str(tmp_path_factory.mktemp("sample-data"))
    build_sample_data(out)
    return out


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory) -> str:
    """The tiny model zoo, built once per session."""
    from handdiff.assets.tiny_zoo import build_tiny_zoo

    out = str(tmp_path_factory.mktemp("zoo") / "zoo")
    build_tiny_zoo(out)
    return out


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory, tiny_zoo, sample_data) -> str:
    """A demo working folder (``zoo/`` and ``sample-data/``) made of the session's assets."""
    workdir = tmp_path_factory.mktemp("demo")
    (workdir / "zoo").symlink_to(tiny_zoo)
    (workdir / "sample-data").symlink_to(sample_data)
    return str(workdir)


@pytest.fixture(scope="session")
def annotated(ray_session, demo_workdir, tmp_path_factory):
    """The four sample datasets annotated once per session (pipelines/annotate.py on the
    shared cluster); returns the annotate config, whose ``output`` holds the result."""
    from pipelines import annotate
    from pipelines.job import TrackingConfig

    store = tmp_path_factory.mktemp("mlflow")
    cfg = demo_config("annotate", demo_workdir, TrackingConfig(run_name="annotate-test", tracking_uri=f"sqlite:///{store}/db.sqlite"))
    cfg.output = str(tmp_path_factory.mktemp("annotated"))
    assert annotate.run(cfg) == 0
    return cfg


@pytest.fixture(scope="session")
def hand_crops(annotated, tmp_path_factory):
    """The stage-1 crop set (64-pixel crops) built from the session's annotated sample data."""
    from pipelines import build_hand_crops
    from pipelines.job import TrackingConfig

    out = tmp_path_factory.mktemp("hand-crops")
    sources = {name: {"path": f"{annotated.output}/{name}"} for name in ("interhand26m", "reinterhand")}
    sources["hagrid"] = {"path": f"{annotated.output}/hagrid", "count": 12, "stratify_by": "gesture"}
    cfg = build_hand_crops.Config(
        tracking=TrackingConfig(run_name="crops-test", tracking_uri=annotated.tracking.tracking_uri),
        sources=sources,
        output=str(out / "set"),
        size=64,
        tasks={"num_cpus": 0.5, "concurrency": 2},
        index_rows_per_file=8,
    )
    assert build_hand_crops.run(cfg) == 0
    return cfg


@pytest.fixture(scope="session")
def outpaint_set(annotated, tmp_path_factory):
    """The stage-2 set (64-pixel squares, a canvas fill of 100, not the default) built from the
    session's annotated LAION-Human and HaGRID."""
    from pipelines import build_outpaint_set
    from pipelines.job import TrackingConfig

    out = tmp_path_factory.mktemp("outpaint")
    cfg = build_outpaint_set.Config(
        tracking=TrackingConfig(run_name="outpaint-test", tracking_uri=annotated.tracking.tracking_uri),
        sources={name: {"path": f"{annotated.output}/{name}"} for name in ("laion_human", "hagrid")},
        output=str(out / "set"),
        size=64,
        fill=100,
        tasks={"num_cpus": 0.5, "concurrency": 2},
        index_rows_per_file=8,
    )
    assert build_outpaint_set.run(cfg) == 0
    return cfg


TRAINED_SETTINGS = {"crop_size": 64, "crop_margin": 0.35, "heatmap_sigma": 1.5, "min_hand_points": 6, "fill": 90}
"""What the session's two-stage models say they were trained with: none of them a default, so a
path that falls back to a default of its own shows."""


@pytest.fixture(scope="session")
def two_stage_models(tiny_zoo, tmp_path_factory) -> dict[str, str]:
    """Untrained stage-1 and stage-2 pipelines made from the tiny zoo and saved as the
    training jobs save their final models (the same folders, the same loaders), recording
    ``TRAINED_SETTINGS``."""
    from handdiff.assets.tiny_zoo import model_locations
    from handdiff.models.body_controlnet import grow_controlnet_condition
    from handdiff.models.body_pipeline import BodyOutpaintPipeline, OutpaintSettings
    from handdiff.models.hand_generator import build_hand_generator
    from handdiff.models.hand_pipeline import HandGenerationPipeline
    from handdiff.models.loading import load_controlnet, load_sd_pipeline

    out, zoo = tmp_path_factory.mktemp("two-stage"), model_locations(tiny_zoo)
    sd = load_sd_pipeline(zoo["sd15"])
    crop = {k: v for k, v in TRAINED_SETTINGS.items() if k != "fill"}
    HandGenerationPipeline.from_parts(sd, build_hand_generator(sd.unet, **crop)).save_pretrained(out / "hand")
    body = BodyOutpaintPipeline.from_parts(
        load_sd_pipeline(zoo["sd15"]),
        grow_controlnet_condition(load_controlnet(zoo["controlnet"])),
        OutpaintSettings(fill=TRAINED_SETTINGS["fill"], size=64),
    )
    body.save_pretrained(out / "body")
    return {"hand_model": str(out / "hand"), "body_model": str(out / "body")}


@pytest.fixture(scope="session")
def benchmark_conditions(annotated, tmp_path_factory):
    """The benchmark set (64-pixel conditions, 6 HaGRID test people, seed 3) of the session's annotated sample."""
    from pipelines import build_benchmark_set
    from pipelines.job import TrackingConfig

    cfg = build_benchmark_set.Config(
        tracking=TrackingConfig(run_name="benchmark-test", tracking_uri=annotated.tracking.tracking_uri),
        sources={"hagrid": {"path": f"{annotated.output}/hagrid", "count": 6, "stratify_by": "gesture", "splits": ["test"]}},
        output=str(tmp_path_factory.mktemp("benchmark") / "conditions"),
        size=64,
        seed=3,
        tasks={"num_cpus": 0.5, "concurrency": 2},
        index_rows_per_file=4,
    )
    assert build_benchmark_set.run(cfg) == 0
    return cfg


@pytest.fixture(scope="session")
def benchmark_run(ray_session, benchmark_conditions, demo_workdir, tmp_path_factory):
    """A benchmark of the oracle and SD 1.5 (2 steps; its own copy of the zoo's, ``<output>/../sd15``,
    which a test may retrain in place) on the session's benchmark set; returns its config."""
    import shutil

    from pipelines import benchmark
    from pipelines.job import TrackingConfig

    out = tmp_path_factory.mktemp("benchmark-run")
    shutil.copytree(f"{demo_workdir}/zoo/sd15", out / "sd15")
    cfg = demo_config("benchmark", demo_workdir, TrackingConfig(run_name="bench", tracking_uri=f"sqlite:///{out}/db.sqlite"))
    cfg.conditions, cfg.output, cfg.ablation, cfg.bootstrap = benchmark_conditions.output, str(out / "benchmark"), None, 5
    cfg.methods = {"oracle": {"method": "oracle"}, "sd15": {"method": "sd15", "baseline": {"base": str(out / "sd15"), "steps": 2}}}
    cfg = benchmark.Config.model_validate(cfg.model_dump())
    assert benchmark.run(cfg) == 0
    return cfg
