"""The capacity plan (``python -m benchmarks capacity``): its arithmetic, measured rates taking
the place of the estimates, and the measuring code itself, run here on tiny models on CPU (the
same functions take SD 1.5 shapes on a GPU machine)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks import capacity


def test_gpu_hours_and_wall_time_follow_from_the_rates():
    stages = {s.name.split(": ")[0]: s for s in capacity.plan({})}
    train = stages["train-hand"]
    assert train.items == 30_000 * 32 and train.sources[0].startswith("estimate")
    assert train.gpu_hours == pytest.approx(960_000 / capacity.ESTIMATES["unet_train"][0] / 3600)
    # DDP: wall time falls with GPUs but less than in proportion; Ray Data pools in proportion
    assert train.wall_hours(8) > train.wall_hours(32) > train.wall_hours(128)
    assert (train.wall_hours(8) - train.fixed_s / 3600) * 8 * 0.9 == pytest.approx(train.gpu_hours)
    hagrid = stages["annotate HaGRID v2 (SAM masks + LLaVA captions; Mediapipe on CPU actors)"]
    assert (hagrid.wall_hours(32) - hagrid.fixed_s / 3600) * 32 == pytest.approx(hagrid.gpu_hours)
    assert stages["annotate Re:InterHand"].gpu_hours == 0 and math.isinf(stages["annotate Re:InterHand"].per_gpu)


def test_measured_rates_replace_the_estimates_and_are_named_in_the_table():
    sam_rate = 20.0
    stages = capacity.plan({"sam_vit_h": (sam_rate, "measured: a test GPU")})
    interhand = next(s for s in stages if s.name.startswith("annotate InterHand"))
    assert interhand.gpu_hours == pytest.approx(60_000 / sam_rate / 3600) and interhand.sources == ("measured: a test GPU",)
    assert not any("SAM paper" in src for s in stages for src in s.sources)  # every stage that needs SAM took the measured rate
    table = capacity.markdown(stages)
    assert "[1] measured: a test GPU" in table  # the first stage's first source
    assert table.count("\n| ") == len(stages) + 1  # a row per stage and the total


def test_the_measuring_functions_run_on_tiny_models():
    from diffusers import ControlNetModel

    tiny = dict(
        sample_size=8,
        block_out_channels=(8, 16),
        layers_per_block=1,
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    unet = capacity.sd15_unet(in_channels=15, **tiny)
    assert unet.config.in_channels == 15 and unet.config.cross_attention_dim == 16
    before = [p.detach().clone() for p in unet.parameters()][:3]
    assert capacity.unet_train_rate(unet, 2, "cpu", torch.float32, steps=2) > 0
    frozen = capacity.sd15_unet(**tiny)
    controlnet = ControlNetModel.from_unet(frozen, conditioning_embedding_out_channels=(4, 8, 8, 8))
    frozen_before = next(frozen.parameters()).detach().clone()
    assert capacity.unet_train_rate(frozen, 2, "cpu", torch.float32, steps=2, controlnet=controlnet) > 0
    assert torch.equal(next(frozen.parameters()), frozen_before)  # only the ControlNet trains beside a frozen UNet
    assert any(not torch.equal(a, b) for a, b in zip(before, list(unet.parameters())[:3], strict=True))
    assert capacity.unet_eval_seconds(capacity.sd15_unet(**tiny), 1, "cpu", torch.float32, steps=2) > 0
    assert capacity.sam_encoder_rate("tiny", 1, "cpu", torch.float32, steps=2) > 0


def test_the_selection_plan_annotates_the_sets_draws_and_says_what_it_assumes():
    selection = capacity.Selection(hagrid_oversample=1.5, laion_oversample=4.0, laion_one_person=0.5)
    everything = {s.name.split(":")[0]: s for s in capacity.plan({})}
    selected = {s.name.split(":")[0]: s for s in capacity.plan({}, selection)}
    assert selected["annotate HaGRID v2"].items == (76_800 + 12_000) * 1.5
    masks, captions = selected["annotate LAION-Human, masks"], selected["annotate LAION-Human, captions"]
    assert selection.laion_drawn == 36_500 * 4 and masks.items == 36_500 * 2  # SAM masks the one-person half
    assert captions.items == math.ceil(36_500 * 2 * 0.6)  # LLaVA captions what the filters keep (0.6 by default)
    assert masks.per_gpu == capacity.ESTIMATES["sam_vit_h"][0] and captions.per_gpu == capacity.ESTIMATES["llava_7b"][0]
    assert (
        selected["annotate HaGRID v2"].per_gpu
        == everything["annotate HaGRID v2 (SAM masks + LLaVA captions; Mediapipe on CPU actors)"].per_gpu
    )
    for name in ("train-hand", "benchmark", "score"):  # what follows annotation is the same work
        assert selected[name].gpu_hours == everything[name].gpu_hours
    assert any("146,000 drawn for 36,500 people" in line for line in selection.assumptions())
    shipped = capacity.Selection.from_configs()  # the shipped configs' draws
    assert (shipped.hagrid_images, shipped.laion_people) == (76_800 + 12_000, 36_500) and shipped.laion_oversample >= 1


def test_the_sample_datas_rates_come_from_an_annotated_output(tmp_path):
    import pyarrow as pa

    from handdiff.data.parts import write_part
    from handdiff.data.records import ERROR_SCHEMA, error_row, to_table

    write_part(to_table([error_row(f"d/{i}", "d", "read", "x") for i in range(1)], ERROR_SCHEMA), str(tmp_path / "hagrid" / "errors"))
    write_part(pa.table({"image_id": ["d/a", "d/b", "d/c"]}), str(tmp_path / "hagrid" / "records"))
    assert capacity.sample_rates(str(tmp_path)) == ["hagrid: 3 of 4 rows records (75%), 1 errors, 0 filtered"]
    assert capacity.sample_rates(str(tmp_path / "nothing")) == []
