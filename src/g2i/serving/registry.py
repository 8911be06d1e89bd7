"""Log each G2IPipeline as a pyfunc model, register it, and move the `champion` alias to the best one.

Promotion rule: a version is champion-eligible only when its evaluation exists and its metric is a
finite number; it becomes champion only when it beats the current champion strictly (lower or higher
per `greater_is_better`), and the champion it replaces becomes `challenger`. Every version carries its
evaluation metrics as tags, so the registry alone shows why the alias points where it does.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from ..errors import G2IError

MODEL_FILE = Path(__file__).with_name("pyfunc_model.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/g2i, shipped with the model as code
REQUIREMENTS = ("torch", "diffusers", "accelerate", "safetensors", "mlflow", "numpy", "pandas", "pillow", "scipy",
                "scikit-image", "nibabel", "pyyaml", "tqdm")
CHAMPION, CHALLENGER = "champion", "challenger"
# what MLflow prints on every registration; register_variant's own line says it
REGISTRY_CHATTER = re.compile(r"^(Successfully registered model '.*'\.|Registered model '.*' already exists\. "
                              r"Creating a new version of this model\.\.\.|Created version '\d+' of model '.*'\.)$")


@contextlib.contextmanager
def without_registry_chatter():
    """Pass on what MLflow writes to stderr meanwhile, except its per-registration lines (REGISTRY_CHATTER)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        kept = [line for line in captured.getvalue().splitlines(keepends=True)
                if not REGISTRY_CHATTER.match(line.rstrip("\n"))]
        sys.stderr.write("".join(kept))


def pinned_requirements() -> list[str]:
    """The serving environment's packages at the versions installed here (requirements.lock's pins)."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]


def signature(snps: list[str]):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec("double", snp) for snp in snps] + [
        ColSpec("string", "diagnosis"), ColSpec("long", "seed", required=False),
        ColSpec("long", "num_inference_steps", required=False), ColSpec("double", "guidance_scale", required=False)])
    outputs = Schema([ColSpec("string", "image_png_base64"), ColSpec("long", "height"), ColSpec("long", "width")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(snps: list[str]):
    """An invented example row (all codes 0): no subject's data goes into the logged model."""
    import pandas as pd

    return pd.DataFrame([{**{snp: 0.0 for snp in snps}, "diagnosis": "AD", "seed": 0, "num_inference_steps": 5}])


# params.yaml `serving`: what the served model reads from its config (g2i.serving.pyfunc_model)
SERVING_KEYS = ("max_rows", "max_steps", "max_guidance_scale", "max_batch", "batch_window_ms",
                "num_inference_steps", "guidance_scale", "sampler")


def check_serving(serving: Mapping[str, Any]) -> None:
    """Fail at registration, not at the first request, when params.yaml `serving` is incomplete or absurd."""
    absent = [key for key in SERVING_KEYS if key not in serving]
    if absent:
        raise G2IError(f"params.yaml serving: missing {', '.join(absent)}")
    positive = ("max_rows", "max_steps", "max_batch", "num_inference_steps")
    problems = [f"{key} must be a positive integer, got {serving[key]!r}" for key in positive
                if not isinstance(serving[key], int) or isinstance(serving[key], bool) or serving[key] < 1]
    for key in ("max_guidance_scale", "batch_window_ms", "guidance_scale"):
        value = serving[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            problems.append(f"{key} must be a finite number >= 0, got {value!r}")
    if not problems and serving["num_inference_steps"] > serving["max_steps"]:
        problems.append(f"num_inference_steps {serving['num_inference_steps']} exceeds max_steps {serving['max_steps']}")
    if not problems and serving["guidance_scale"] > serving["max_guidance_scale"]:
        problems.append(f"guidance_scale {serving['guidance_scale']} exceeds max_guidance_scale")
    if problems:
        raise G2IError("params.yaml serving: " + "; ".join(problems))


def served_settings(serving: Mapping[str, Any], generated_summary: Path) -> dict:
    """params.yaml `serving`, with the guidance the model was evaluated at: the scales `sample` chose for a
    swept model (its summary.json `generation`), so the served images are those Table 1 measured."""
    import json

    check_serving(serving)
    settings = dict(serving)
    if Path(generated_summary).is_file():
        generation = json.loads(Path(generated_summary).read_text()).get("generation", {})
        for key in ("guidance_scale", "genotype_guidance_scale"):
            if generation.get(key) is not None:
                settings[key] = float(generation[key])
    return settings


def log_pipeline(model_dir: Path, serving: Mapping[str, Any], registered_name: str | None = None):
    """Log models/<variant>/ (a saved G2IPipeline) as a pyfunc model in the active run; returns ModelInfo."""
    import json

    import mlflow

    index = Path(model_dir) / "model_index.json"
    if not index.is_file():
        raise G2IError(f"{model_dir}: no saved G2IPipeline (model_index.json); run `dvc repro` first")
    snps = json.loads(index.read_text())["snps"]
    return mlflow.pyfunc.log_model(
        name="model", python_model=str(MODEL_FILE), artifacts={"pipeline": str(model_dir)},
        code_paths=[str(PACKAGE_DIR)], model_config=dict(serving), signature=signature(snps),
        input_example=input_example(snps), pip_requirements=pinned_requirements(),
        registered_model_name=registered_name)


def _metric_of(version, metric: str) -> float | None:
    value = (version.tags or {}).get(f"metric.{metric}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def promote(client, name: str, version: str, metric: str, greater_is_better: bool) -> str:
    """Move `champion` to `version` if it is eligible and beats the current champion; return what happened."""
    candidate = client.get_model_version(name, version)
    value = _metric_of(candidate, metric)
    if value is None:
        return f"version {version}: no valid '{metric}' from evaluation; not promoted"
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except Exception:  # no champion yet
        current = None
    if current is not None:
        best = _metric_of(current, metric)
        better = best is None or (value > best if greater_is_better else value < best)
        if not better:
            return f"version {version}: {metric} {value:.4g} does not beat champion v{current.version} ({best:.4g})"
        client.set_registered_model_alias(name, CHALLENGER, current.version)
    client.set_registered_model_alias(name, CHAMPION, version)
    return f"version {version}: {metric} {value:.4g} -> champion" + (
        f" (v{current.version} is now challenger)" if current is not None else "")


def register_variant(model_dir: Path, variant: str, evaluation: Mapping[str, Any] | None, name: str,
                     serving: Mapping[str, Any], metric: str, greater_is_better: bool, tags: Mapping[str, str]) -> str:
    """Log, register and tag one variant, then apply the promotion rule. Returns a one-line summary."""
    import mlflow

    client = mlflow.MlflowClient()
    with without_registry_chatter():
        info = log_pipeline(model_dir, serving, registered_name=name)
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, "variant", variant)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    if evaluation is None:
        client.set_model_version_tag(name, version, "evaluation", "missing")
    else:
        client.set_model_version_tag(name, version, "evaluation", "ok")
        for key, value in evaluation.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                client.set_model_version_tag(name, version, f"metric.{key}", repr(float(value)))
    outcome = promote(client, name, version, metric, greater_is_better) if evaluation is not None else \
        f"version {version}: evaluation missing; not promoted"
    return f"{variant} -> {name} {outcome}"
