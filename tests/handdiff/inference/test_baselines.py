"""The diffusers baselines on the tiny zoo: they run through the generator interface, batched,
and an image depends only on its condition and seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handdiff.assets.figures import person_keypoints
from handdiff.assets.tiny_zoo import model_locations
from handdiff.inference.registry import make_generator


def conditions(n: int = 2, size: int = 64) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        keypoints = person_keypoints(size / 2, 2, size * 0.9, {"left": True, "right": True}, {"left": "palm", "right": "fist"}, rng)
        out.append({"image_id": f"c{i}", "keypoints": keypoints.reshape(-1).tolist(), "caption": "a person", "size": size, "seed": 10 + i})
    return out


@pytest.mark.parametrize(
    "method, models",
    [
        ("sd15", {}),
        ("controlnet-openpose", {"controlnet": "controlnet"}),
        ("t2i-adapter-openpose", {"adapter": "t2i_adapter"}),
        ("humansd", {"humansd": "humansd"}),
        ("handrefiner", {"handrefiner": "handrefiner", "inpainting": "inpainting"}),
    ],
)
def test_each_baseline_generates_one_image_per_condition_reproducibly(tiny_zoo, method, models):
    zoo = model_locations(tiny_zoo)
    generator = make_generator(method, base=zoo["sd15"], steps=2, **{k: zoo[v] for k, v in models.items()})
    batch = generator.generate(conditions())
    assert len(batch) == 2 and all(g.image.shape == (64, 64, 3) and g.image.dtype == np.uint8 for g in batch)
    alone = generator.generate(conditions()[1:])
    assert np.abs(alone[0].image.astype(int) - batch[1].image).max() <= 1  # its own seed, whatever the batch
    assert generator.describe()["steps"] == 2 and generator.method == method


def test_humansd_refuses_a_unet_without_the_pose_channels(tiny_zoo):
    with pytest.raises(ValueError, match="8 input channels"):
        make_generator("humansd", humansd=model_locations(tiny_zoo)["sd15"])


def _spy(monkeypatch, target, name: str, calls: list, record):
    original = getattr(target, name)

    def spy(*args, **kwargs):
        calls.append(record(*args, **kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, spy)


@pytest.mark.parametrize(
    "method, models, draw",
    [
        ("controlnet-openpose", {"controlnet": "controlnet"}, "draw_skeleton"),
        ("t2i-adapter-openpose", {"adapter": "t2i_adapter"}, "draw_openpose_body"),
    ],
)
def test_pose_baselines_receive_the_drawing_their_authors_trained_on(tiny_zoo, monkeypatch, method, models, draw):
    """ControlNet 1.1: body + hands; T2I-Adapter's OpenPose adapter: the body alone, as its annotator draws it."""
    from handdiff.data import skeleton

    zoo = model_locations(tiny_zoo)
    generator = make_generator(method, base=zoo["sd15"], steps=1, **{k: zoo[v] for k, v in models.items()})
    seen = []
    _spy(monkeypatch, type(generator.pipe), "__call__", seen, lambda self, *a, **k: (np.asarray(k["image"][0]), k["guidance_scale"]))
    (condition,) = conditions(1)
    generator.generate([condition])
    image, guidance = seen[0]
    assert np.array_equal(image, getattr(skeleton, draw)(np.asarray(condition["keypoints"], np.float32).reshape(133, 3), 64))
    assert guidance == {"controlnet-openpose": 9.0, "t2i-adapter-openpose": 7.5}[method]  # the authors' demo defaults
    if method == "controlnet-openpose":
        body_only = make_generator(method, base=zoo["sd15"], steps=1, pose="body", controlnet=zoo["controlnet"])
        assert (
            body_only._condition([condition], 64)["image"][0].tobytes()
            == skeleton.draw_openpose_body(np.asarray(condition["keypoints"], np.float32).reshape(133, 3), 64).tobytes()
        )  # ControlNet 1.0's


def test_humansd_receives_its_own_pose_drawing_as_latents_beside_the_noise(tiny_zoo, monkeypatch):
    from handdiff.data.skeleton import draw_humansd_pose

    generator = make_generator("humansd", humansd=model_locations(tiny_zoo)["humansd"], steps=2)
    assert generator.guidance == 10.0  # scripts/pose2img.py --scale
    (condition,) = conditions(1)
    keypoints = np.asarray(condition["keypoints"], np.float32).reshape(133, 3)
    assert np.array_equal(np.asarray(generator.pose_images([condition], 64)[0]), draw_humansd_pose(keypoints, 64))
    encoded, inputs = [], []
    _spy(monkeypatch, generator.sd.vae, "encode", encoded, lambda pixels, *a, **k: pixels.clone())
    _spy(monkeypatch, generator.sd.unet, "forward", inputs, lambda x, *a, **k: x.clone())
    generator.generate([condition])
    expected = torch.as_tensor(draw_humansd_pose(keypoints, 64)).permute(2, 0, 1)[None].float() / 127.5 - 1
    assert torch.allclose(encoded[0], expected)
    assert len(inputs) == 2 and inputs[0].shape[1] == 8  # noisy latents + pose latents, both CFG halves
    assert torch.equal(inputs[0][0, 4:], inputs[0][1, 4:]) and torch.equal(inputs[0][0, 4:], inputs[1][0, 4:])  # the same pose latents


def test_handrefiner_mask_is_one_padded_rectangle_per_hand():
    from handdiff.inference.baselines import handrefiner_mask

    hand = np.zeros((21, 3), np.float32)
    hand[:, :2], hand[:, 2] = np.column_stack([np.linspace(100, 140, 21), np.linspace(200, 300, 21)]), 1
    mask = handrefiner_mask([hand], 512)
    ys, xs = np.nonzero(mask)
    # x: 41 px wide -> max(int(41 * 0.15), 30) = 30 each side; y: 101 px tall -> max(int(101 * 0.15), 30) = 30
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (70, 170, 170, 330) and mask.sum() == 101 * 161
    tall = hand.copy()
    tall[:, 1] = np.linspace(0, 400, 21)  # 401 px: int(401 * 0.15) = 60 > 30, and clipped at the top
    ys, _ = np.nonzero(handrefiner_mask([tall], 512))
    assert (ys.min(), ys.max()) == (0, 460)


@pytest.fixture(scope="module")
def refiner(tiny_zoo):
    zoo = model_locations(tiny_zoo)
    found: dict = {"hands": []}
    generator = make_generator(
        "handrefiner",
        base=zoo["sd15"],
        handrefiner=zoo["handrefiner"],
        inpainting=zoo["inpainting"],
        steps=2,
        handrefiner_steps=4,
        handrefiner_control_scale=0.7,
        hand_detector=lambda image: found["hands"],
    )
    return generator, found


def test_handrefiner_inpaints_as_its_authors_code_does(refiner, monkeypatch):
    """9-channel inpainting UNet input, the control scale as the ControlNet's scale, every step
    run from pure noise at guidance 9, the image's noised latents outside the mask before every step."""
    from handdiff.inference.baselines import handrefiner_mask

    generator, found = refiner
    (condition,) = conditions(1)
    hand = np.asarray(condition["keypoints"], np.float32).reshape(133, 3)[91:112]
    found["hands"] = [hand]
    unet, controlnet, noised, calls = [], [], [], []
    pipe = generator.refiner
    _spy(monkeypatch, pipe.unet, "forward", unet, lambda x, *a, **k: x.clone())
    _spy(monkeypatch, pipe.controlnet, "forward", controlnet, lambda *a, **k: k["conditioning_scale"])
    _spy(monkeypatch, type(pipe), "__call__", calls, lambda self, *a, **k: k)
    original_add_noise = pipe.scheduler.add_noise
    monkeypatch.setattr(pipe.scheduler, "add_noise", lambda *a: noised.append(original_add_noise(*a)) or noised[-1])
    sd_image = make_generator("sd15", base=generator.settings["base"], steps=2).generate([condition])[0].image
    out = generator.generate([condition])[0]
    assert out.details["refined_hands"] == 1 and not np.array_equal(out.image, sd_image)
    assert len(unet) == 4 and all(x.shape[1] == 9 for x in unet)  # every step, noisy latents + mask + masked-image latents
    assert controlnet == [0.7] * 4  # HandRefiner's --strength is the ControlNet's scale, not an img2img strength
    assert calls[0]["guidance_scale"] == 9.0 and calls[0]["strength"] == 1.0  # from pure noise, handrefiner.py's scale
    mask = torch.nn.functional.interpolate(torch.as_tensor(handrefiner_mask([hand], 64), dtype=torch.float32)[None, None], size=(8, 8))
    assert mask.any() and not mask.all()
    for x in unet:
        assert torch.equal(x[:1, 4:5], mask) and torch.equal(x[1:, 4:5], mask)  # the mask channel, in both CFG halves
    outside = (mask == 0).expand(1, 4, 8, 8)
    for step, (x, kept) in enumerate(zip(unet, noised, strict=True)):  # the image's latents noised to each step, outside the mask
        assert torch.allclose(x[:1, :4][outside], kept[outside]), step


def test_handrefiner_leaves_an_image_without_hands_as_sd_drew_it(refiner):
    generator, found = refiner
    found["hands"] = []
    (condition,) = conditions(1)
    out = generator.generate([condition])[0]
    sd_image = make_generator("sd15", base=generator.settings["base"], steps=2).generate([condition])[0].image
    assert out.details["refined_hands"] == 0 and np.array_equal(out.image, sd_image)


def test_handrefiner_refuses_a_unet_without_the_inpainting_channels(tiny_zoo):
    zoo = model_locations(tiny_zoo)
    with pytest.raises(ValueError, match="9 input channels"):
        make_generator(
            "handrefiner", base=zoo["sd15"], handrefiner=zoo["handrefiner"], inpainting=zoo["sd15"], hand_detector=lambda image: []
        )


def _sd_output(folder, images: dict[str, np.ndarray], method: str, settings: dict) -> str:
    """A generate output as ``generate`` writes one: PNGs under images/, records naming the method and its settings."""
    import json

    import pyarrow as pa

    from handdiff import storage
    from handdiff.data.images import encode_image
    from handdiff.data.parts import write_part

    for image_id, image in images.items():
        storage.write_bytes(storage.join(str(folder), "images", f"{image_id}.png"), encode_image(image, "PNG"))
    models = json.dumps(settings, sort_keys=True, default=str)
    write_part(
        pa.table({"image_id": list(images), "method": [method] * len(images), "models": [models] * len(images)}), f"{folder}/records"
    )
    return str(folder)


def test_handrefiner_refines_the_sd15_images_it_is_given_and_draws_only_the_missing_ones(tiny_zoo, tmp_path):
    zoo = model_locations(tiny_zoo)
    options = dict(base=zoo["sd15"], handrefiner=zoo["handrefiner"], inpainting=zoo["inpainting"], steps=2, hand_detector=lambda image: [])
    first, second = conditions(2)
    sd = make_generator("sd15", base=zoo["sd15"], steps=2)
    given = 255 - sd.generate([first])[0].image  # not what SD draws: only read from the folder could give it
    folder = _sd_output(tmp_path / "sd15", {first["image_id"]: given}, "sd15", sd.describe())
    out = make_generator("handrefiner", sd_images=folder, **options).generate([first, second])
    assert np.array_equal(out[0].image, given) and out[0].details["sd_image"] == "reused"  # no hands found: returned as given
    assert np.array_equal(out[1].image, sd.generate([second])[0].image) and out[1].details["sd_image"] == "drawn"
    for method, settings in (("controlnet-openpose", sd.describe()), ("sd15", {**sd.describe(), "steps": 3})):
        other = _sd_output(tmp_path / f"{method}-{settings['steps']}", {first["image_id"]: given}, method, settings)
        with pytest.raises(ValueError, match="HandRefiner refines SD 1.5's images drawn with"):
            make_generator("handrefiner", sd_images=other, **options)
