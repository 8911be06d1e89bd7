"""MLflow tracking for G2I runs: one store per project, runs tagged with what produced them.

The store defaults to `sqlite:///<project root>/mlflow.db` (MLflow 3's own default is the current
directory, which would scatter stores across folders); $MLFLOW_TRACKING_URI overrides it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from .config import repo_root

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


def tracking_uri(root: Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI if set, else the project's SQLite store."""
    return os.environ.get(TRACKING_URI_ENV) or f"sqlite:///{(root or repo_root()).resolve() / 'mlflow.db'}"


def flatten(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested params as ('a.b.c', value) pairs, values as MLflow stores them (strings, lists as YAML)."""
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{name}.")
        elif isinstance(value, (list, tuple)):
            yield name, yaml.safe_dump(list(value), default_flow_style=True).strip()
        else:
            yield name, str(value)


def git_commit(root: Path) -> str:
    """HEAD's commit (with '-dirty' when the work tree has changes), or 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def data_version(root: Path) -> str:
    """The raw data's DVC hash from data.dvc (what the run was trained on), or 'untracked'."""
    path = root / "data.dvc"
    if not path.is_file():
        return "untracked"
    outs = (yaml.safe_load(path.read_text()) or {}).get("outs") or [{}]
    return str(outs[0].get("md5") or hashlib.md5(path.read_bytes()).hexdigest())


def run_tags(root: Path, profile: str, **extra: str) -> dict[str, str]:
    """Tags every G2I run carries, so runs can be compared and traced back to code and data."""
    return {"g2i.git_commit": git_commit(root), "g2i.data_dvc_md5": data_version(root), "g2i.profile": profile,
            **{f"g2i.{k}": str(v) for k, v in extra.items()}}


EXPERIMENT = "g2i"
# The experiment's kind for MLflow 3 UIs that read it (model training: the runs table, not traces and token
# usage). MLflow 3.17's UI ignores the tag and follows its own GenAI / Model-training switch, default GenAI:
# the links `g2i ui` prints carry workflowType=machine_learning (g2i.mlflow_ui).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def start_run(root: Path, run_name: str, tags: Mapping[str, str], system_metrics: bool = False):
    """An MLflow run in the project's store: the one `mlflow run` opened (MLFLOW_RUN_ID), or a new one.

    Under `mlflow run` the experiment is already chosen by the run; setting another would make MLflow
    refuse to resume it, so the experiment is only set for runs started here. Parameters that the run
    already holds (MLproject parameters) must not be logged again: see `log_new_params`.
    `system_metrics`: MLflow's own CPU / memory (/ GPU) sampling, drawn in the run's charts (training runs).
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(root))
    if not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(EXPERIMENT)
        run = mlflow.start_run(run_name=run_name, tags=dict(tags), log_system_metrics=system_metrics or None)
    else:
        run = mlflow.start_run(log_system_metrics=system_metrics or None)
        mlflow.set_tags(dict(tags))
    mlflow.MlflowClient().set_experiment_tag(run.info.experiment_id, *EXPERIMENT_KIND)
    return run


def log_new_params(params: Mapping[str, str]) -> None:
    """Log params the active run does not hold yet (MLflow refuses a changed value for a logged key)."""
    import mlflow

    run = mlflow.active_run()
    held = set(mlflow.get_run(run.info.run_id).data.params)
    mlflow.log_params({k: v for k, v in params.items() if k not in held})


def training_logger(run_id: str):
    """The trainers' `log(metrics, step)` callback: each loss as `train/<name>` on run `run_id`, drawn per step in
    the MLflow UI."""
    import mlflow

    def log(metrics: Mapping[str, float], step: int) -> None:
        mlflow.log_metrics({f"train/{k}": float(v) for k, v in metrics.items()}, step=step, run_id=run_id)

    return log


def numeric_metrics(results: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested result as flat MLflow metrics ('a/b/c'); text, flags, lists skipped."""
    import math

    out: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(numeric_metrics(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


def log_stage(root: Path, stage: str, profile: str, summary: Mapping[str, Any], params: Mapping[str, Any] | None = None,
              artifacts: Sequence[Path] = ()) -> None:
    """One MLflow run for a data stage, tagged like the training runs: its settings as params, the numbers
    of its summary as metrics ('a/b/c'), its reports (files or folders, e.g. the Data Docs) as artifacts."""
    import mlflow

    with start_run(root, stage, run_tags(root, profile, stage=stage)):
        if params:
            log_new_params(dict(flatten(params)))
        # summary keys may be prose (e.g. an alignment reason); MLflow names allow letters, digits, _-. :/
        mlflow.log_metrics({re.sub(r"[^\w\-. :/]+", "_", k): v for k, v in numeric_metrics(summary).items()})
        for path in map(Path, artifacts):
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
            elif path.is_file():
                mlflow.log_artifact(str(path))
