"""Image metrics of the benchmark with torchmetrics: CLIPSIM (caption-image CLIP score) and
FID / KID on foregrounds (backgrounds removed by person masks on both sides), Inception
features of dimension 192, weights from a local file (``handdiff.models.loading.inception_weights``).

torchmetrics 1.9 meets transformers 5's ``CLIPModel``, whose ``get_*_features`` return model
outputs instead of tensors (torchmetrics #3407): ``_TensorCLIP`` returns the pooled,
projected features as torchmetrics expects, and is handed to ``CLIPScore`` as a ready
(model, processor) pair, without forking torchmetrics.
"""

from __future__ import annotations

import functools

import numpy as np
import torch


def _tensor_clip(location: str):
    """(CLIP model whose feature getters return tensors, processor) from a local path / s3 / hub id."""
    from transformers import CLIPModel

    from handdiff.models.loading import load_clip

    model, processor = load_clip(location)

    class _TensorCLIP(CLIPModel):
        def get_image_features(self, *args, **kwargs):
            out = super().get_image_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

        def get_text_features(self, *args, **kwargs):
            out = super().get_text_features(*args, **kwargs)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

    model.__class__ = _TensorCLIP
    return model.eval(), processor


class ClipScorer:
    """CLIP scores (``100 * max(cos, 0)``, torchmetrics' ``clip_score``) of images against captions."""

    def __init__(self, location: str, device: str = "cpu"):
        self.model, self.processor = _tensor_clip(location)
        self.model.to(device)
        self.device = device

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray], captions: list[str]) -> np.ndarray:
        """Per image (H, W, 3) uint8 and its caption, its CLIP score; (N,) float."""
        from torchmetrics.functional.multimodal import clip_score

        scores = []
        for image, caption in zip(images, captions, strict=True):  # one at a time: torchmetrics returns a batch's mean
            tensor = torch.as_tensor(image).permute(2, 0, 1).to(self.device)  # 0-255: floats in [0, 1] would be rescaled again
            scores.append(float(clip_score(tensor, caption, model_name_or_path=lambda: (self.model, self.processor))))
        return np.asarray(scores)


def foreground(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 with everything outside the (H, W) person mask black."""
    return np.where(mask[..., None], image, 0).astype(np.uint8)


class InceptionFeatures:
    """The 192-d Inception-v3 features torchmetrics' FID and KID use (``NoTrainInceptionV3``,
    ``inception-v3-compat``), from a local weights file: extracted where the images are (e.g.
    on GPU actors), so the distances can be computed later from features alone."""

    def __init__(self, weights: str, device: str = "cpu"):
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.model = NoTrainInceptionV3("inception-v3-compat", ["192"], weights).to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, H, W, 3) uint8 images -> (N, 192) float64 features."""
        batch = torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2).to(self.device)
        return self.model(batch).double().cpu().numpy()


class _Precomputed(torch.nn.Module):
    """A "feature extractor" that passes features through, so torchmetrics' FID and KID compute
    their distances from features extracted elsewhere."""

    num_features = 192

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


KID_SUBSET_SIZE = 1000
"""torchmetrics' own default ``subset_size`` for ``KernelInceptionDistance``."""


def _update(metric, real: np.ndarray, fake: np.ndarray):
    for features, is_real in ((real, True), (fake, False)):
        metric.update(torch.as_tensor(np.asarray(features), dtype=torch.float64), real=is_real)
    return metric


def _counted_fid():
    """torchmetrics' ``FrechetInceptionDistance`` whose ``update`` also takes per-row counts."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    class CountedFID(FrechetInceptionDistance):
        """``update(features, real, counts)`` adds what torchmetrics' own ``update`` would for the
        rows repeated ``counts`` times each (a bootstrap resample): the features' sum, the sum of
        their outer products and the count, from each distinct row once (torchmetrics/image/fid.py,
        ``update``: ``features.sum(dim=0)``, ``features.t().mm(features)``, ``imgs.shape[0]``).
        ``compute`` is torchmetrics' own."""

        def update(self, imgs: torch.Tensor, real: bool, counts: np.ndarray | None = None) -> None:
            if counts is None:
                super().update(imgs, real)
                return
            drawn = np.flatnonzero(counts)
            weights = np.asarray(counts, np.float64)[drawn]
            features = imgs.double().numpy()[drawn]
            scaled = features * np.sqrt(weights)[:, None]
            side = "real" if real else "fake"
            getattr(self, f"{side}_features_sum").add_(torch.from_numpy(weights @ features))
            # numpy's A.T @ A is BLAS syrk: half the work of a general product
            getattr(self, f"{side}_features_cov_sum").add_(torch.from_numpy(scaled.T @ scaled))
            setattr(self, f"{side}_features_num_samples", getattr(self, f"{side}_features_num_samples") + int(weights.sum()))
            self.orig_dtype = torch.float64

    return CountedFID(feature=_Precomputed())


@functools.lru_cache(maxsize=1)
def _fid_metric():
    return _counted_fid()


def fid_from_features(real: np.ndarray, fake: np.ndarray, counts: np.ndarray | None = None) -> float:
    """torchmetrics' FID from (N, 192) features of each side; with ``counts`` (N,) row ``i``
    counts ``counts[i]`` times (0: left out), the FID of ``real[rows], fake[rows]`` for rows with
    repeats, at the cost of the distinct rows (one metric object, reset per call: building it
    costs more than a resample's update)."""
    metric = _fid_metric()
    metric.reset()
    if counts is None:
        return float(_update(metric, real, fake).compute())
    for features, is_real in ((real, True), (fake, False)):
        metric.update(torch.as_tensor(np.asarray(features), dtype=torch.float64), is_real, counts)
    return float(metric.compute())


def kid_from_features(real: np.ndarray, fake: np.ndarray, subset_size: int = KID_SUBSET_SIZE) -> dict[str, float]:
    """torchmetrics' KID, its mean and std over subsets of ``min(subset_size, n)`` (n the smaller
    side's count: torchmetrics refuses a subset larger than a side), from (N, 192) features.
    Where that subset is every row of both sides, each of torchmetrics' 100 subsets is the same
    set reordered, so one subset gives the value, with std 0 (KID sums over pairs: order does
    not change it)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    subset = max(2, min(subset_size, len(real), len(fake)))
    subsets = 1 if subset == len(real) == len(fake) else 100  # 100: torchmetrics' default
    kid = KernelInceptionDistance(feature=_Precomputed(), subset_size=subset, subsets=subsets)
    kid_mean, kid_std = _update(kid, real, fake).compute()
    return {"kid": float(kid_mean), "kid_std": float(kid_std)}


def fid_kid_from_features(real: np.ndarray, fake: np.ndarray, subset_size: int = KID_SUBSET_SIZE) -> dict[str, float]:
    """``fid_from_features`` and ``kid_from_features`` of (N, 192) features."""
    return {"fid": fid_from_features(real, fake), **kid_from_features(real, fake, subset_size)}


def fid_kid(real: list[np.ndarray], fake: list[np.ndarray], weights: str, subset_size: int = KID_SUBSET_SIZE) -> dict[str, float]:
    """FID and KID between two image sets, (H, W, 3) uint8 each (``InceptionFeatures`` + ``fid_kid_from_features``)."""
    features = InceptionFeatures(weights)
    return fid_kid_from_features(features(real), features(fake), subset_size)
