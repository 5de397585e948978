"""Training throughput, Ray Train against a plain single-process loop, timing the same work.

Both sides run the job's own ``make_stage`` step (same model, same step function, same
batch function) and time the same window: from a batch in hand (decoded, augmented) to the
optimizer step done (forward, backward, gradient clipping, optimizer and lr-scheduler step;
Ray's DDP adds its all-reduce inside that window). Both use the same CPU threads in all:
Ray Train gives each worker ``cpus_per_worker`` threads (``OMP_NUM_THREADS``), the loop gets
``workers x cpus_per_worker``. Per-step figures are medians after 3 warm-up steps.

End to end is reported separately: the loop from model load through data decode, every step
and saving the model; Ray from a cold ``ray.init`` of a fresh local instance through the
job's whole ``run`` (worker start, data streaming, checkpoints, MLflow logging, export).
"""

from __future__ import annotations

import statistics
import time

import torch
from mlflow.tracking import MlflowClient

from benchmarks.report import Figure
from handdiff.data.parts import read_parts
from pipelines.job import RayConfig, init_ray

WARMUP = 3


def plain_loop(job, cfg, schema, batch_fn, batch_kwargs: dict, directory: str) -> tuple[float, float]:
    """(per-step samples/s, end-to-end samples/s) of a single-process loop over the job's step."""
    from diffusers.optimization import get_scheduler

    t = cfg.train
    threads = torch.get_num_threads()
    torch.set_num_threads(int(cfg.scaling.workers * cfg.scaling.cpus_per_worker))
    try:
        start = time.perf_counter()
        stage = job.make_stage(cfg, torch.device("cpu"), torch.float32)
        model = stage.model
        optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=t.adam_betas, weight_decay=t.weight_decay)
        scheduler = get_scheduler(t.lr_schedule, optimizer, num_warmup_steps=t.warmup_steps, num_training_steps=t.steps)
        table = read_parts(f"{cfg.data.path}/records", schema=schema)
        generator, times = torch.Generator().manual_seed(0), []
        for step in range(t.steps):
            batch = batch_fn(table.slice((step * t.batch_size) % table.num_rows, t.batch_size), **batch_kwargs)
            started = time.perf_counter()  # the timed window starts with the batch in hand, as on the Ray side
            stage.step(model, batch, generator)["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - started)
        model.save_pretrained(f"{directory}/loop_model")
        wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return t.batch_size / statistics.median(times[WARMUP:]), t.steps * t.batch_size / wall


def ray_train(job, cfg, experiment: str) -> tuple[float, float]:
    """(per-step samples/s, end-to-end samples/s) of the job on a fresh local Ray instance."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    start = time.perf_counter()
    init_ray(RayConfig(num_cpus=8))
    job.run(cfg)
    wall = time.perf_counter() - start
    client = MlflowClient(cfg.tracking.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    per_step = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "samples_per_second"), key=lambda m: m.step)]
    return statistics.median(per_step[WARMUP:]), cfg.train.steps * cfg.train.batch_size / wall


def compare(suite: str, job, cfg, schema, batch_fn, batch_kwargs: dict, directory: str, label: str) -> list[Figure]:
    loop_step, loop_e2e = plain_loop(job, cfg, schema, batch_fn, batch_kwargs, directory)
    ray_step, ray_e2e = ray_train(job, cfg, cfg.experiment)
    workers, steps = cfg.scaling.workers, cfg.train.steps
    return [
        Figure(suite, f"{label}, per step, plain loop ({workers} threads)", loop_step, "samples/s"),
        Figure(suite, f"{label}, per step, Ray Train {workers}x DDP", ray_step, "samples/s", loop_step, "of loop"),
        Figure(suite, f"{label}, {steps} steps end to end, plain loop", loop_e2e, "samples/s"),
        Figure(suite, f"{label}, {steps} steps end to end, Ray Train (from ray.init)", ray_e2e, "samples/s", loop_e2e, "of loop"),
    ]
