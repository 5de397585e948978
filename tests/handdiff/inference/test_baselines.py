"""The diffusers baselines on the tiny zoo: they run through the generator interface, batched,
and an image depends only on its condition and seed."""

from __future__ import annotations

import numpy as np
import pytest

from handdiff.assets.figures import person_keypoints
from handdiff.assets.tiny_zoo import model_locations
from handdiff.inference.generators import generators, make_generator


def conditions(n: int = 2, size: int = 64) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        keypoints = person_keypoints(size / 2, 2, size * 0.9, {"left": True, "right": True}, {"left": "palm", "right": "fist"}, rng)
        out.append({"image_id": f"c{i}", "keypoints": keypoints.reshape(-1).tolist(), "caption": "a person", "size": size, "seed": 10 + i})
    return out


@pytest.mark.parametrize("method, models", [("sd15", {}), ("controlnet-openpose", {"controlnet": "controlnet"}),
                                            ("t2i-adapter-openpose", {"adapter": "t2i_adapter"}), ("humansd", {"humansd": "humansd"}),
                                            ("handrefiner", {"handrefiner": "handrefiner"})])  # fmt: skip
def test_each_baseline_generates_one_image_per_condition_reproducibly(tiny_zoo, method, models):
    zoo = model_locations(tiny_zoo)
    generator = make_generator(method, base=zoo["sd15"], steps=2, **{k: zoo[v] for k, v in models.items()})
    batch = generator.generate(conditions())
    assert len(batch) == 2 and all(g.image.shape == (64, 64, 3) and g.image.dtype == np.uint8 for g in batch)
    alone = generator.generate(conditions()[1:])
    assert np.abs(alone[0].image.astype(int) - batch[1].image).max() <= 1  # its own seed, whatever the batch
    assert generator.describe()["steps"] == 2 and generator.method == method


def test_every_method_is_registered():
    assert set(generators()) == {"handdiff", "oracle", "sd15", "controlnet-openpose", "t2i-adapter-openpose", "humansd", "handrefiner"}
    with pytest.raises(ValueError, match="unknown method 'dalle'"):
        make_generator("dalle")


def test_humansd_refuses_a_unet_without_the_pose_channels(tiny_zoo):
    with pytest.raises(ValueError, match="8 input channels"):
        make_generator("humansd", humansd=model_locations(tiny_zoo)["sd15"])


def test_handrefiner_changes_only_the_hand_regions(tiny_zoo):
    from handdiff.inference.baselines import hand_regions

    zoo = model_locations(tiny_zoo)
    refiner = make_generator("handrefiner", base=zoo["sd15"], handrefiner=zoo["handrefiner"], steps=2)
    plain = make_generator("sd15", base=zoo["sd15"], steps=2)
    (condition,) = conditions(1)
    refined, drawn = refiner.generate([condition])[0].image, plain.generate([condition])[0].image
    regions = np.asarray(hand_regions(np.asarray(condition["keypoints"], np.float32).reshape(133, 3), 64)) > 0
    assert regions.any() and not regions.all()
    assert np.array_equal(refined[~regions], drawn[~regions])  # the SD image, untouched outside the hands
    assert not np.array_equal(refined[regions], drawn[regions])  # the hands inpainted again
