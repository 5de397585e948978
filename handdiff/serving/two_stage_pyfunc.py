"""Two-stage generation as an MLflow pyfunc model (logged as code, not a pickle), made of the
two trained stages' pipeline folders (artifacts ``hand`` and ``body``).

Input: a DataFrame with ``keypoints`` (399 floats: 133 x (x, y, score) in the pixels of the
``size`` square), ``caption`` (str) and ``seed`` (int), e.g. a condition set's rows. Params:
the two-stage inference settings (``PARAMS``); the crop size, margin, heatmap sigma, hand rule
and canvas fill are the models' own (saved at training). Output: ``image`` (PNG bytes),
``hands`` (crops made).
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np

from handdiff.inference.settings import TwoStageSettings

PARAMS = {"size": 512, **TwoStageSettings().model_dump()}
"""The params ``predict`` takes, with their defaults (logged in the model's signature): the output
side and every ``TwoStageSettings`` field."""


class TwoStageModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        import torch

        from handdiff.inference.two_stage import TwoStagePipeline

        self.pipeline = TwoStagePipeline.from_pretrained(context.artifacts["hand"], context.artifacts["body"])
        if torch.cuda.is_available():
            self.pipeline.to("cuda")

    def predict(self, context, model_input, params: dict | None = None):
        import pandas as pd

        from handdiff.data.images import encode_image

        params = {**PARAMS, **(params or {})}
        size = int(params.pop("size"))
        keypoints = [np.asarray(k, np.float32).reshape(133, 3) for k in model_input["keypoints"]]
        results = self.pipeline(
            keypoints, list(model_input["caption"]), [int(s) for s in model_input["seed"]], size, TwoStageSettings(**params)
        )
        return pd.DataFrame({"image": [encode_image(r.image, "PNG") for r in results], "hands": [r.hands for r in results]})


mlflow.models.set_model(TwoStageModel())
