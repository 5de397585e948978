"""The stage-1 hand generator as an MLflow pyfunc model (logged as code, not a pickle).

Input: a DataFrame with ``caption`` (str), ``keypoints`` (126 floats: 42 x (x, y, score)
in crop pixels, left hand then right) and ``mask`` (optional COCO RLE dict, the hands'
mask; missing or None: mask-free generation), in the pixels of a crop of the model's own
``crop_size`` (saved at training, as its heatmap sigma). Params: ``steps``, ``guidance_scale``,
``seed``. Output: ``image`` (PNG bytes) and ``mask`` (RLE), ``crop_size`` square.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np

PARAMS = {"steps": 25, "guidance_scale": 7.5, "seed": 0}
"""The params ``predict`` takes, with their defaults (logged in the model's signature: MLflow
drops params a signature does not declare)."""


class HandGeneratorModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        import torch

        from handdiff.models.hand_pipeline import HandGenerationPipeline

        self.pipeline = HandGenerationPipeline.from_pretrained(context.artifacts["pipeline"])
        if torch.cuda.is_available():
            self.pipeline.to("cuda")

    def predict(self, context, model_input, params: dict | None = None):
        import pandas as pd
        import torch

        from handdiff.data.images import encode_image
        from handdiff.data.rle import decode_rle, encode_rle
        from handdiff.models.conditioning import hand_condition

        params = {**PARAMS, **(params or {})}
        trained = self.pipeline.generator.config
        size = int(trained.crop_size)
        keypoints = torch.as_tensor(np.stack([np.asarray(k, np.float32).reshape(42, 3) for k in model_input["keypoints"]]))
        masks = [
            decode_rle(m) if isinstance(m, dict) else np.zeros((size, size), bool) for m in model_input.get("mask", [None] * len(keypoints))
        ]
        condition = hand_condition(keypoints, torch.as_tensor(np.stack(masks).astype(np.float32)), sigma=float(trained.heatmap_sigma))
        out = self.pipeline(
            list(model_input["caption"]),
            condition,
            int(params["steps"]),
            float(params["guidance_scale"]),
            torch.Generator().manual_seed(int(params["seed"])),
        )
        images = (out.images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        return pd.DataFrame(
            {"image": [encode_image(i, "PNG") for i in images], "mask": [encode_rle(m[0] > 0.5) for m in out.masks.cpu().numpy()]}
        )


mlflow.models.set_model(HandGeneratorModel())
