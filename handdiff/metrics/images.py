"""Image metrics of the benchmark with torchmetrics: CLIPSIM (caption-image CLIP score) and
FID / KID on foregrounds (backgrounds removed by person masks on both sides), Inception
features of dimension 192, weights from a local file (``handdiff.models.loading.inception_weights``).

torchmetrics 1.9 meets transformers 5's ``CLIPModel``, whose ``get_*_features`` return model
outputs instead of tensors (torchmetrics #3407): ``_TensorCLIP`` returns the pooled,
projected features as torchmetrics expects, and is handed to ``CLIPScore`` as a ready
(model, processor) pair, without forking torchmetrics.
"""

from __future__ import annotations

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


def fid_kid(real: list[np.ndarray], fake: list[np.ndarray], weights: str, subset_size: int = 50) -> dict[str, float]:
    """FID and KID (mean, std; KID subsets of ``min(subset_size, n)``) between two image sets,
    (H, W, 3) uint8 each, Inception-v3 192-d features from the local ``weights`` file."""
    from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
    from torchmetrics.image.kid import KernelInceptionDistance

    def batch(images: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2)

    fid = FrechetInceptionDistance(feature=192, feature_extractor_weights_path=weights, normalize=True)
    subset = max(2, min(subset_size, len(real), len(fake)))
    kid = KernelInceptionDistance(feature=NoTrainInceptionV3("inception-v3-compat", ["192"], weights), subset_size=subset)
    for images, is_real in ((real, True), (fake, False)):
        tensor = batch(images)
        fid.update(tensor.float() / 255, real=is_real)
        kid.update(tensor, real=is_real)  # uint8: KID ignores ``normalize``
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
