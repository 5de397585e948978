"""Two-stage generation on the tiny zoo (random weights: these test the plumbing, geometry and
determinism, not image quality)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handdiff.assets.figures import person_keypoints
from handdiff.assets.tiny_zoo import model_locations
from handdiff.data import keypoints as kp
from handdiff.data.hand_crops import make_crops, plan_crops, plan_hand_crops
from handdiff.data.rle import encode_rle
from handdiff.inference.compose import paste_square
from handdiff.inference.settings import TwoStageSettings
from handdiff.inference.two_stage import TwoStagePipeline
from handdiff.models.body_controlnet import grow_controlnet_condition, latent_mask
from handdiff.models.body_pipeline import BodyOutpaintPipeline, OutpaintSettings
from handdiff.models.hand_generator import build_hand_generator
from handdiff.models.hand_pipeline import HandGenerationPipeline
from handdiff.models.loading import load_controlnet, load_sd_pipeline

SIZE = 64


@pytest.fixture(scope="module")
def pipeline(tiny_zoo) -> TwoStagePipeline:
    zoo = model_locations(tiny_zoo)
    hand_sd = load_sd_pipeline(zoo["sd15"])
    # new weights from seed 7: a fresh mask head that, spread below, predicts part of each crop for these poses
    hand = HandGenerationPipeline.from_parts(
        hand_sd, build_hand_generator(hand_sd.unet, crop_size=SIZE, generator=torch.Generator().manual_seed(7))
    )
    with torch.no_grad():  # a fresh mask head outputs ~0 everywhere: spread it so that the predicted masks hold some pixels
        hand.generator.mask_head.layers[-1].weight.mul_(200.0)
        hand.generator.mask_head.layers[-1].bias.fill_(0.5)
    body = BodyOutpaintPipeline.from_parts(load_sd_pipeline(zoo["sd15"]), grow_controlnet_condition(load_controlnet(zoo["controlnet"])))
    return TwoStagePipeline(hand, body)


def settings(**changes) -> TwoStageSettings:
    return TwoStageSettings(**{"hand_steps": 2, "body_steps": 5, "hand_guidance": 2.0, "body_guidance": 2.0, **changes})


def pose(hands: str) -> np.ndarray:
    """A person in the 64-px square: ``two`` separate hands, ``touching`` (boxes intersect), ``one`` or ``none``."""
    keypoints = person_keypoints(32, 4, 56, {"left": True, "right": True}, {"left": "palm", "right": "palm"}, np.random.default_rng(0))
    keypoints[kp.HANDS] = 0
    left = np.column_stack([np.linspace(40, 48, 21), np.linspace(20, 28, 21), np.ones(21)])
    if hands in ("two", "one", "touching"):
        keypoints[kp.LEFT_HAND] = left
    if hands == "two":
        keypoints[kp.RIGHT_HAND] = left - [28, 0, 0]
    if hands == "touching":
        keypoints[kp.RIGHT_HAND] = left - [5, -3, 0]
    return keypoints


def test_crops_follow_the_training_rule():
    assert len(plan_hand_crops(pose("two"), 0.25, 5)) == 2
    touching = plan_hand_crops(pose("touching"), 0.25, 5)
    assert len(touching) == 1 and touching[0].sides == ("left", "right")
    assert plan_hand_crops(pose("none"), 0.25, 5) == []
    hand = pose("one")[kp.LEFT_HAND]
    assert plan_hand_crops(pose("one"), 0.25, 5) == plan_crops([list(kp.hand_box(hand[:, :2], hand[:, 2]))], ["left"], 0.25)


def test_a_hand_the_crop_set_would_not_use_is_not_planned_at_inference_either(pipeline, monkeypatch):
    keypoints = pose("two")
    keypoints[kp.RIGHT_HAND.start + 4 :] = 0  # the right hand: 4 present points, under the 5 of the crop rule
    masks = [encode_rle(np.ones((SIZE, SIZE), bool))] * 2
    record = {"keypoints": keypoints.reshape(-1), "hand_masks": masks}
    trained = [c["sides"] for c in make_crops(record, np.zeros((SIZE, SIZE, 3), np.uint8), SIZE, 0.25, min_hand_points=5)]
    assert trained == [["left"]]
    (result,) = pipeline([keypoints], ["a person"], [1], SIZE, settings())
    assert result.hands == 1 and result.boxes == [(p.x0, p.y0, p.side) for p in plan_hand_crops(keypoints, 0.25, 5)]
    monkeypatch.setitem(pipeline.hand.generator.config, "min_hand_points", 4)  # a model trained on a looser rule plans both
    assert pipeline([keypoints], ["a person"], [1], SIZE, settings())[0].hands == 2


def test_generation_uses_what_the_models_were_trained_with(pipeline, monkeypatch):
    """Crop margin, hand rule, heatmap sigma and canvas fill come from the models' configs."""
    import handdiff.inference.two_stage as two_stage

    sigmas = []
    condition = two_stage.hand_condition
    monkeypatch.setattr(two_stage, "hand_condition", lambda points, masks, sigma: sigmas.append(sigma) or condition(points, masks, sigma))
    for key, value in {"crop_margin": 0.6, "heatmap_sigma": 3.25}.items():
        monkeypatch.setitem(pipeline.hand.generator.config, key, value)
    monkeypatch.setattr(pipeline.body, "settings", OutpaintSettings(fill=40))
    (result,) = pipeline([pose("one")], ["a person"], [1], SIZE, settings())
    assert sigmas == [3.25]
    assert result.boxes == [(p.x0, p.y0, p.side) for p in plan_hand_crops(pose("one"), 0.6, 5)]
    assert (result.canvas[~result.hand_mask] == 40).all()


@pytest.mark.parametrize("hands, crops", [("one", 1), ("two", 2), ("touching", 1)])
def test_stage_one_hand_pixels_are_pasted_back_exactly(pipeline, hands, crops):
    (result,) = pipeline([pose(hands)], ["a person"], [7], SIZE, settings())
    assert result.hands == crops == len(result.crops) == len(result.boxes)
    assert result.image.shape == (SIZE, SIZE, 3) and result.crops[0].shape == (SIZE, SIZE, 3)
    assert result.hand_mask.any()
    assert np.array_equal(result.image[result.hand_mask], result.canvas[result.hand_mask])  # stage 1's pixels, untouched
    assert (result.canvas[~result.hand_mask] == pipeline.body.settings.config.fill).all()  # background removed: only hands on the fill
    assert len(result.mask_sizes) == 5 - 2 and result.mask_sizes[0] > result.mask_sizes[-1]  # SME shrinks


def test_a_pose_without_hands_falls_back_to_stage_two_alone(pipeline):
    (result,) = pipeline([pose("none")], ["a person"], [7], SIZE, settings())
    assert result.hands == 0 and result.crops == [] and not result.hand_mask.any()
    assert result.mask_sizes == [0, 0, 0] and result.image.shape == (SIZE, SIZE, 3)


def test_seeds_reproduce_images_bit_for_bit_and_differ_between_seeds(pipeline):
    a = pipeline([pose("two"), pose("one")], ["a person", "a dancer"], [1, 2], SIZE, settings())
    b = pipeline([pose("two"), pose("one")], ["a person", "a dancer"], [1, 2], SIZE, settings())
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    c = pipeline([pose("two")], ["a person"], [3], SIZE, settings())[0]
    assert not np.array_equal(a[0].image, c.image)


def test_latent_handoff_places_stage_one_latents_and_skips_two_vae_passes(pipeline, monkeypatch):
    calls = {"encode": 0, "decode": 0}
    for vae in (pipeline.hand.vae, pipeline.body.vae):
        for name in calls:
            original = getattr(vae, name)

            def counted(*args, _original=original, _name=name, **kwargs):
                calls[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(vae, name, counted)
    pipeline.fill_latents(127)  # cached once per pipeline, not per image
    pixel = dict(calls)
    pipeline([pose("two")], ["a person"], [5], SIZE, settings(handoff="pixel"))
    pixel = {k: calls[k] - pixel[k] for k in calls}
    before = dict(calls)
    (result,) = pipeline([pose("two")], ["a person"], [5], SIZE, settings(handoff="latent"))
    latent = {k: calls[k] - before[k] for k in calls}
    # pixel: stage-1 decode (all crops in one call), canvas encode, final decode; latent: the final decode only
    assert pixel == {"encode": 1, "decode": 2} and latent == {"encode": 0, "decode": 1}
    assert result.canvas is None and result.crops == [] and result.hand_mask.any() and result.image.shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("strategy", ["sme", "naive", "bbox"])
def test_each_strategy_hands_its_masks_and_the_exact_mask_to_stage_two(pipeline, monkeypatch, strategy):
    seen = {}
    original = pipeline.body.__call__

    def spy(self, prompts, skeleton, mask, **kwargs):
        seen.update(mask=mask.clone(), **kwargs)
        return original(prompts, skeleton, mask, **kwargs)

    monkeypatch.setattr(BodyOutpaintPipeline, "__call__", spy)
    inputs = []  # the latents each ControlNet call sees (the first half of a CFG batch)
    forward = pipeline.body.controlnet.forward
    monkeypatch.setattr(
        pipeline.body.controlnet, "forward", lambda sample, *a, **k: inputs.append(sample[:1].clone()) or forward(sample, *a, **k)
    )
    (result,) = pipeline([pose("two")], ["a person"], [5], SIZE, settings(strategy=strategy))
    exact = torch.as_tensor(result.hand_mask, dtype=torch.float32)[None, None]
    assert torch.equal(seen["mask"], exact)  # the ControlNet always gets the exact hand mask
    masks, cells = seen["blend_masks"], latent_mask(exact, (SIZE // 8, SIZE // 8))
    assert len(masks) == 3 and seen["unmasked_last_steps"] == 2 and len(inputs) == 5
    canvas = seen["canvas_latents"]
    for step, x in enumerate(inputs):  # where a step's blend mask is whole, the latents are the canvas's; free in the last two steps
        full = (masks[min(step, 2)] == 1).expand_as(x)
        assert full.any()
        assert torch.allclose(x[full], canvas[full], atol=1e-6) == (step < 3), step
    if strategy == "naive":
        assert all(torch.equal(m, cells) for m in masks)
    elif strategy == "sme":
        assert torch.equal(masks[-1], cells) and masks[0].sum() > masks[-1].sum()
    else:  # the whole crop squares, more than the hands
        squares = torch.zeros(1, 1, SIZE, SIZE)
        for x0, y0, side in result.boxes:
            paste_square(squares[0], torch.ones(1, 4, 4), x0, y0, side, binary=True)
        assert all(torch.equal(m, latent_mask(squares, (SIZE // 8, SIZE // 8))) for m in masks) and (squares >= exact).all()
        in_squares = squares[0, 0].numpy() > 0  # the canvas keeps each crop whole, its background too
        assert np.array_equal(result.image[in_squares & result.hand_mask], result.canvas[in_squares & result.hand_mask])
