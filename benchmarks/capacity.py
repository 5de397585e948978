"""Capacity plan for the paper-scale work: GPU-hours per stage from per-GPU throughput, and the
wall time at 8, 32 and 128 GPUs. On a CUDA machine the model-bound rates are measured here on
SD 1.5-shaped models with random weights (bf16); elsewhere they are estimates from public
figures, each marked as such with its source. Prints the Markdown table the README's
"Capacity plan" holds: rerun it on a GPU machine to refresh it with measured figures.

Wall time = the job's fixed start-up (instance, actors, model loads) + GPU-hours / (GPUs x
efficiency): Ray Data's actor pools scale with actors until storage or CPUs bind (efficiency 1
assumed, the CPU stages given enough cores); DDP loses to the all-reduce, more across nodes
(0.9 within a node, 0.8 beyond: assumed, typical of SD-size models on NVLink + 100 Gb/s+).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Figure

GPUS = (8, 32, 128)


@dataclass
class Stage:
    name: str
    items: int
    unit: str
    per_gpu: float
    """items per second per GPU"""
    sources: tuple[str, ...]
    """where each rate behind ``per_gpu`` comes from (``measured: ...`` or ``estimate: ...``)"""
    kind: str = "data"
    """``data``: Ray Data actor pools; ``ddp``: Ray Train workers."""
    fixed_s: float = 300.0
    """start-up: instance, actors or workers, model loads from S3"""

    @property
    def gpu_hours(self) -> float:
        return self.items / self.per_gpu / 3600

    def wall_hours(self, gpus: int) -> float:
        efficiency = 1.0 if self.kind == "data" else (0.9 if gpus <= 8 else 0.8)
        return self.fixed_s / 3600 + self.gpu_hours / (gpus * efficiency)


# (rate, source) per model-bound step; measured ones replace these on a CUDA machine.
ESTIMATES = {
    "sam_vit_h": (1 / 0.15, "estimate: SAM paper, ViT-H image encoder ~0.15 s/image on an A100"),
    "llava_7b": (
        8.0,
        "estimate: 7B decoding ~25 tokens/s per sequence (HF transformers, A100, bf16), batch 32, 60 new tokens + 576 image tokens prefill",
    ),
    "unet_train": (12.0, "estimate: MosaicML SD 2 base at 512 px, ~16 images/s per A100, less ~25 % for the VAE encode of augmented crops"),
    "controlnet_train": (
        10.0,
        "estimate: the SD training rate of the hand generator's, with a ControlNet (a copy of the UNet's encoder) trained beside the frozen UNet (~+20 % per step), latents precomputed",
    ),
    "unet_step": (0.025, "estimate: SD 1.5 at 512 px, CFG (2 x batch), ~40 UNet evaluations/s on an A100 in bf16 at batch 8"),
}
STEPS = 50  # DDIM steps per stage (the paper's setting for every method)
CONTROLNET_COST = 1.4  # a ControlNet call beside the UNet's, relative to the UNet alone
METHOD_UNET_CALLS = {  # UNet-equivalent evaluations per step (x CFG) for each benchmark method
    "ours (two stages)": 1 + CONTROLNET_COST,
    "SD 1.5": 1,
    "ControlNet": CONTROLNET_COST,
    "T2I-Adapter": 1.1,
    "HumanSD": 1,
    "HandRefiner": CONTROLNET_COST,  # the inpainting UNet with its ControlNet, on the SD 1.5 row's images (sd_images)
}


def sd15_unet(in_channels: int = 4, **overrides):
    """SD 1.5's UNet shape with random weights (in_channels 15 for stage 1)."""
    from diffusers import UNet2DConditionModel

    config = dict(
        sample_size=64,
        in_channels=in_channels,
        out_channels=4,
        cross_attention_dim=768,
        attention_head_dim=8,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
    )
    return UNet2DConditionModel(**{**config, **overrides})


def unet_train_rate(unet, batch: int, device: str, dtype, steps: int = 6, controlnet=None) -> float:
    """Training samples/s of one optimizer step on random latents at the UNet's sample size:
    forward, epsilon MSE, backward, AdamW; the UNet trains, or only ``controlnet`` beside it."""
    import torch

    unet = unet.to(device)
    trained = controlnet.to(device) if controlnet is not None else unet
    unet.requires_grad_(controlnet is None)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-5)
    size, text_dim = unet.config.sample_size, unet.config.cross_attention_dim
    latents = torch.randn(batch, unet.config.in_channels, size, size, device=device)
    text = torch.randn(batch, 77, text_dim, device=device)
    t = torch.randint(0, 1000, (batch,), device=device)
    times = []
    for _ in range(steps):
        _sync(device)
        began = time.perf_counter()
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
            residuals = {}
            if controlnet is not None:
                down, mid = controlnet(
                    latents, t, text, controlnet_cond=torch.rand(batch, 3, size * 8, size * 8, device=device), return_dict=False
                )
                residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
            pred = unet(latents, t, text, **residuals).sample
            loss = torch.nn.functional.mse_loss(pred.float(), torch.randn_like(pred, dtype=torch.float32))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - began)
    return batch / statistics.median(times[1:])


def unet_eval_seconds(unet, batch: int, device: str, dtype, steps: int = 6) -> float:
    """Seconds per image of one UNet evaluation with classifier-free guidance (2 x ``batch``)."""
    import torch

    unet = unet.to(device).eval()
    size = unet.config.sample_size
    latents = torch.randn(2 * batch, unet.config.in_channels, size, size, device=device)
    text = torch.randn(2 * batch, 77, unet.config.cross_attention_dim, device=device)
    times = []
    with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
        for _ in range(steps):
            _sync(device)
            began = time.perf_counter()
            unet(latents, torch.full((2 * batch,), 500, device=device), text)
            _sync(device)
            times.append(time.perf_counter() - began)
    return statistics.median(times[1:]) / batch


def sam_encoder_rate(arch: str, batch: int, device: str, dtype, steps: int = 4) -> float:
    """Images/s of SAM's image encoder (the per-image cost of every mask: prompts share it)."""
    import torch

    from handdiff.models.sam import build_sam

    encoder = build_sam(arch).image_encoder.to(device).eval()
    images = torch.randn(batch, 3, encoder.img_size, encoder.img_size, device=device)
    times = []
    with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
        for _ in range(steps):
            _sync(device)
            began = time.perf_counter()
            encoder(images)
            _sync(device)
            times.append(time.perf_counter() - began)
    return batch / statistics.median(times[1:])


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measured_rates() -> dict[str, tuple[float, str]]:
    """The model-bound rates measured on this machine's GPU (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    from diffusers import ControlNetModel

    gpu, dtype = torch.cuda.get_device_name(0), torch.bfloat16
    where = f"measured: {gpu}, bf16, random weights"
    rates = {
        "unet_train": (
            unet_train_rate(sd15_unet(in_channels=15), 16, "cuda", dtype),
            f"{where}, SD 1.5 UNet with 15 input channels, batch 16 (no VAE encode)",
        ),
        "unet_step": (unet_eval_seconds(sd15_unet(), 8, "cuda", dtype), f"{where}, SD 1.5 UNet, CFG, batch 8"),
        "sam_vit_h": (sam_encoder_rate("vit_h", 4, "cuda", dtype), f"{where}, SAM ViT-H image encoder, batch 4"),
    }
    unet = sd15_unet()
    rates["controlnet_train"] = (
        unet_train_rate(unet, 16, "cuda", dtype, controlnet=ControlNetModel.from_unet(unet)),
        f"{where}, ControlNet beside a frozen SD 1.5 UNet, batch 16",
    )
    return rates


@dataclass(frozen=True)
class Selection:
    """What annotating only the sets' draws assumes. The draws and their oversampling are the
    shipped ``annotate_hagrid.yaml``'s and ``annotate_laion_human.yaml``'s ``select`` (``from_configs``)."""

    hagrid_images: int = 76_800 + 12_000
    """build-hand-crops' train draw + build-benchmark-set's test draw."""
    hagrid_oversample: float = 1.2
    laion_people: int = 36_500
    """build-outpaint-set's LAION-Human people."""
    laion_oversample: float = 5.0
    laion_one_person: float = 0.4
    """assumed: the share of LAION-Human images whose HumanSD pose files hold exactly one person
    (the rest are filtered on CPU, from the pose files, before any model)."""
    laion_pass: float = 0.6
    """assumed: of those, the share that passes Mediapipe's person count and the hand-pixel filter."""

    @classmethod
    def from_configs(cls) -> Selection:
        from handdiff.config import load_config
        from pipelines import annotate
        from pipelines.job import CONFIG_DIR

        hagrid = load_config(annotate.Config, str(CONFIG_DIR / "annotate_hagrid.yaml")).datasets["hagrid"].select
        laion = load_config(annotate.Config, str(CONFIG_DIR / "annotate_laion_human.yaml")).datasets["laion_human"].select
        return cls(sum(d.count for d in hagrid.draws), hagrid.oversample, sum(d.count for d in laion.draws), laion.oversample)

    @property
    def laion_drawn(self) -> int:
        return math.ceil(self.laion_people * self.laion_oversample)

    @property
    def laion_to_models(self) -> int:
        return math.ceil(self.laion_drawn * self.laion_one_person)

    @property
    def laion_captioned(self) -> int:
        """The filters run before LLaVA: only the people they keep are captioned."""
        return math.ceil(self.laion_to_models * self.laion_pass)

    def assumptions(self) -> list[str]:
        expected = self.laion_captioned
        return [
            f"HaGRID: the sets' {self.hagrid_images:,} images x oversample {self.hagrid_oversample} (assumed: errors and handless "
            f"images under 1 in {self.hagrid_oversample / (self.hagrid_oversample - 1):.0f}; a short draw draws again)",
            f"LAION-Human: {self.laion_drawn:,} drawn for {self.laion_people:,} people (oversample {self.laion_oversample}); assumed "
            f"{self.laion_one_person:.0%} with one person in their pose files, so {self.laion_to_models:,} reach the models, and "
            f"{self.laion_pass:.0%} of those pass the people and hand filters, which run before LLaVA: {expected:,.0f} people "
            "expected, and captioned",
        ]


def plan(rates: dict[str, tuple[float, str]], selection: Selection | None = None) -> list[Stage]:
    """The paper-scale stages with ``rates`` (measured) over ``ESTIMATES``: annotating every image
    of HaGRID and LAION-Human, or (``selection``) only what the sets draw."""
    rate = {**ESTIMATES, **rates}
    sam, llava = rate["sam_vit_h"], rate["llava_7b"]

    masks_and_captions = 1 / (1 / sam[0] + 1 / llava[0])  # images/s per GPU, SAM and LLaVA sharing the GPUs

    stage1, stage2 = rate["unet_train"], rate["controlnet_train"]
    unet_s = rate["unet_step"][0]
    per_method = {m: STEPS * calls * unet_s for m, calls in METHOD_UNET_CALLS.items()}
    two_stage_s = per_method["ours (two stages)"]
    sam_llava = (sam[1], llava[1])
    if selection is None:
        annotation = [
            Stage(
                "annotate HaGRID v2 (SAM masks + LLaVA captions; Mediapipe on CPU actors)",
                1_086_158,
                "images",
                masks_and_captions,
                sam_llava,
                fixed_s=600,
            ),
            Stage("annotate LAION-Human (as HaGRID)", 1_000_000, "images", masks_and_captions, sam_llava, fixed_s=600),
        ]
    else:
        annotation = [
            Stage(
                "annotate HaGRID v2: the sets' draws, oversampled (SAM + LLaVA; Mediapipe on CPU actors)",
                math.ceil(selection.hagrid_images * selection.hagrid_oversample),
                "images",
                masks_and_captions,
                sam_llava,
                fixed_s=600,
            ),
            Stage(
                f"annotate LAION-Human, masks: the one-person images of a {selection.laion_drawn:,}-image draw (SAM)",
                selection.laion_to_models,
                "images",
                sam[0],
                (sam[1],),
                fixed_s=600,
            ),
            Stage(
                "annotate LAION-Human, captions: what the people and hand filters keep (LLaVA)",
                selection.laion_captioned,
                "images",
                llava[0],
                (llava[1],),
                fixed_s=0,
            ),
        ]
    return [
        *annotation,
        Stage(
            "annotate InterHand2.6M: the mixture's 60,000 frames (SAM masks only; all 2.6M frames: 43x)",
            60_000,
            "images",
            sam[0],
            (sam[1],),
        ),
        Stage(
            "annotate Re:InterHand: the mixture's 56,500 (release masks, dataset keypoints, caption table)", 56_500, "images", math.inf, ()
        ),
        Stage("train-hand: 30,000 steps x batch 32", 30_000 * 32, "samples", stage1[0], (stage1[1],), kind="ddp", fixed_s=300),
        Stage("train-body: 6,000 steps x batch 32", 6_000 * 32, "samples", stage2[0], (stage2[1],), kind="ddp", fixed_s=300),
        Stage(
            "benchmark: 12,000 conditions x 6 methods (50 DDIM steps, CFG)",
            12_000 * len(per_method),
            "images",
            len(per_method) / sum(per_method.values()),
            (rate["unet_step"][1], "per image: " + ", ".join(f"{m} {s:.1f} s" for m, s in per_method.items())),
        ),
        Stage("blending ablation (Table II): 500 x 3 strategies", 1_500, "images", 1 / two_stage_s, (rate["unet_step"][1],)),
        Stage(
            "score: 12,000 x 6 methods + 1,500 ablation images, one pass (the real side once: Inception only)",
            12_000 * 6 + 1_500,
            "images",
            sam[0],
            (sam[1], "SAM's foreground masks dominate: CLIP and Inception take ~5 ms"),
        ),
    ]


def markdown(stages: list[Stage]) -> str:
    """The plan as a Markdown table, each rate with the numbers of its sources below it."""
    sources = list(dict.fromkeys(src for s in stages for src in s.sources))
    header = "| stage | items | per GPU | GPU-hours | " + " | ".join(f"wall at {g} GPUs" for g in GPUS) + " |"
    lines = [header, "|" + "---|" * (4 + len(GPUS))]
    for s in stages:
        refs = "".join(f"[{sources.index(src) + 1}]" for src in s.sources)
        rate = "CPU only" if math.isinf(s.per_gpu) else f"{s.per_gpu:.2f} {s.unit}/s {refs}"
        walls = " | ".join(f"{s.wall_hours(g):.1f} h" for g in GPUS)
        lines.append(f"| {s.name} | {s.items:,} | {rate} | {s.gpu_hours:.1f} | {walls} |")
    total = sum(s.gpu_hours for s in stages)
    lines.append(f"| **total** | | | **{total:.0f}** | " + " | ".join(f"{sum(s.wall_hours(g) for s in stages):.1f} h" for g in GPUS) + " |")
    return "\n".join(lines + [""] + [f"[{i + 1}] {src}" + "  " for i, src in enumerate(sources)])


def run() -> list[Figure]:
    rates, selection = measured_rates(), Selection.from_configs()
    everything, selected = plan(rates), plan(rates, selection)
    print("### Annotating every image\n\n" + markdown(everything))
    print("\n### Annotating what the sets draw (annotate's select)\n\n" + markdown(selected))
    print("\nAssumptions of the second plan:\n\n" + "\n".join(f"- {a}" for a in selection.assumptions()))
    sample = sample_rates()
    if sample:
        print(
            "\nOn the sample data (runs/demo/annotated, `make demo`), what became records:\n\n" + "\n".join(f"- {line}" for line in sample)
        )
    total = [sum(s.gpu_hours for s in stages) for stages in (everything, selected)]
    return [
        *(Figure("capacity", s.name.split(": ")[0], s.gpu_hours, "GPU-hours") for s in selected),
        Figure("capacity", "total, annotating every image", total[0], "GPU-hours"),
        Figure("capacity", "total, annotating the sets' draws", total[1], "GPU-hours", total[0], "of everything"),
    ]


def sample_rates(annotated: str = "runs/demo/annotated") -> list[str]:
    """Per dataset of a demo's annotation, the share of its rows that became records, were errors
    or were filtered (the sample data is half deliberate bad entries: an upper bound on the losses)."""
    from handdiff.data.parts import part_uris, read_part

    lines = []
    for folder in sorted(Path(annotated).glob("*/")) if Path(annotated).is_dir() else []:
        counts = {
            t: sum(read_part(u, ["image_id"]).num_rows for u in part_uris(str(folder / t))) for t in ("records", "errors", "filtered")
        }
        total = sum(counts.values())
        if total:
            lines.append(
                f"{folder.name}: {counts['records']} of {total} rows records ({counts['records'] / total:.0%}), "
                f"{counts['errors']} errors, {counts['filtered']} filtered"
            )
    return lines
