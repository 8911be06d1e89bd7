"""The G2I pyfunc model, logged as code (MLflow models-from-code): this file IS the model definition.

Input: one row per image: one column per SNP of the pipeline (rsIDs and APOE4, codes 0/1/2, empty =
missing), `diagnosis` (CN/MCI/AD) and optionally `seed`, `num_inference_steps`, `guidance_scale`.
Output: one record per row: `image_png_base64` (8-bit grey PNG), `height`, `width`.
Bad input raises MlflowException(INVALID_PARAMETER_VALUE), which MLflow's server turns into HTTP 400
with the message; the server stays up. Caps on rows and steps come from the model config (params.yaml
`serving`), so a request cannot ask for unbounded work.
"""

from __future__ import annotations

import base64
import io
import threading

from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

OPTIONAL = {"seed": 0, "num_inference_steps": None, "guidance_scale": None}


def _bad(message: str):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class G2IPyfunc(PythonModel):
    """Genotype + diagnosis rows -> base64 PNG brain slices, from the G2IPipeline in the artifacts."""

    def load_context(self, context) -> None:
        import torch

        from g2i.pipeline import G2IPipeline

        self.pipe = G2IPipeline.from_pretrained(context.artifacts["pipeline"])
        self.pipe.to("cuda" if torch.cuda.is_available() else "cpu")
        config = context.model_config or {}
        self.max_rows = int(config.get("max_rows", 16))
        self.max_steps = int(config.get("max_steps", 200))
        self.default_steps = int(config.get("num_inference_steps", 50))
        self.default_guidance = float(config.get("guidance_scale", 1.0))
        # the genotype's own scale, when `sample` chose one for this model (registry.served_settings)
        genotype = config.get("genotype_guidance_scale")
        self.default_genotype_guidance = None if genotype is None else float(genotype)
        self.sampler = str(config.get("sampler", "ddpm"))
        self.lock = threading.Lock()  # one generation at a time: bounded memory under concurrent requests

    def _setting(self, row, name: str, default, cast):
        import math

        value = row.get(name, None)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return default
        try:
            return cast(value)
        except (TypeError, ValueError):
            raise _bad(f"{name}: expected a number, got {value!r}") from None

    def predict(self, context, model_input, params=None):
        import pandas as pd

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        if len(model_input) == 0:
            raise _bad("no rows in the request")
        if len(model_input) > self.max_rows:
            raise _bad(f"{len(model_input)} rows; at most {self.max_rows} per request (serving.max_rows)")
        if "diagnosis" not in model_input.columns:
            raise _bad("diagnosis: column missing (CN, MCI or AD per row)")
        records = []
        for _, row in model_input.iterrows():
            row = row.to_dict()
            steps = self._setting(row, "num_inference_steps", self.default_steps, int)
            if not 1 <= steps <= self.max_steps:
                raise _bad(f"num_inference_steps: must be between 1 and {self.max_steps} (serving.max_steps), got {steps}")
            guidance = self._setting(row, "guidance_scale", self.default_guidance, float)
            # a request's own guidance_scale is one scale for both conditions
            genotype_guidance = self.default_genotype_guidance if guidance == self.default_guidance else None
            seed = self._setting(row, "seed", 0, int)
            try:
                with self.lock:
                    out = self.pipe(genotypes=pd.DataFrame([row]), diagnosis=[row["diagnosis"]],
                                    num_inference_steps=steps, sampler=self.sampler, guidance_scale=guidance,
                                    genotype_guidance_scale=genotype_guidance, seed=seed, output_type="pil")
            except ValueError as exc:  # the pipeline's own checks name the field
                raise _bad(str(exc)) from None
            image = out.pil[0]
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            records.append({"image_png_base64": base64.b64encode(buffer.getvalue()).decode("ascii"),
                            "height": image.height, "width": image.width})
        return pd.DataFrame.from_records(records)


set_model(G2IPyfunc())
