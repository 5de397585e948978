"""What a job asks of the cluster: refused before any compute when it can never be placed, and
reported while a pool waits for resources that others hold."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from handdiff.config import ConfigError, to_yaml
from pipelines import train_hand
from pipelines.demo_configs import demo_config
from pipelines.resources import Cluster, Demand, check_demands, demands_of, fit_demands

TWO_CPUS = Cluster(((2.0, 0.0),))


def test_every_pool_of_a_config_is_a_demand_and_the_pools_of_a_pass_add_up():
    cfg = demo_config("annotate", "/tmp/unused")
    assert {d.key: (d.count, d.cpus) for d in demands_of(cfg)} == {
        "tasks": (1, 0.5),
        "keypoints.resources": (1, 1.0),
        "masks.resources": (1, 1.0),
        "captions.resources": (1, 1.0),
    }
    # the README's case: the demo's annotate on a default 2-CPU head would leave LLaVA's actor pending forever
    with pytest.raises(
        ConfigError,
        match=r"need 3\.5 CPUs and 0 GPUs \(tasks: 1 x 0\.5 CPU; keypoints\.resources: .*\) but the cluster has "
        r"2 CPUs, 0 GPUs: they would wait forever; lower \S+\.actors",
    ):
        check_demands(cfg.resource_passes(), TWO_CPUS)
    check_demands(cfg.resource_passes(), Cluster(((4.0, 0.0),)))
    # a training job: its worker group and its data tasks
    assert {d.key for d in demands_of(demo_config("train-hand", "/tmp/unused"))} == {"data.tasks", "scaling"}


def test_a_benchmark_needs_its_largest_pass_not_every_pool_at_once():
    cfg = demo_config("benchmark", "/tmp/unused")
    cfg.generation.num_gpus = cfg.scoring_resources.num_gpus = 1
    one_gpu = Cluster(((8.0, 1.0),))
    check_demands(cfg.resource_passes(), one_gpu)  # generation and scoring never hold the GPU together
    cfg.scoring_resources.actors = 2
    with pytest.raises(ConfigError, match=r"need 3 CPUs and 2 GPUs .* but the cluster has 8 CPUs, 1 GPUs.*lower scoring_resources\.actors"):
        check_demands(cfg.resource_passes(), one_gpu)


def test_an_actor_no_node_can_hold_is_refused_unless_the_cluster_autoscales():
    gpu_pool = [[Demand("masks.resources", 2, 2.0, 1.0)]]
    with pytest.raises(
        ConfigError, match=r"masks\.resources: one actor needs 2 CPUs and 1 GPUs but no node has that \(the cluster has 8 CPUs, 0 GPUs\)"
    ):
        check_demands(gpu_pool, Cluster(((8.0, 0.0),)))
    check_demands(gpu_pool, Cluster(((8.0, 0.0),)), autoscale_to={"CPU": 64, "GPU": 8})  # GPU workers from zero
    with pytest.raises(ConfigError, match=r"autoscales to 64, 1"):
        check_demands(gpu_pool, Cluster(((8.0, 0.0),)), autoscale_to={"CPU": 64, "GPU": 1})


def test_the_demo_sizes_its_pools_to_the_instance_it_gets():
    cfg = demo_config("annotate", "/tmp/unused")
    assert fit_demands(cfg, 2.0)
    check_demands(cfg.resource_passes(), TWO_CPUS)
    assert cfg.masks.resources.num_cpus < 1 and cfg.masks.resources.actors == 1  # fewer CPUs each, the same pools
    assert not fit_demands(cfg, 2.0)  # already fits: unchanged


@pytest.mark.slow
@pytest.mark.services
def test_an_unplaceable_pool_stops_the_job_before_any_compute(ray_session, tmp_path, capsys):
    from pipelines import generate

    config = tmp_path / "generate.yaml"
    config.write_text(
        to_yaml(
            generate.Config(
                tracking={"run_name": "too-big", "tracking_uri": f"sqlite:///{tmp_path}/db.sqlite"},
                conditions={"path": str(tmp_path)},
                output=str(tmp_path / "out"),
                method="oracle",
                resources={"actors": 40, "num_cpus": 1},
                tasks={"num_cpus": 0.5, "concurrency": 1},
            )
        )
    )
    assert generate.main(["--config", str(config)]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line]
    assert (
        line.startswith("error: the pools that run together need 40.5 CPUs")
        and "resources: 40 x 1 CPU" in line
        and "lower resources.actors" in line
    )
    assert not (tmp_path / "out").exists()  # nothing ran


def run_starved(job: Callable[[], int], caplog) -> tuple[str, int | None]:
    """Run ``job`` in a thread while another driver's actor holds all but half a CPU of the
    cluster (waits reported after 3 s); once the job reports Ray's pending demands, or after
    120 s, free the CPUs and let it finish. Returns the report and the job's exit code."""
    import ray

    from pipelines import waits

    @ray.remote(num_cpus=ray.available_resources().get("CPU", 0) - 0.5)
    class Hog:
        def ready(self) -> bool:
            return True

    hog = Hog.remote()
    ray.get(hog.ready.remote())
    before, waits.REPORT_WAITS_AFTER_S = waits.REPORT_WAITS_AFTER_S, 3.0
    result: list[int] = []
    try:
        with caplog.at_level(logging.WARNING, logger="handdiff.waits"):
            thread = threading.Thread(target=lambda: result.append(job()))
            thread.start()
            deadline = time.monotonic() + 120
            while "Ray's pending demands" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.5)
            ray.kill(hog)
            thread.join(300)
    finally:
        waits.REPORT_WAITS_AFTER_S = before
    reports = [r.getMessage() for r in caplog.records if "Ray's pending demands" in r.getMessage()]
    return (reports[0] if reports else ""), (result[0] if result else None)


@pytest.mark.slow
@pytest.mark.services
def test_a_pool_that_waits_for_resources_says_what_ray_has_pending(ray_session, annotated, demo_workdir, tmp_path, caplog):
    """Another driver holds all but half a CPU of the cluster: the generate job's actor cannot
    start, and instead of silence the job says what Ray has pending; once the CPUs are free, it finishes."""
    from pipelines import generate
    from pipelines.job import TrackingConfig

    cfg = generate.Config(
        tracking=TrackingConfig(run_name="waits", tracking_uri=f"sqlite:///{tmp_path}/db.sqlite"),
        conditions={"path": f"{annotated.output}/hagrid", "count": 8, "size": 64},
        output=str(tmp_path / "out"),
        method="sd15",
        baseline={"base": f"{demo_workdir}/zoo/sd15", "steps": 1},
        resources={"actors": 1, "batch_size": 2, "num_cpus": 1},
        tasks={"num_cpus": 0.25, "concurrency": 1},
    )
    message, code = run_starved(lambda: generate.run(cfg), caplog)
    assert "generate: nothing written for" in message and "{CPU 1}" in message and "free: " in message, message
    assert code == 0 and list((tmp_path / "out" / "images").rglob("*.png"))  # it ran once the CPUs were free


@pytest.mark.slow
@pytest.mark.services
def test_training_whose_workers_wait_for_resources_says_what_ray_has_pending(ray_session, hand_crops, demo_workdir, tmp_path, caplog):
    """Ray Train's ``fit`` shows the driver no progress while its workers' placement group waits:
    the job reports the pending group instead of silence, and trains once the CPUs are free."""
    from pipelines.job import TrackingConfig

    cfg = train_hand.Config(
        tracking=TrackingConfig(run_name="train-waits", tracking_uri=f"sqlite:///{tmp_path}/db.sqlite"),
        data={"path": hand_crops.output, "validation_rows": 2, "shuffle_buffer": 8, "tasks": {"num_cpus": 0.25, "concurrency": 1}},
        model={"base": f"{demo_workdir}/zoo/sd15"},
        train={"batch_size": 2, "steps": 2, "warmup_steps": 0, "mixed_precision": "no", "gradient_checkpointing": False},
        scaling={"workers": 1, "cpus_per_worker": 1},
        checkpoint={"storage_path": str(tmp_path / "runs"), "every_steps": 2},
        logging={"every_steps": 1, "sample_every_steps": 1000},
    )
    message, code = run_starved(lambda: train_hand.run(cfg), caplog)
    assert "train-waits: waiting on resources for" in message and "placement group of 1 x {CPU 1}" in message, message
    assert code == 0 and (tmp_path / "runs" / "train-waits").is_dir()  # it trained once the CPUs were free
