"""The stage-2 body outpainter as an MLflow pyfunc model (logged as code, not a pickle).

Input: a DataFrame with ``caption`` (str), ``keypoints`` (399 floats: 133 x (x, y, score) in
output pixels), ``canvas`` (PNG/JPEG bytes: the hands on a grey background, output size) and
``mask`` (COCO RLE dict of the hands). Params: ``steps``, ``guidance_scale``, ``seed``,
``unmasked_last_steps`` (default 2, as the paper's inference). Output: ``image`` (PNG bytes).
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np

PARAMS = {"steps": 25, "guidance_scale": 7.5, "seed": 0, "unmasked_last_steps": 2}
"""The params ``predict`` takes, with their defaults (logged in the model's signature)."""


class BodyOutpainterModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        import torch

        from handdiff.models.body_pipeline import BodyOutpaintPipeline

        self.pipeline = BodyOutpaintPipeline.from_pretrained(context.artifacts["pipeline"])
        if torch.cuda.is_available():
            self.pipeline.to("cuda")

    def predict(self, context, model_input, params: dict | None = None):
        import pandas as pd
        import torch

        from handdiff.data.images import decode_image, encode_image
        from handdiff.data.rle import decode_rle
        from handdiff.data.skeleton import draw_skeleton

        params = {**PARAMS, **(params or {})}
        canvases = np.stack([decode_image(c) for c in model_input["canvas"]])
        size = canvases.shape[1]
        skeletons = np.stack([draw_skeleton(np.asarray(k, np.float32).reshape(133, 3), size) for k in model_input["keypoints"]])
        masks = np.stack([decode_rle(m) for m in model_input["mask"]]).astype(np.float32)
        to_tensor = lambda images: torch.as_tensor(images).permute(0, 3, 1, 2).float() / 255
        out = self.pipeline(
            list(model_input["caption"]),
            to_tensor(skeletons),
            torch.as_tensor(masks)[:, None],
            canvas=to_tensor(canvases),
            num_inference_steps=int(params["steps"]),
            guidance_scale=float(params["guidance_scale"]),
            generator=torch.Generator().manual_seed(int(params["seed"])),
            unmasked_last_steps=int(params["unmasked_last_steps"]),
        )
        images = (out.images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        return pd.DataFrame({"image": [encode_image(i, "PNG") for i in images]})


mlflow.models.set_model(BodyOutpainterModel())
