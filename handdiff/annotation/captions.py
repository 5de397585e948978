"""Captions: LLaVA-v1.5 with one fixed instruction (HaGRID, LAION-Human), or a
user-supplied table of per-sequence captions (InterHand2.6M, Re:InterHand)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import torch
from PIL import Image

from handdiff import storage

DEFAULT_INSTRUCTION = (
    "Describe the person in this photo in one sentence: gender, age, skin tone, hair, clothing, and what their hands are doing."
)
"""Our choice (the paper does not publish its prompt); a config option of the annotate job."""


class LlavaCaptioner:
    """Batched greedy captioning: list of (H, W, 3) uint8 images -> list of captions."""

    def __init__(self, model, processor, instruction: str = DEFAULT_INSTRUCTION, max_new_tokens: int = 60):
        self.model, self.processor = model.eval(), processor
        self.processor.tokenizer.padding_side = "left"  # decoder-only generation pads on the left
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
        self.prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
        self.max_new_tokens = max_new_tokens

    @torch.inference_mode()
    def __call__(self, images: list[np.ndarray]) -> list[str]:
        if not images:
            return []
        inputs = self.processor(
            images=[Image.fromarray(i) for i in images], text=[self.prompt] * len(images), return_tensors="pt", padding=True
        )
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        texts = self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]


class CaptionTable:
    """Per-sequence captions from a CSV (columns ``sequence,caption``) or a JSON object
    ``{sequence: caption}``, local or on S3."""

    def __init__(self, uri: str):
        text = storage.read_text(uri)
        if uri.endswith(".json"):
            table = json.loads(text)
            if not isinstance(table, dict):
                raise ValueError(f"{uri}: expected a JSON object {{sequence: caption}}")
        else:
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames or not {"sequence", "caption"} <= set(reader.fieldnames):
                raise ValueError(f"{uri}: expected CSV columns 'sequence' and 'caption', got {reader.fieldnames}")
            table = {row["sequence"]: row["caption"] for row in reader}
        self.uri = uri
        self.captions = {str(k): str(v).strip() for k, v in table.items()}

    def __call__(self, sequence: str | None) -> str | None:
        return self.captions.get(str(sequence)) if sequence is not None else None
