"""Small sample datasets in the exact native layouts of HaGRID, InterHand2.6M,
Re:InterHand and LAION-Human (SPEC 3.1), written to any URI.

Images are real photos that registry packages ship (scikit-image's astronaut and
cameraman, matplotlib's Grace Hopper) and synthetic scenes drawn to match their
annotations (``handdiff.assets.figures``). Each dataset also gets deliberate bad
entries; ``manifest.json`` lists every one with the error expected downstream:

    {"dataset": "hagrid", "image_id": "hagrid/palm/....jpg", "case": "corrupt_jpeg",
     "stage": "decode", "reason": "cannot decode image"}

``stage`` is where the error is raised (``read``: the reader; ``decode``: image
decoding) and ``reason`` a substring of its message; ``stage: null`` marks inputs
that must be converted, not rejected (grayscale, RGBA).
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import skimage.data
from PIL import Image

from handdiff import storage
from handdiff.assets import figures
from handdiff.data import keypoints as kp
from handdiff.data.camera import look_at, project, world_to_camera
from handdiff.data.images import encode_image

HAGRID_GESTURES = ("palm", "fist", "peace", "like")
INTERHAND_SEQUENCES = {"0000_neutral_relaxed": "right", "0051_fist_interaction": "interacting"}
INTERHAND_CAMERAS = ("400262", "400263", "400264")
REINTERHAND_TEST_CAPTURE = "m--20221215--0949--RNS217--pilot--ProjectGoliathScript--Hands--two-hands"
REINTERHAND_TRAIN_CAPTURE = "m--20221111--1000--SMP001--pilot--ProjectGoliath--Hands--two-hands"
REINTERHAND_CAMERAS = ("400262", "400263", "400264")
HAND_LENGTH_MM = 185.0


@dataclass
class ManifestEntry:
    dataset: str
    image_id: str
    case: str
    stage: str | None
    reason: str | None


class _Writer:
    """Writes files under one dataset root (any URI) and collects manifest entries."""

    def __init__(self, root: str, dataset: str, seed: int):
        self.root, self.dataset = root, dataset
        self.rng = np.random.default_rng(seed)
        self.manifest: list[ManifestEntry] = []
        self.files = 0

    def put(self, rel: str, data: bytes) -> None:
        storage.write_bytes(storage.join(self.root, rel), data)
        self.files += 1

    def put_json(self, rel: str, obj) -> None:
        # allow_nan: the NaN cases are written as the bare NaN tokens real files contain
        self.put(rel, json.dumps(obj, indent=1, allow_nan=True).encode())

    def bad(self, rel_image: str, case: str, stage: str | None, reason: str | None) -> None:
        self.manifest.append(ManifestEntry(self.dataset, f"{self.dataset}/{rel_image}", case, stage, reason))

    def uid(self) -> str:
        return str(uuid.UUID(bytes=self.rng.bytes(16), version=4))


def corrupt_jpeg(image: np.ndarray) -> bytes:
    """``image`` as a broken download leaves a JPEG: headers intact (its size can be
    read), scan data cut off a third of the way. (Scrambled scan data is no test:
    libjpeg decodes noise into noise without complaint.)"""
    good = encode_image(image)
    sos = good.index(b"\xff\xda")  # start of scan: everything after it is image data
    return good[: sos + (len(good) - sos) // 3]


def truncated_png(image: np.ndarray) -> bytes:
    data = encode_image(image, "PNG")
    return data[: len(data) // 2]


def rgba_png(image: np.ndarray) -> bytes:
    alpha = np.full(image.shape[:2], 255, np.uint8)
    alpha[: image.shape[0] // 4] = 0  # a transparent band, as renders have
    return encode_image(np.dstack([image, alpha]), "PNG")


# ---------------------------------------------------------------------------- HaGRID


def _hagrid_scene(w: _Writer, gesture: str, width: int = 288, height: int = 384):
    """One person showing ``gesture`` with the gesturing hand in frame.

    Returns the image, its HaGRID v2-1M annotation and the side of the gesturing hand.
    """
    rng = w.rng
    gesture_side = str(rng.choice(kp.SIDES))
    two_handed = rng.random() < 0.25
    other = "left" if gesture_side == "right" else "right"
    raised = {gesture_side: True, other: two_handed}
    gestures = {gesture_side: gesture, other: gesture if two_handed else "no_gesture"}
    while True:  # HaGRID always shows the gesturing hand whole
        person_h = height * rng.uniform(1.25, 1.5)
        keypoints = figures.person_keypoints(width / 2 + rng.uniform(-20, 20), height * 0.05, person_h, raised, gestures, rng)
        keypoints = figures.mark_outside(keypoints, width, height)
        if keypoints[kp.hand_slice(gesture_side), 2].all():
            break
    image = figures.background(height, width, rng)
    figures.draw_person(image, keypoints, rng)
    boxes, labels, landmarks = [], [], []
    for side in (gesture_side, other):
        hand = keypoints[kp.hand_slice(side)]
        if (hand[:, 2] == 0).any():
            continue  # the hand is (partly) out of the frame: HaGRID only boxes visible hands
        x, y, bw, bh = kp.hand_box(hand[:, :2])
        m = 0.15 * max(bw, bh)
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(width, x + bw + m), min(height, y + bh + m)
        boxes.append([x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height])
        labels.append(gestures[side])
        landmarks.append((hand[:, :2] / [width, height]).tolist())
    united = None
    if two_handed and len(boxes) == 2:
        b = np.array(boxes)
        x0, y0 = b[:, :2].min(0)
        x1, y1 = (b[:, :2] + b[:, 2:]).max(0)
        united = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
    annotation = {
        "bboxes": boxes,
        "labels": labels,
        "united_bbox": [united],
        "united_label": [gesture if united else None],
        "user_id": rng.bytes(16).hex(),
        "hand_landmarks": landmarks,
        "meta": {"age": [float(rng.uniform(18, 70))], "gender": [str(rng.choice(["female", "male"]))], "race": ["unknown"]},
    }
    return image, annotation, gesture_side


def write_hagrid(root: str, seed: int = 1, per_gesture: dict[str, int] | None = None) -> _Writer:
    """HaGRID v2 layout: ``<root>/hagrid_dataset/<gesture>/<id>.jpg`` and
    ``<root>/annotations/<split>/<gesture>.json`` (v2-1M annotation fields)."""
    w = _Writer(root, "hagrid", seed)
    per_gesture = per_gesture or {"train": 4, "test": 3}
    annotations: dict[tuple[str, str], dict] = {}
    for split, n in per_gesture.items():
        for gesture in HAGRID_GESTURES:
            ann = annotations.setdefault((split, gesture), {})
            for _ in range(n):
                image, entry, _ = _hagrid_scene(w, gesture)
                image_key = w.uid()
                w.put(f"hagrid_dataset/{gesture}/{image_key}.jpg", encode_image(image))
                ann[image_key] = entry

    def add_bad(gesture: str, case: str, stage: str | None, reason: str | None, encode=encode_image, mutate=None) -> None:
        """One bad entry in the train split; ``encode`` turns its scene into file bytes (None: no file)."""
        image, entry, _ = _hagrid_scene(w, gesture)
        image_key = w.uid()
        rel = f"{gesture}/{image_key}.jpg"
        if encode is not None:
            w.put(f"hagrid_dataset/{rel}", encode(image))
        if mutate:
            mutate(entry)
        annotations[("train", gesture)][image_key] = entry
        w.bad(rel, case, stage, reason)

    add_bad("palm", "corrupt_jpeg", "decode", "cannot decode image", corrupt_jpeg)
    add_bad("palm", "missing_image", "read", "image file not found", None)
    add_bad("fist", "missing_field", "read", "missing field 'labels'", mutate=lambda e: e.pop("labels"))
    add_bad("fist", "malformed_box", "read", "expected [x, y, w, h]", mutate=lambda e: e["bboxes"][0].pop())
    add_bad("peace", "zero_size_box", "read", "zero-size box", mutate=lambda e: e["bboxes"][0].__setitem__(2, 0.0))
    add_bad(
        "peace", "nan_keypoints", "read", "non-finite keypoints", mutate=lambda e: e["hand_landmarks"][0][3].__setitem__(0, float("nan"))
    )
    add_bad("like", "grayscale", None, None, lambda im: encode_image(np.asarray(Image.fromarray(im).convert("L"))))
    add_bad("like", "rgba", None, None, rgba_png)  # a PNG saved as .jpg, as scrapers do
    for (split, gesture), ann in annotations.items():
        w.put_json(f"annotations/{split}/{gesture}.json", ann)
    w.put("annotations/test/ok.json", b'{"0a1b2c3d-0000-4000-8000-000000000000": {"bboxes": [[0.1, 0.2')
    w.bad("annotations/test/ok.json", "malformed_json", "read", "malformed JSON")
    return w


def write_hagrid_v1(root: str, seed: int = 2) -> _Writer:
    """HaGRID v1 layout: ``<root>/<gesture>/<id>.jpg``, ``<root>/ann/<gesture>.json`` with
    ``landmarks``, ``leading_hand`` and ``leading_conf``."""
    w = _Writer(root, "hagrid", seed)
    for gesture in ("palm", "peace"):
        ann = {}
        for _ in range(3):
            image, entry, side = _hagrid_scene(w, gesture)
            image_key = w.uid()
            w.put(f"images/{gesture}/{image_key}.jpg", encode_image(image))
            ann[image_key] = {
                "bboxes": entry["bboxes"],
                "labels": entry["labels"],
                "landmarks": entry["hand_landmarks"],
                "leading_hand": side,
                "leading_conf": 1.0,
                "user_id": entry["user_id"],
            }
        w.put_json(f"ann/{gesture}.json", ann)
    return w


# ---------------------------------------------------------------------- InterHand2.6M


def _two_hands_world(rng: np.random.Generator, hand_type: str) -> dict[str, np.ndarray]:
    """Canonical-order (21, 3) world joints in mm per hand side, around the origin."""
    hands = {}
    for side, offset in (("right", -70.0), ("left", 70.0)):
        if hand_type == "interacting":
            offset *= 0.5
        local = figures.hand_model(figures.GESTURE_CURLS[str(rng.choice(list(figures.GESTURE_CURLS)))], rng.uniform(0, 0.2))
        if side == "left":
            local = local * [-1, 1, 1]  # a left hand is the mirror image of a right one
        # fingers up (-y in world, which is the cameras' "up"), palm toward the cameras (-z)
        to_world = figures.random_rotation(rng, 0.5) @ np.diag([1.0, -1.0, 1.0])
        hands[side] = (local * HAND_LENGTH_MM) @ to_world.T + [offset, 60.0, 0.0] + rng.normal(0, 10, 3)
    return hands


def _draw_projected_hands(image: np.ndarray, hands_px: dict[str, np.ndarray], depth: dict[str, float], skin, mask=None) -> None:
    for side in sorted(hands_px, key=lambda s: -depth[s]):  # far hand first
        points = hands_px[side]
        forearm = points[0] + 1.6 * (points[0] - points[9])
        figures.draw_forearm(image, points[0], forearm, 0.9 * figures.hand_outline_width(points) * 2.2, tuple(int(c) for c in skin))
        if mask is not None:
            figures.draw_forearm(mask, points[0], forearm, 0.9 * figures.hand_outline_width(points) * 2.2, 255)
        figures.draw_hand(image, points, skin, mask)


def _camera_ring(rng: np.random.Generator, names: tuple[str, ...], target: np.ndarray, width: int, height: int):
    """Cameras ~0.9 m from ``target`` on an arc in front of the hands: name -> (R, campos, focal, princpt)."""
    cams = {}
    for i, name in enumerate(names):
        angle = np.radians(-25 + 25 * i + rng.uniform(-3, 3))
        campos = target + np.array([900 * np.sin(angle), -150 + rng.uniform(-40, 40), -900 * np.cos(angle)])
        focal = np.array([1.1, 1.1]) * max(width, height) * rng.uniform(1.4, 1.6)
        princpt = np.array([width / 2, height / 2]) + rng.normal(0, 2, 2)
        cams[name] = (look_at(campos, target), campos, focal, princpt)
    return cams


def write_interhand(root: str, seed: int = 3) -> _Writer:
    """InterHand2.6M layout: ``annotations/<split>/InterHand2.6M_<split>_{data,camera,joint_3d}.json``
    and ``images/<split>/Capture<c>/<seq_name>/cam<cam>/image<frame>.jpg``."""
    w = _Writer(root, "interhand26m", seed)
    rng = w.rng
    width, height = 334, 512
    hand_order = {"right": slice(0, 21), "left": slice(21, 42)}
    to_interhand = np.argsort(kp.INTERHAND_TO_HAND)  # canonical hand order -> InterHand's tip-first order
    for split, capture in (("train", 0), ("test", 1)):
        images, annotations, joints, cameras = [], [], {}, {}
        cams = _camera_ring(rng, INTERHAND_CAMERAS, np.array([0.0, 60.0, 0.0]), width, height)
        cameras[str(capture)] = {
            "campos": {c: v[1].tolist() for c, v in cams.items()},
            "camrot": {c: v[0].tolist() for c, v in cams.items()},
            "focal": {c: v[2].tolist() for c, v in cams.items()},
            "princpt": {c: v[3].tolist() for c, v in cams.items()},
        }
        frame_joints = {}
        frame_no = 0
        for seq, hand_type in INTERHAND_SEQUENCES.items():
            for _ in range(2):
                frame_no += 6
                hands = _two_hands_world(rng, hand_type)
                world = np.zeros((42, 3))
                valid = np.zeros(42)
                for side, sl in hand_order.items():
                    world[sl] = hands[side][to_interhand]
                    valid[sl] = 1.0 if hand_type == "interacting" or side == hand_type else 0.0
                frame_joints[frame_no] = (seq, hand_type, world, valid)
        for frame, (seq, hand_type, world, valid) in frame_joints.items():
            joints.setdefault(str(capture), {})[str(frame)] = {
                "world_coord": world.tolist(),
                "joint_valid": valid.tolist(),
                "hand_type": hand_type,
                "hand_type_valid": 1,
            }
            skin = figures.SKIN_TONES[rng.integers(len(figures.SKIN_TONES))]
            for cam in INTERHAND_CAMERAS:
                R, campos, focal, princpt = cams[cam]
                cam_pts = world_to_camera(world, R, -R @ campos)
                uv, _ = project(cam_pts, focal, princpt)
                image = np.full((height, width, 3), rng.integers(20, 60), np.uint8)
                hands_px = {s: uv[sl][kp.INTERHAND_TO_HAND] for s, sl in hand_order.items() if valid[sl].all()}
                depth = {s: cam_pts[sl, 2].mean() for s, sl in hand_order.items()}
                _draw_projected_hands(image, hands_px, depth, skin)
                file_name = f"Capture{capture}/{seq}/cam{cam}/image{frame:04d}.jpg"
                image_id = len(images)
                images.append(
                    {
                        "id": image_id,
                        "file_name": file_name,
                        "width": width,
                        "height": height,
                        "capture": capture,
                        "subject": capture,
                        "seq_name": seq,
                        "camera": cam,
                        "frame_idx": frame,
                    }
                )
                visible = uv[valid > 0]
                x0, y0 = visible.min(0)
                x1, y1 = visible.max(0)
                annotations.append(
                    {
                        "id": image_id,
                        "image_id": image_id,
                        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                        "joint_valid": [[float(v)] for v in valid],
                        "hand_type": hand_type,
                        "hand_type_valid": 1,
                    }
                )
                w.put(f"images/{split}/{file_name}", encode_image(image))
        if split == "train":
            _interhand_bad(w, images, annotations, joints, capture, split, width, height)
        prefix = f"annotations/{split}/InterHand2.6M_{split}"
        w.put_json(f"{prefix}_data.json", {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "hand"}]})
        w.put_json(f"{prefix}_camera.json", cameras)
        w.put_json(f"{prefix}_joint_3d.json", joints)
    w.put(
        "captions.csv",
        b"sequence,caption\n0000_neutral_relaxed,a close-up of a relaxed right hand of a young man with light skin\n"
        b"0051_fist_interaction,two hands of a woman with medium skin tone pressing fists together\n",
    )
    return w


def _interhand_bad(w: _Writer, images: list, annotations: list, joints: dict, capture: int, split: str, width: int, height: int) -> None:
    """Bad entries that reuse a good image's frame (and copy its annotation)."""
    rng = w.rng
    template = images[0]

    def add(case: str, stage: str | None, reason: str | None, data: bytes | None, frame=None, camera=None, mutate=None) -> None:
        image = dict(template, id=len(images), frame_idx=template["frame_idx"] if frame is None else frame)
        if camera:
            image["camera"] = camera
        image["file_name"] = f"Capture{capture}/{image['seq_name']}/cam{image['camera']}/image{image['frame_idx']:04d}_{case}.jpg"
        ann = json.loads(json.dumps(annotations[0]))
        ann.update(id=image["id"], image_id=image["id"])
        if mutate:
            mutate(ann)
        images.append(image)
        annotations.append(ann)
        if data is not None:
            w.put(f"images/{split}/{image['file_name']}", data)
        w.bad(f"images/{split}/{image['file_name']}", case, stage, reason)

    scene = encode_image(np.full((height, width, 3), 40, np.uint8))
    add("corrupt_jpeg", "decode", "cannot decode image", corrupt_jpeg(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)))
    add("missing_image", "decode", "image file not found", None)
    add("malformed_joint_valid", "read", "joint_valid has 41 entries, expected 42", scene, mutate=lambda a: a["joint_valid"].pop())
    add("zero_size_box", "read", "zero-size box", scene, mutate=lambda a: a["bbox"].__setitem__(2, 0.0))
    add("missing_camera", "read", "no camera parameters", scene, camera="400999")
    nan_frame = 999
    bad_joints = json.loads(json.dumps(joints[str(capture)][str(template["frame_idx"])]))
    bad_joints["world_coord"][5][2] = float("nan")
    joints[str(capture)][str(nan_frame)] = bad_joints
    add("nan_keypoints", "read", "non-finite 3D joints", scene, frame=nan_frame)
    gray = encode_image(np.full((height, width), 90, np.uint8))
    add("grayscale", None, None, gray)


# ----------------------------------------------------------------------- Re:InterHand


def write_reinterhand(root: str, seed: int = 4) -> _Writer:
    """Re:InterHand layout, per capture: ``Mugsy_cameras/cam_params.json``,
    ``Mugsy_cameras/envmap_per_frame/{images,masks}/<cam>/%06d.png`` and
    ``orig_fits/{right,left}/Keypoints/keypoint-%06d.json`` (24 world joints, mm)."""
    w = _Writer(root, "reinterhand", seed)
    rng = w.rng
    size = 384
    to_reinterhand = {j: i for i, j in enumerate(kp.REINTERHAND_TO_HAND)}  # 24-slot index -> canonical index
    for capture in (REINTERHAND_TRAIN_CAPTURE, REINTERHAND_TEST_CAPTURE):
        cams = _camera_ring(rng, REINTERHAND_CAMERAS, np.array([0.0, 60.0, 0.0]), size, size)
        params = {
            c: {"R": R.tolist(), "t": (-R @ campos).tolist(), "focal": f.tolist(), "princpt": p.tolist()}
            for c, (R, campos, f, p) in cams.items()
        }
        w.put_json(f"{capture}/Mugsy_cameras/cam_params.json", params)
        for frame in (100, 105, 110):
            hands = _two_hands_world(rng, "interacting")
            for side, joints21 in hands.items():
                full = np.zeros((24, 3))
                for slot in range(24):
                    if slot in to_reinterhand:
                        full[slot] = joints21[to_reinterhand[slot]]
                full[1] = joints21[0] + 0.5 * (joints21[1] - joints21[0])  # Thumb_0: along the thumb metacarpal
                full[18] = joints21[0] + 0.5 * (joints21[17] - joints21[0])  # Pinky_0
                full[23] = joints21[0] + 0.4 * (joints21[0] - joints21[9])  # forearm stub
                w.put_json(f"{capture}/orig_fits/{side}/Keypoints/keypoint-{frame:06d}.json", full.tolist())
            skin = figures.SKIN_TONES[rng.integers(len(figures.SKIN_TONES))]
            for cam, (R, campos, focal, princpt) in cams.items():
                image = np.full((size, size, 3), rng.integers(120, 200), np.uint8)
                mask = np.zeros((size, size), np.uint8)
                hands_px, depth = {}, {}
                for side, joints21 in hands.items():
                    cam_pts = world_to_camera(joints21, R, -R @ campos)
                    hands_px[side] = project(cam_pts, focal, princpt)[0]
                    depth[side] = cam_pts[:, 2].mean()
                _draw_projected_hands(image, hands_px, depth, skin, mask)
                base = f"{capture}/Mugsy_cameras/envmap_per_frame"
                if capture == REINTERHAND_TRAIN_CAPTURE and cam == REINTERHAND_CAMERAS[0] and frame == 105:
                    w.put(f"{base}/images/{cam}/{frame:06d}.png", rgba_png(image))
                    w.bad(f"{base}/images/{cam}/{frame:06d}.png", "rgba", None, None)
                else:
                    w.put(f"{base}/images/{cam}/{frame:06d}.png", encode_image(image, "PNG"))
                if cam != REINTERHAND_CAMERAS[-1]:  # one camera without release masks: SAM fills in
                    w.put(f"{base}/masks/{cam}/{frame:06d}.png", encode_image(mask, "PNG"))
    _reinterhand_bad(w, size)
    w.put_json(
        "captions.json",
        {
            REINTERHAND_TRAIN_CAPTURE: "two hands of a man with dark skin, fingers interlaced",
            REINTERHAND_TEST_CAPTURE: "two hands of a woman with fair skin and short nails",
        },
    )
    return w


def _reinterhand_bad(w: _Writer, size: int) -> None:
    capture, cam = REINTERHAND_TRAIN_CAPTURE, REINTERHAND_CAMERAS[0]
    base = f"{capture}/Mugsy_cameras/envmap_per_frame/images"
    image = np.full((size, size, 3), 150, np.uint8)
    keypoints = json.loads(storage.read_text(storage.join(w.root, f"{capture}/orig_fits/right/Keypoints/keypoint-000100.json")))

    def frame_with(frame: int, case: str, stage, reason, data: bytes, right=None, left=None, camera=cam) -> None:
        w.put(f"{base}/{camera}/{frame:06d}.png", data)
        for side, content in (("right", right), ("left", left)):
            if content is not None:
                w.put(f"{capture}/orig_fits/{side}/Keypoints/keypoint-{frame:06d}.json", content)
        w.bad(f"{base}/{camera}/{frame:06d}.png", case, stage, reason)

    good = json.dumps(keypoints).encode()
    frame_with(200, "truncated_png", "decode", "cannot decode image", truncated_png(image), good, good)
    frame_with(201, "missing_keypoint_file", "read", "keypoint file not found", encode_image(image, "PNG"), good, None)
    frame_with(202, "malformed_json", "read", "malformed JSON", encode_image(image, "PNG"), good, b"[[1.0, 2.0")
    nan = json.loads(good)
    nan[7][0] = float("nan")
    frame_with(203, "nan_keypoints", "read", "non-finite keypoints", encode_image(image, "PNG"), good, json.dumps(nan).encode())
    frame_with(
        204, "wrong_joint_count", "read", "expected 24 joints", encode_image(image, "PNG"), good, json.dumps(keypoints[:23]).encode()
    )
    frame_with(100, "missing_camera", "read", "no camera parameters", encode_image(image, "PNG"), camera="400999")


# ----------------------------------------------------------------------- LAION-Human

# Body keypoints of the real photos, measured by eye on the images (pixels; COCO order,
# score 0 where not visible). Approximate: LAION-Human's poses are replaced by ours.
_PHOTO_POSES = {
    "astronaut": {
        "nose": (222, 138),
        "left_eye": (245, 113),
        "right_eye": (200, 113),
        "left_ear": (292, 128),
        "right_ear": (160, 128),
        "left_shoulder": (340, 300),
        "right_shoulder": (100, 300),
    },
    "grace_hopper": {
        "nose": (265, 240),
        "left_eye": (308, 195),
        "right_eye": (225, 195),
        "left_ear": (360, 215),
        "right_ear": (165, 215),
        "left_shoulder": (440, 410),
        "right_shoulder": (90, 420),
    },
    "camera": {
        "nose": (250, 165),
        "right_eye": (238, 150),
        "right_ear": (188, 140),
        "right_shoulder": (140, 190),
        "right_elbow": (185, 230),
        "left_wrist": (310, 195),
        "right_wrist": (215, 225),
    },
}


def _photo(name: str) -> np.ndarray:
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return np.asarray(Image.open(f).convert("RGB"))
    return getattr(skimage.data, name)()


def _coco17(points: dict[str, tuple[float, float]]) -> np.ndarray:
    out = np.zeros((17, 3), np.float32)
    for name, (x, y) in points.items():
        out[kp.BODY_INDEX[name]] = (x, y, 0.9)
    return out


def _npz(poses: list[np.ndarray], extra: list[dict] = ()) -> bytes:
    buf = io.BytesIO()
    detections = [{"keypoints": p} for p in poses] + list(extra)
    people = np.empty(len(detections), dtype=object)  # a 1-D object array of dicts, as HumanSD's files hold
    people[:] = detections
    np.savez(buf, people)
    return buf.getvalue()


def write_laion_human(root: str, seed: int = 5) -> _Writer:
    """LAION-Human layout: img2dataset shards ``images/<shard>/<key>.jpg`` with
    ``images/<shard>.parquet`` (url, key, caption, status, width, height), poses
    ``pose/<shard>/<key>.npz`` (``arr_0``: per-person dicts with 17x3 ``keypoints``)
    and ``mapping_file_training.json`` ({key: {img_path, pose_path, prompt}})."""
    w = _Writer(root, "laion_human", seed)
    rng = w.rng
    shard = "00000"
    rows, mapping = [], {}
    key_no = iter(range(10**6))

    def add(
        image: np.ndarray | None,
        poses: list[np.ndarray] | None,
        prompt: str,
        data: bytes | None = None,
        entry_override=None,
        weak: list[dict] = (),
    ) -> str:
        key = f"{next(key_no):09d}"
        img_rel, pose_rel = f"images/{shard}/{key}.jpg", f"pose/{shard}/{key}.npz"
        if data is None and image is not None:
            data = encode_image(image)
        if data is not None:
            w.put(img_rel, data)
        if poses is not None:
            w.put(pose_rel, _npz(poses, weak))
        h, wd = image.shape[:2] if image is not None else (0, 0)
        rows.append(
            {"url": f"https://example.com/laion/{key}.jpg", "key": key, "caption": prompt, "status": "success", "width": wd, "height": h}
        )
        mapping[key] = entry_override or {"img_path": img_rel, "pose_path": pose_rel, "prompt": prompt}
        return img_rel

    for name in ("astronaut", "grace_hopper"):
        add(_photo(name), [_coco17(_PHOTO_POSES[name])], f"portrait photo {name.replace('_', ' ')}")
    camera = _photo("camera")
    rel = add(camera, [_coco17(_PHOTO_POSES["camera"])], "a photographer with a camera on a tripod")
    w.bad(rel, "grayscale", None, None)
    for i in range(7):  # single synthetic people, full body
        width, height = 320, 448
        gestures = {s: str(rng.choice(list(figures.GESTURE_CURLS))) for s in kp.SIDES}
        raised = {s: bool(rng.random() < 0.6) for s in kp.SIDES}
        keypoints = figures.person_keypoints(width / 2 + rng.uniform(-30, 30), 20, height * 0.85, raised, gestures, rng)
        image = figures.background(height, width, rng)
        figures.draw_person(image, keypoints, rng)
        # the first also holds a weak extra detection (score 0.05), as real HumanSD files do: still one person
        # (its own generator, so that every later sample stays as it was)
        weak = np.random.default_rng(seed + 1000)
        ghost = (
            [
                {
                    "keypoints": np.column_stack([weak.uniform(0, width, 17), weak.uniform(0, height, 17), np.full(17, 0.05)]).astype(
                        np.float32
                    ),
                    "score": 0.05,
                }
            ]
            if i == 0
            else []
        )
        add(image, [keypoints[:17]], f"a person in a {['red', 'blue', 'green'][i % 3]} shirt raising a hand", weak=ghost)
    for _ in range(2):  # two people: filtered out downstream
        width, height = 448, 320
        image = figures.background(height, width, rng)
        poses = []
        for cx in (width * 0.3, width * 0.7):
            keypoints = figures.person_keypoints(
                cx, 15, height * 0.9, {"left": True, "right": False}, {"left": "palm", "right": "no_gesture"}, rng
            )
            figures.draw_person(image, keypoints, rng)
            poses.append(keypoints[:17])
        add(image, poses, "two friends waving")
    add(figures.background(320, 320, rng), [], "an empty room")  # no person: filtered out downstream

    broken = figures.background(320, 320, rng)
    rel = add(broken, [np.zeros((17, 3), np.float32)], "broken download", data=corrupt_jpeg(broken))
    w.bad(rel, "corrupt_jpeg", "decode", "cannot decode image")
    key = f"{next(key_no):09d}"
    mapping[key] = {"img_path": f"images/{shard}/{key}.jpg", "pose_path": f"pose/{shard}/{key}.npz", "prompt": "lost file"}
    w.put(f"pose/{shard}/{key}.npz", _npz([np.zeros((17, 3), np.float32)]))
    w.bad(f"images/{shard}/{key}.jpg", "missing_image", "decode", "image file not found")
    image = figures.background(128, 128, rng)
    rel = add(image, None, "pose never computed")
    w.bad(rel, "missing_pose", "read", "pose file not found")
    nan_pose = np.zeros((17, 3), np.float32)
    nan_pose[0, 0] = np.nan
    rel = add(image, [nan_pose], "bad pose")
    w.bad(rel, "nan_keypoints", "read", "non-finite keypoints")
    key = f"{next(key_no):09d}"
    mapping[key] = {"pose_path": f"pose/{shard}/{key}.npz", "prompt": "entry without an image path"}
    w.bad(f"mapping_file_training.json#{key}", "missing_field", "read", "missing field 'img_path'")

    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    w.put(f"images/{shard}.parquet", buf.getvalue())
    w.put_json("mapping_file_training.json", mapping)
    return w


# ------------------------------------------------------------------------------ all

DATASET_DIRS = {
    "hagrid": "hagrid",
    "hagrid_v1": "hagrid_v1",
    "interhand26m": "interhand26m",
    "reinterhand": "reinterhand",
    "laion_human": "laion_human",
}


def build_sample_data(out: str) -> dict:
    """Write every sample dataset under ``out`` (any URI) and its ``manifest.json``.

    Returns the manifest: ``{"datasets": {name: {"root", "files"}}, "bad_entries": [...]}``.
    """
    writers = {
        "hagrid": write_hagrid(storage.join(out, DATASET_DIRS["hagrid"])),
        "hagrid_v1": write_hagrid_v1(storage.join(out, DATASET_DIRS["hagrid_v1"])),
        "interhand26m": write_interhand(storage.join(out, DATASET_DIRS["interhand26m"])),
        "reinterhand": write_reinterhand(storage.join(out, DATASET_DIRS["reinterhand"])),
        "laion_human": write_laion_human(storage.join(out, DATASET_DIRS["laion_human"])),
    }
    manifest = {
        "datasets": {name: {"root": DATASET_DIRS[name], "files": w.files} for name, w in writers.items()},
        "bad_entries": [asdict(e) for w in writers.values() for e in w.manifest],
    }
    storage.write_text(storage.join(out, "manifest.json"), json.dumps(manifest, indent=1))
    return manifest


def read_manifest(out: str) -> dict:
    return json.loads(storage.read_text(storage.join(out, "manifest.json")))


def sample_sources(out: str) -> dict[str, dict]:
    """Reader options (``open_reader(**options)``) for each sample dataset under ``out``."""
    return {
        "hagrid": {
            "dataset": "hagrid",
            "images": storage.join(out, "hagrid", "hagrid_dataset"),
            "annotations": storage.join(out, "hagrid", "annotations"),
            "layout": "v2",
        },
        "hagrid_v1": {
            "dataset": "hagrid",
            "images": storage.join(out, "hagrid_v1", "images"),
            "annotations": storage.join(out, "hagrid_v1", "ann"),
            "layout": "v1",
            "splits": ["train"],
        },
        "interhand26m": {"dataset": "interhand26m", "root": storage.join(out, "interhand26m")},
        "reinterhand": {"dataset": "reinterhand", "root": storage.join(out, "reinterhand")},
        "laion_human": {"dataset": "laion_human", "root": storage.join(out, "laion_human")},
    }


def check_manifest(manifest: dict, errors: list[dict], records: list[dict]) -> list[str]:
    """Every bad entry of the sample data must show up as its expected error (or as a
    converted record); returns the problems, one line each."""
    by_id = {e["image_id"]: e for e in errors}
    record_ids = {r["image_id"] for r in records}
    problems = []
    for entry in manifest["bad_entries"]:
        got = by_id.get(entry["image_id"])
        if entry["stage"] is None:
            if entry["image_id"] not in record_ids:
                problems.append(f"{entry['image_id']} ({entry['case']}): expected a converted record, got {got}")
        elif got is None or got["stage"] != entry["stage"] or entry["reason"] not in got["reason"]:
            problems.append(f"{entry['image_id']} ({entry['case']}): expected {entry['stage']}: {entry['reason']!r}, got {got}")
    return problems
