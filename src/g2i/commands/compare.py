"""g2i compare: one row per model with every headline number, as a table and as one MLflow run per model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import add_common_arguments, resolved_params

NAME = "compare"
HELP = "every model's headline numbers side by side (reports/compare) and as one MLflow run per model"
DESCRIPTION = ("Collect Table 1, the fidelity against the planted truth and Table 2 per model into reports/compare/"
               "models.{json,md}, and log one MLflow run per model (run name model-<variant>) that carries its params "
               "(from its train and sample runs), every headline metric, the processed data it was trained on (as an "
               "MLflow dataset whose digest is DVC's hash) and the tags variant / family / profile / commit / data "
               "hash. The model's latest train / sample / evaluate / classify runs are nested under it, so selecting "
               "the model runs in the MLflow UI compares every number at once.")

CHILD_STAGES = ("train", "train_gan", "sample", "evaluate", "classify")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--evaluation", type=Path, default=Path("reports/evaluate"),
                        help="the evaluate stage's reports (metrics.json, fidelity.json)")
    parser.add_argument("--classify", type=Path, default=Path("reports/classify/metrics.json"),
                        help="Table 2 (the classify stage)")
    parser.add_argument("--out", type=Path, default=Path("reports/compare"), help="models.json and models.md")


def _read(path: Path, stage: str) -> dict:
    from ..errors import G2IError

    if not path.is_file():
        raise G2IError(f"{path}: missing; run the {stage} stage first (dvc repro)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise G2IError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def processed_digest(root: Path) -> dict[str, str]:
    """DVC's hashes of the processed data the models read (dvc.lock), keyed by path; {} outside DVC."""
    import yaml

    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    digests = {}
    for stage in ("slices", "split", "genotypes"):
        for out in (stages.get(stage) or {}).get("outs") or []:
            digests[out["path"]] = str(out.get("md5", ""))
    return digests


def log_model_runs(root: Path, rows: dict, profile: str, names: dict[str, str], families: dict[str, str]) -> list[str]:
    """One MLflow run and one logged model per model with its headline metrics; its latest stage runs become
    the run's children. Returns the run ids."""
    import time

    import mlflow
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Metric, Param, RunTag

    from ..tracking import EXPERIMENT, EXPERIMENT_KIND, run_tags, tracking_uri

    mlflow.set_tracking_uri(tracking_uri(root))
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
    digests = processed_digest(root)
    created = []
    for model, row in rows.items():
        runs = client.search_runs([experiment_id], f"tags.`g2i.variant` = '{model}' and tags.`g2i.profile` = '{profile}'",
                                  order_by=["attributes.start_time DESC"], max_results=500)
        children = {}
        for run in runs:
            stage = run.data.tags.get("g2i.stage")
            if stage in CHILD_STAGES and stage not in children:
                children[stage] = run
        tags = {**run_tags(root, profile, variant=model, stage="model", family=families[model]),
                "mlflow.note.content": f"{names[model]}: every headline number of this model; its stage runs are "
                                       "nested under it (reports/compare/models.md)"}
        run = client.create_run(experiment_id, run_name=f"model-{model}", tags=tags)
        params = {}
        for stage in ("train", "train_gan", "sample"):
            if stage in children:
                params.update(children[stage].data.params)
        params.update({"variant": model, "profile": profile})
        items = sorted(params.items())
        for start in range(0, len(items), 100):   # MLflow takes at most 100 params per batch
            client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in items[start:start + 100]])
        # the trained generator as an MLflow 3 logged model (its files stay in DVC's cache: an external
        # model), so the experiment's model view lists every model with the numbers linked to it
        logged = mlflow.create_external_model(
            name=model, source_run_id=run.info.run_id, experiment_id=experiment_id, model_type=families[model],
            tags={"g2i.variant": model, "g2i.family": families[model], "g2i.profile": profile,
                  "g2i.location": f"models/{model}/ (DVC-tracked)"})
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, 0, model_id=logged.model_id, run_id=run.info.run_id)
                   for key, value in row.items() if value is not None]
        client.log_batch(run.info.run_id, metrics=metrics,
                         tags=[RunTag("g2i.children", ",".join(sorted(children)))])
        if digests:
            from mlflow.data.dataset_source_registry import get_registered_sources
            from mlflow.entities import DatasetInput, InputTag

            # MLflow registers its local-file source class at run time; pick it by its source type
            local = next(s for s in get_registered_sources() if s._get_source_type() == "local")
            for path, digest in digests.items():
                dataset = MetaDataset(source=local((root / path).as_uri()), name=path, digest=digest[:36])
                client.log_inputs(run.info.run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=[
                    InputTag("mlflow.data.context", "train"), InputTag("g2i.profile", profile)])])
        client.set_terminated(run.info.run_id)
        for child in children.values():
            client.set_tag(child.info.run_id, "mlflow.parentRunId", run.info.run_id)
        created.append(run.info.run_id)
    return created


def run(args: argparse.Namespace) -> None:
    from ..config import repo_root
    from ..io.atomic import atomic_file, write_json
    from ..reports.model_table import model_rows, render_markdown
    from ..vocabulary import display_name, family

    params = resolved_params(args)
    rows = model_rows(_read(args.evaluation / "metrics.json", "evaluate"),
                      _read(args.evaluation / "fidelity.json", "evaluate"), _read(args.classify, "classify"))
    names = {model: display_name(model) for model in rows}
    families = {model: family(model) for model in rows}
    write_json(args.out / "models.json", rows)
    with atomic_file(args.out / "models.md", "w") as handle:
        handle.write(render_markdown(rows, names))
    log_model_runs(repo_root(), rows, params["profile"], names, families)
    print(f"compare: {len(rows)} models -> {args.out / 'models.md'} and one MLflow run each (model-<variant>)")
