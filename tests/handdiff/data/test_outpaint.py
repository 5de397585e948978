from __future__ import annotations

import numpy as np
import pytest

from handdiff.data import keypoints as kp
from handdiff.data.images import decode_image
from handdiff.data.outpaint import NotOutpaintable, make_outpaint_row
from handdiff.data.rle import decode_rle, encode_rle


def person_record(shape=(200, 300)) -> tuple[dict, np.ndarray]:
    """A person box (100, 40, 60, 120) with one 10 x 10 hand at (150, 100); the image is a gradient."""
    image = np.zeros((*shape, 3), np.uint8)
    image[..., 0] = np.arange(shape[1]) % 256
    keypoints = kp.empty_keypoints()
    keypoints[kp.BODY_INDEX["left_shoulder"]] = (150, 60, 1)
    keypoints[kp.BODY_INDEX["right_shoulder"]] = (110, 60, 1)
    keypoints[kp.LEFT_HAND] = np.column_stack([np.linspace(150, 159, 21), np.linspace(100, 109, 21), np.ones(21)])
    hand = np.zeros(shape, bool)
    hand[100:110, 150:160] = True
    record = {
        "caption": "a person",
        "keypoints": keypoints.reshape(-1).tolist(),
        "person_box": [100, 40, 60, 120],
        "hand_masks": [encode_rle(hand)],
    }
    return record, image


def test_a_row_frames_the_person_and_keeps_only_the_hands_on_the_canvas():
    record, image = person_record()
    row = make_outpaint_row(record, image, 64, margin=0.1, fill=127)
    x0, y0, side = row["box"]
    assert side == pytest.approx(144) and x0 == pytest.approx(130 - 72) and y0 == pytest.approx(28)
    framed, canvas, skeleton = decode_image(row["image"]), decode_image(row["canvas"]), decode_image(row["skeleton"])
    mask = decode_rle(row["mask"])
    assert framed.shape == canvas.shape == skeleton.shape == (64, 64, 3) and mask.shape == (64, 64)
    assert 0 < mask.sum() < 64 * 64 * 0.02  # a 10-px hand in a 144-px square
    assert (canvas[~mask] == 127).all()
    assert np.abs(canvas[mask].astype(int) - framed[mask]).max() <= 3  # the hand pixels (the image is JPEG, the canvas PNG)
    points = np.asarray(row["keypoints"]).reshape(133, 3)
    lx, ly = points[kp.BODY_INDEX["left_shoulder"], :2]
    assert (lx, ly) == pytest.approx(((150 - 58) * 64 / 144, (60 - 28) * 64 / 144), abs=0.01)
    assert skeleton.reshape(-1, 3).max(0).tolist() != [0, 0, 0]  # something drawn
    neck = points[kp.BODY_INDEX["left_shoulder"], :2] / 2 + points[kp.BODY_INDEX["right_shoulder"], :2] / 2
    assert tuple(skeleton[int(neck[1]), int(neck[0])]) == (255, 85, 0)  # the neck point's OpenPose colour


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"person_box": None}, "no body keypoints"),
        ({"hand_masks": []}, "no hand masks"),
        ({"caption": ""}, "no caption"),
        ({"keypoints": None}, "no body keypoints"),
    ],
)
def test_records_without_body_hands_or_caption_are_refused_with_the_reason(change, reason):
    record, image = person_record()
    with pytest.raises(NotOutpaintable, match=reason):
        make_outpaint_row({**record, **change}, image, 64, 0.1)
