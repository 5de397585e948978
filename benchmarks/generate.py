"""Two-stage generation speed on the tiny zoo: ``handoff=pixel`` vs ``latent``, and the Ray Data
``generate`` job (one actor) vs a plain single-process loop, on the same models, conditions,
batch size and CPU threads, in s/image.

Steady state is the generation window alone on both sides (the loop: its batched calls; Ray:
the per-image generation time the actors record in the metadata). End to end is separate:
the loop from model load to PNGs on disk, Ray from a cold ``ray.init`` through the whole job.
SD 1.5-size figures (batch 16, bf16, 50 steps per stage) need a GPU machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import torch

from benchmarks.report import Figure
from handdiff.assets.figures import GESTURE_CURLS, person_keypoints
from handdiff.assets.tiny_zoo import build_tiny_zoo, model_locations
from handdiff.data import keypoints as kp
from handdiff.data.conditions import CONDITION_SCHEMA
from handdiff.data.images import encode_image
from handdiff.data.parts import read_parts, write_part
from handdiff.inference.generate_stages import GENERATION_SCHEMA
from handdiff.inference.settings import TwoStageSettings
from handdiff.inference.two_stage import TwoStagePipeline
from pipelines import generate
from pipelines.job import RayConfig, TrackingConfig, init_ray

SIZE, IMAGES, BATCH, THREADS = 64, 32, 8, 2
STEPS = {"hand_steps": 10, "body_steps": 10}


def condition_set(directory: str) -> list[dict]:
    """IMAGES synthetic people with both hands raised, in the SIZE square."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(IMAGES):
        gestures = {s: str(rng.choice(list(GESTURE_CURLS))) for s in kp.SIDES}
        keypoints = person_keypoints(SIZE / 2 + rng.uniform(-4, 4), 2, SIZE * 0.9, {"left": True, "right": True}, gestures, rng)
        rows.append(
            {
                "image_id": f"bench/{i:04d}",
                "keypoints": keypoints.reshape(-1).tolist(),
                "caption": "a person waving",
                "size": SIZE,
                "seed": i,
                "dataset": "bench",
                "gesture": None,
                "box": [0, 0, SIZE],
            }
        )
    write_part(pa.Table.from_pylist(rows, schema=CONDITION_SCHEMA), f"{directory}/records")
    return rows


def two_stage_models(zoo: str, directory: str) -> dict[str, str]:
    from handdiff.models.body_controlnet import grow_controlnet_condition
    from handdiff.models.body_pipeline import BodyOutpaintPipeline
    from handdiff.models.hand_generator import build_hand_generator
    from handdiff.models.hand_pipeline import HandGenerationPipeline
    from handdiff.models.loading import load_controlnet, load_sd_pipeline

    locations = model_locations(zoo)
    sd = load_sd_pipeline(locations["sd15"])
    HandGenerationPipeline.from_parts(sd, build_hand_generator(sd.unet, crop_size=SIZE)).save_pretrained(f"{directory}/hand")
    body = BodyOutpaintPipeline.from_parts(
        load_sd_pipeline(locations["sd15"]), grow_controlnet_condition(load_controlnet(locations["controlnet"]))
    )
    body.save_pretrained(f"{directory}/body")
    return {"hand_model": f"{directory}/hand", "body_model": f"{directory}/body"}


def plain_loop(models: dict, conditions: list[dict], handoff: str, out: str | None = None) -> tuple[float, float]:
    """(s/image of the generation window, s/image end to end) of batched calls in one process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        start = time.perf_counter()
        pipeline = TwoStagePipeline.from_pretrained(models["hand_model"], models["body_model"])
        settings = TwoStageSettings(handoff=handoff, **STEPS)
        generating = 0.0
        for i in range(0, len(conditions), BATCH):
            group = conditions[i : i + BATCH]
            began = time.perf_counter()
            results = pipeline(
                [np.asarray(c["keypoints"], np.float32).reshape(133, 3) for c in group],
                [c["caption"] for c in group],
                [c["seed"] for c in group],
                SIZE,
                settings,
            )
            generating += time.perf_counter() - began
            if out:
                for c, r in zip(group, results, strict=True):
                    with open(f"{out}/{c['seed']}.png", "wb") as f:
                        f.write(encode_image(r.image, "PNG"))
        return generating / len(conditions), (time.perf_counter() - start) / len(conditions)
    finally:
        torch.set_num_threads(threads)


def run() -> list[Figure]:
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_zoo(f"{tmp}/zoo")
        models = two_stage_models(f"{tmp}/zoo", tmp)
        conditions = condition_set(f"{tmp}/conditions")
        plain_loop(models, conditions[:BATCH], "pixel")  # warm-up: first-call costs out of the figures
        pixel, pixel_e2e = plain_loop(models, conditions, "pixel", out=tmp)
        latent, _ = plain_loop(models, conditions, "latent")
        cfg = generate.Config(
            tracking=TrackingConfig(run_name="bench", tracking_uri=f"sqlite:///{tmp}/mlflow.db"),
            conditions={"path": f"{tmp}/conditions"},
            output=f"{tmp}/generated",
            handdiff={**models, **STEPS},
            resources={"actors": 1, "batch_size": BATCH, "num_cpus": THREADS, "num_gpus": 0},
            tasks={"num_cpus": 0.5, "concurrency": 2},
            index_rows_per_file=BATCH,
            keep_canvas=False,
        )
        if ray.is_initialized():
            ray.shutdown()
        start = time.perf_counter()
        init_ray(RayConfig(num_cpus=8))
        generate.run(cfg)
        ray_e2e = (time.perf_counter() - start) / IMAGES
        # the actors' own generation window (the first batch includes the model's first-call costs, as the loop's warm-up did)
        seconds = read_parts(f"{tmp}/generated/records", ["image_id", "seconds"], GENERATION_SCHEMA).to_pylist()
        ray_steady = statistics.mean(r["seconds"] for r in sorted(seconds, key=lambda r: r["image_id"])[BATCH:])
    label = f"tiny {SIZE}px, batch {BATCH}, {STEPS['hand_steps']}+{STEPS['body_steps']} steps"
    return [
        Figure("generate", f"{label}, plain loop, handoff=pixel", pixel, "s/image"),
        Figure("generate", f"{label}, plain loop, handoff=latent", latent, "s/image", pixel, "of pixel"),
        Figure("generate", f"{label}, Ray actor (steady state), handoff=pixel", ray_steady, "s/image", pixel, "of loop"),
        Figure("generate", f"{IMAGES} images end to end, plain loop", pixel_e2e, "s/image"),
        Figure("generate", f"{IMAGES} images end to end, Ray job (from ray.init)", ray_e2e, "s/image", pixel_e2e, "of loop"),
    ]
