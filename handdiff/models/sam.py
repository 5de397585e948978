"""Segment Anything models by architecture name, built from segment-anything's classes.

``build_sam("vit_h", "sam_vit_h_4b8939.pth")`` builds exactly what segment-anything's
``sam_model_registry["vit_h"]`` builds; ``"tiny"`` is the same model with small
dimensions and a 256-pixel input, for tests and the demo. The checkpoint format
(a state dict saved with ``torch.save``) is the same for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer


@dataclass(frozen=True)
class SamArchitecture:
    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    prompt_embed_dim: int = 256
    image_size: int = 1024
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256


SAM_ARCHITECTURES = {
    "vit_h": SamArchitecture(1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": SamArchitecture(1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": SamArchitecture(768, 12, 12, (2, 5, 8, 11)),
    "tiny": SamArchitecture(
        32, 2, 2, (1,), prompt_embed_dim=32, image_size=256, decoder_mlp_dim=64, decoder_num_heads=2, iou_head_hidden_dim=32
    ),
}
PATCH_SIZE = 16


SamArch = Literal["vit_h", "vit_l", "vit_b", "tiny"]
"""The names of ``SAM_ARCHITECTURES``, for typed configs."""


def build_sam(arch: str = "vit_h", checkpoint: str | None = None) -> Sam:
    """A SAM model of architecture ``arch`` in eval mode, with ``checkpoint``'s weights if given.

    Raises:
        ValueError: unknown architecture, or a checkpoint made for another one.
    """
    try:
        a = SAM_ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown SAM architecture {arch!r}; known: {', '.join(SAM_ARCHITECTURES)}") from None
    embedding_size = a.image_size // PATCH_SIZE
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=a.encoder_depth,
            embed_dim=a.encoder_embed_dim,
            img_size=a.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=a.encoder_num_heads,
            patch_size=PATCH_SIZE,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=a.encoder_global_attn_indexes,
            window_size=14,
            out_chans=a.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=a.prompt_embed_dim,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(a.image_size, a.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=a.prompt_embed_dim, mlp_dim=a.decoder_mlp_dim, num_heads=a.decoder_num_heads
            ),
            transformer_dim=a.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=a.iou_head_hidden_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        try:
            sam.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).split("\n\t")[1] if "\n\t" in str(err) else str(err)
            raise ValueError(f"{checkpoint} does not hold a SAM {arch} checkpoint ({first.strip()})") from None
    return sam.eval()
