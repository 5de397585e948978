"""Hand and person masks from Segment Anything on a batch of images: each image is embedded
once and the embedding serves every prompt of that image; a batch of images shares one
encoder forward. The prompts come from ``handdiff.annotation.masks``.
"""

from __future__ import annotations

import numpy as np
import torch
from segment_anything.utils.transforms import ResizeLongestSide

from handdiff.annotation.masks import MaskPrompt


class SamMasker:
    """Segment Anything on a batch of images, each with its own list of prompts.

    ``__call__(images, prompts)`` -> per image, per prompt, an (H, W) bool mask.
    """

    def __init__(self, sam: torch.nn.Module, device: str = "cpu"):
        self.sam = sam.to(device).eval()
        self.device = device
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)

    @torch.inference_mode()
    def __call__(self, images: list[np.ndarray], prompts: list[list[MaskPrompt]]) -> list[list[np.ndarray]]:
        inputs, sizes = [], []
        for image in images:
            resized = self.transform.apply_image(image)
            tensor = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).float()
            inputs.append(self.sam.preprocess(tensor[None])[0])
            sizes.append((resized.shape[:2], image.shape[:2]))
        todo = [i for i, p in enumerate(prompts) if p]
        out: list[list[np.ndarray]] = [[] for _ in images]
        if not todo:
            return out
        embeddings = self.sam.image_encoder(torch.stack([inputs[i] for i in todo]))
        for embedding, i in zip(embeddings, todo, strict=True):
            out[i] = self._decode(embedding[None], prompts[i], *sizes[i])
        return out

    def _decode(self, embedding: torch.Tensor, prompts: list[MaskPrompt], input_size, original_size) -> list[np.ndarray]:
        masks: list[np.ndarray | None] = [None] * len(prompts)
        # Prompts with the same number of points share one decoder call. (Padding to a common
        # count would add SAM's "not a point" tokens and change the masks.)
        groups: dict[int, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(len(prompt.points), []).append(i)
        for n_points, group in groups.items():
            boxes = self.transform.apply_boxes(np.stack([prompts[i].box for i in group]), original_size)
            points = None
            if n_points:
                coords = np.stack([self.transform.apply_coords(prompts[i].points, original_size) for i in group]).astype(np.float32)
                points = (torch.as_tensor(coords, device=self.device), torch.ones(coords.shape[:2], dtype=torch.int64, device=self.device))
            sparse, dense = self.sam.prompt_encoder(
                points=points, boxes=torch.as_tensor(boxes, device=self.device, dtype=torch.float32), masks=None
            )
            low_res, _ = self.sam.mask_decoder(
                image_embeddings=embedding,
                image_pe=self.sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            full = self.sam.postprocess_masks(low_res, input_size, original_size) > self.sam.mask_threshold
            for row, i in enumerate(group):
                masks[i] = full[row, 0].cpu().numpy()
        return masks
