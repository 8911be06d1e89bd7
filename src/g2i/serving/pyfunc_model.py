"""The G2I pyfunc model, logged as code (MLflow models-from-code): this file IS the model definition.

Input: one row per image: one column per SNP of the pipeline (rsIDs and APOE4, codes 0/1/2, empty =
missing), `diagnosis` (CN/MCI/AD) and optionally `seed`, `num_inference_steps`, `guidance_scale`.
Output: one record per row: `image_png_base64` (8-bit grey PNG), `height`, `width`.
Bad input raises MlflowException(INVALID_PARAMETER_VALUE), which MLflow's server turns into HTTP 400
with the message; the server stays up. Caps on rows, steps and guidance come from the model config
(params.yaml `serving`), so a request cannot ask for unbounded work.

Batching: every row is validated in the request's own thread, then its rows join a shared queue
(g2i.serving.batching): concurrent requests with the same steps and guidance are generated as one batch
of at most `serving.max_batch` rows, gathered within `serving.batch_window_ms`. Each row has its own
noise stream (its seed), so its image does not depend on the rows it was batched with. The server needs a
request thread per waiting request: g2i.serving.event_loop gives it 2 x max_batch.
"""

from __future__ import annotations

import base64
import io

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


def _bad(message: str):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _missing(value) -> bool:
    import math

    return value is None or (isinstance(value, float) and math.isnan(value))


class G2IPyfunc(PythonModel):
    """Genotype + diagnosis rows -> base64 PNG brain slices, from the G2IPipeline in the artifacts."""

    def load_context(self, context) -> None:
        import torch

        from g2i.generation.diffusion import G2IPipeline
        from g2i.serving import event_loop
        from g2i.serving.batching import RequestBatcher
        from g2i.serving.registry import SERVING_KEYS

        self.pipe = G2IPipeline.from_pretrained(context.artifacts["pipeline"])
        self.pipe.to("cuda" if torch.cuda.is_available() else "cpu")
        config = dict(context.model_config or {})
        absent = [key for key in SERVING_KEYS if key not in config]
        if absent:
            raise ValueError(f"model config lacks {', '.join(absent)} (params.yaml `serving`); "
                             "register the model again with `make register`")
        self.max_rows = int(config["max_rows"])
        self.max_steps = int(config["max_steps"])
        self.max_guidance = float(config["max_guidance_scale"])
        self.default_steps = int(config["num_inference_steps"])
        self.default_guidance = float(config["guidance_scale"])
        # the genotype's own scale, when `sample` chose one for this model (registry.served_settings)
        genotype = config.get("genotype_guidance_scale")
        self.default_genotype_guidance = None if genotype is None else float(genotype)
        self.sampler = str(config["sampler"])
        self.max_batch = int(config["max_batch"])
        self.batcher = RequestBatcher(self._generate, self.max_batch, float(config["batch_window_ms"]) / 1000.0)
        event_loop.configure(self.max_batch)   # request threads for the server's loop (g2i.serving.event_loop)

    # ---- validation (in the request's thread: a bad row fails its own request only) --------------------

    @staticmethod
    def _number(row: dict, name: str, default: float, low: float, high: float, whole: bool = False):
        import math

        value = row.get(name, None)
        if _missing(value):
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _bad(f"{name}: expected a number, got {value!r}") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise _bad(f"{name}: must be between {low:g} and {high:g}, got {value!r}")
        if whole:
            if number != int(number):
                raise _bad(f"{name}: must be a whole number, got {value!r}")
            return int(number)
        return number

    def _rows(self, model_input):
        """(batch key, (codes with NaN = missing, class index, seed)) per row, or HTTP 400."""
        import numpy as np

        from g2i.vocabulary import codes_with_nan

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        if len(model_input) == 0:
            raise _bad("no rows in the request")
        if len(model_input) > self.max_rows:
            raise _bad(f"{len(model_input)} rows; at most {self.max_rows} per request (serving.max_rows)")
        if "diagnosis" not in model_input.columns:
            raise _bad("diagnosis: column missing (CN, MCI or AD per row)")
        try:
            labels = self.pipe.diagnosis_labels([str(d) for d in model_input["diagnosis"]], len(model_input))
            if self.pipe.uses_genotype:
                codes = codes_with_nan(self.pipe.genotype_codes(model_input).numpy())
            else:
                codes = np.full((len(model_input), len(self.pipe.config.snps)), np.nan)
        except ValueError as exc:  # the pipeline's own checks name the field
            raise _bad(str(exc)) from None
        rows = []
        for i, row in enumerate(model_input.to_dict(orient="records")):
            steps = self._number(row, "num_inference_steps", self.default_steps, 1, self.max_steps, whole=True)
            guidance = self._number(row, "guidance_scale", self.default_guidance, 0, self.max_guidance)
            seed = self._number(row, "seed", 0, 0, np.iinfo(np.int64).max, whole=True)
            # a request's own guidance_scale is one scale for both conditions
            genotype_guidance = self.default_genotype_guidance if guidance == self.default_guidance else None
            rows.append(((steps, guidance, genotype_guidance), (codes[i], int(labels[i]), seed)))
        return rows

    # ---- generation (on the batcher's worker thread) --------------------------------------------------

    def _generate(self, key, items) -> list:
        import numpy as np

        steps, guidance, genotype_guidance = key
        out = self.pipe(genotypes=np.stack([codes for codes, _, _ in items]),
                        diagnosis=[label for _, label, _ in items], num_inference_steps=steps,
                        sampler=self.sampler, guidance_scale=guidance, genotype_guidance_scale=genotype_guidance,
                        seed=[seed for _, _, seed in items], batch_size=self.max_batch, output_type="pil")
        return out.pil

    # typed: MLflow validates requests against the logged signature (and stops asking for type hints)
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from g2i.serving.event_loop import warn_if_narrow

        warn_if_narrow()
        rows = self._rows(model_input)
        groups: dict = {}
        for index, (key, _) in enumerate(rows):
            groups.setdefault(key, []).append(index)
        images = [None] * len(rows)
        for key, indices in groups.items():
            try:
                generated = self.batcher.submit(key, [rows[i][1] for i in indices])
            except ValueError as exc:
                raise _bad(str(exc)) from None
            for index, image in zip(indices, generated):
                images[index] = image
        records = []
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            records.append({"image_png_base64": base64.b64encode(buffer.getvalue()).decode("ascii"),
                            "height": image.height, "width": image.width})
        return pd.DataFrame.from_records(records)


set_model(G2IPyfunc())
