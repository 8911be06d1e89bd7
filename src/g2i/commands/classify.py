"""g2i classify: Table 2, CN / MCI / AD classification trained on real vs real + generated slices.

Outputs (under --out):

    table2.md     Table 2 (mean and 95 % t-interval over seeds per metric), one sentence per row on whether it
                  changed accuracy against real only, and per augmented row against the class-balanced
                  control (REAL_BALANCED; paired over seeds); with classify.real_fractions
                  below 1, a "Real-data scarcity" section (accuracy per fraction of the real subjects);
                  rendered by g2i.evaluation.tables.table2_markdown.
    metrics.json  the DVC metrics, shaped as `metrics_summary` documents.
    per_seed.json every row's full `evaluate_over_seeds` result (per-seed metrics and confusion matrices),
                  keyed by row name: "real", "real_balanced", "<model>", and "real@<f>", "<model>@<f>" etc.
                  for fractions f < 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import add_common_arguments, model_names, resolved_params

NAME = "classify"
HELP = "Table 2: the paper's 2-layer CNN on real slices alone and on real + generated slices, several seeds"
DESCRIPTION = ("Train the paper's 2-layer CNN for 3-way CN/MCI/AD classification on the real training slices "
               "alone, on the real slices with each class topped up to sample.per_class by repeating its own slices "
               "(the class-balanced control), then on real + each model's generated slices filled to "
               "sample.per_class per class; test on "
               "the held-out test subjects; accuracy and macro precision / recall / F1 as mean, std and 95 % "
               "t-interval over classify.seeds. For each fraction f < 1 in classify.real_fractions, the same rows "
               "on a stratified subsample of f of the real training subjects (the real-data-scarcity curve). "
               "One MLflow run per row.")

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--models", nargs="+", default=None,
                        help="model names under --generated (default: params.yaml `variants`, GANs then diffusion)")
    parser.add_argument("--generated", type=Path, default=Path("data/generated"))
    parser.add_argument("--out", type=Path, default=Path("reports/classify"))


def row_name(name: str, fraction: float) -> str:
    """A row's key in per_seed.json and MLflow: "real" / "<model>" at fraction 1.0, else "real@0.25" etc."""
    from ..evaluation.classifier import fraction_key

    return name if float(fraction) == 1.0 else f"{name}@{fraction_key(fraction)}"


def _summary_row(name: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Row `name` of one block of rows: its summary, its paired difference with real only ("vs_real", every row
    but real only) and, for a model's row where the class-balanced control ran, with that ("vs_balanced")."""
    from ..evaluation.classifier import paired_difference
    from ..evaluation.tables import compared_with

    result = rows[name]
    row = {"mean": result["mean"], "std": result["std"], "ci95": result["ci95"], "n_train": result["n_train"]}
    for key, baseline in compared_with(name, rows).items():
        row[key] = {m: {"mean": d["mean"], "ci95": d["ci95"]} for m, d in paired_difference(result, rows[baseline]).items()}
    return row


def metrics_summary(results: Mapping[float, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The content of metrics.json (numbers as Python floats; None where undefined).

        {"real":    {"mean": {metric}, "std": {metric}, "ci95": {metric: [lo, hi] | null}, "n_train": int},
         "real_balanced": {... the same ..., "vs_real": {metric: {"mean": d, "ci95": [lo, hi] | null}}},
         "<model>": {... the same ..., "vs_real": {...}, "vs_balanced": {... as vs_real ...}},
         "scarcity": {"<f>": {"real": {... as above ..., "n_real": int},
                              "<model>": {... as above ..., "n_real": int}}}}

    Top-level rows are Table 2 (all real training subjects). "vs_real" is the mean per-seed difference
    row - real-only and its 95 % t-interval (paired over seeds); "vs_balanced" the same against the
    class-balanced control (present where that row is). "scarcity" appears only when
    classify.real_fractions holds a fraction below 1; its keys are the fractions as text ("0.25", ...,
    "1.0", ascending, 1.0 repeating the top-level rows so each fraction's block is complete), and "n_real"
    counts the real slices in the row's training set (n_train - n_real are generated, or repeated real ones in
    the class-balanced row).
    """
    from ..evaluation.classifier import fraction_key

    rows = results[1.0]
    out: dict[str, Any] = {name: _summary_row(name, rows) for name in rows}
    if len(results) > 1:
        out["scarcity"] = {fraction_key(f): {name: {**_summary_row(name, results[f]), "n_real": r["n_real"]}
                                             for name, r in results[f].items()}
                           for f in sorted(results)}
    return out


def _augment_counts(folder: Path) -> list[int]:
    """Generated images per class in `folder`/augment.npz, reading only the labels."""
    import numpy as np

    from ..vocabulary import DIAGNOSES
    from ..generation.sets import load_set

    path = folder / "augment.npz"
    if not path.is_file():
        load_set(folder, "augment")  # raises its "run the sample stage" error
    with np.load(path, allow_pickle=False) as data:
        labels = np.asarray(data["label"]).astype(np.int64)
    return np.bincount(labels, minlength=len(DIAGNOSES)).tolist()


def check_augment_suffices(counts: Mapping[str, Sequence[int]], real_counts: Sequence[int], per_class: int,
                           fraction: float) -> None:
    """G2IError before any training when a model's augment set cannot fill the smallest real subsample."""
    from ..errors import G2IError
    from ..vocabulary import DIAGNOSES

    short = [f"{name}: {d} has {have[c]}, needs {per_class - real_counts[c]}"
             for name, have in counts.items() for c, d in enumerate(DIAGNOSES)
             if have[c] < per_class - real_counts[c]]
    if short:
        raise G2IError(f"classify.real_fractions: at f = {fraction} the real training slices per class are "
                       f"{dict(zip(DIAGNOSES, real_counts))}, and filling each class to sample.per_class = "
                       f"{per_class} needs more generated images than the augment sets hold ({'; '.join(short)}). "
                       "The sample stage's augment set holds per_class minus the FULL real count per class "
                       "(g2i.generation.sets.augment_set); drop the fractions below 1 or regenerate larger "
                       "augment sets.")


def run(args: argparse.Namespace) -> None:
    import os

    import mlflow
    import numpy as np

    from ..config import repo_root
    from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
    from ..vocabulary import DIAGNOSES, pipeline_models
    from ..evaluation.classifier import ClassifierConfig, evaluate_rows, fill_to_per_class, scarcity_subsamples
    from ..evaluation.tables import REAL, REAL_BALANCED, table2_markdown
    from ..generation.sets import SampleConfig, load_set
    from ..io.atomic import atomic_file, write_json
    from ..io.jsonable import json_safe
    from ..tracking import flatten, log_new_params, numeric_metrics, run_tags, start_run

    params = resolved_params(args)
    args.models = model_names(args.models) or pipeline_models(params)
    root = repo_root()
    section = params["classify"]
    cfg = ClassifierConfig.from_params(section["classifier"])
    seeds = [int(s) for s in section["seeds"]]
    per_class = SampleConfig.from_params(params["sample"]).per_class
    paths = ProcessedPaths()
    paths.check()
    train, test = SliceGenotypeDataset(paths, "train"), SliceGenotypeDataset(paths, "test")
    x_train, x_test = train.array(), test.array()
    n_test = {d: int((test.labels == i).sum()) for i, d in enumerate(DIAGNOSES)}
    subjects = train.index["PTID"].to_numpy().astype(str)
    keep = scarcity_subsamples(subjects, train.labels, section)
    fractions = sorted(keep)
    real_subjects = {f: {d: len(set(subjects[keep[f]][train.labels[keep[f]] == i])) for i, d in enumerate(DIAGNOSES)}
                     for f in fractions}
    smallest = fractions[0]
    if smallest < 1:  # fail before hours of training, not at the first small fraction
        check_augment_suffices({name: _augment_counts(args.generated / name) for name in args.models},
                               np.bincount(train.labels[keep[smallest]], minlength=len(DIAGNOSES)).tolist(),
                               per_class, smallest)
    order = list(reversed(fractions))   # 1.0 (Table 2) first
    training_sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n_real: dict[str, int] = {}
    rows = [REAL, REAL_BALANCED, *args.models]
    for name in rows:
        augment = None if name in (REAL, REAL_BALANCED) else load_set(args.generated / name, "augment")
        for fraction in order:
            real_x, real_y = x_train[keep[fraction]], train.labels[keep[fraction]]
            if name == REAL:
                images, labels = real_x, real_y
            elif name == REAL_BALANCED:   # the fill drawn from the real slices themselves, with replacement
                images, labels, _ = fill_to_per_class(real_x, real_y, real_x, real_y, per_class, seed=0, replace=True)
            else:
                images, labels, _ = fill_to_per_class(real_x, real_y, augment["images"].astype(np.float32),
                                                      augment["label"], per_class, seed=0)
            training_sets[row_name(name, fraction)], n_real[row_name(name, fraction)] = (images, labels), len(real_y)
        del augment
    n_jobs = int(section["n_jobs"]) or os.cpu_count() or 1
    print(f"Table 2: {len(training_sets)} training sets x {len(seeds)} seeds, {n_jobs} at a time ...")
    evaluated = evaluate_rows(training_sets, x_test, test.labels, cfg, seeds, n_jobs=n_jobs)
    results: dict[float, dict[str, dict]] = {f: {} for f in order}
    for name in rows:
        for fraction in order:
            row = row_name(name, fraction)
            result = {**evaluated[row], "real_fraction": fraction, "n_real": n_real[row]}
            results[fraction][name] = result
            with start_run(root, f"classify-{row}", run_tags(root, params["profile"], variant=row, stage="classify")):
                log_new_params({"variant": row, "profile": params["profile"], "real_fraction": str(fraction),
                                **dict(flatten({"classify": section, "sample.per_class": per_class}))})
                ci = {m: {"lo": v[0], "hi": v[1]} for m, v in result["ci95"].items() if v is not None}
                mlflow.log_metrics(numeric_metrics({"mean": result["mean"], "std": result["std"], "ci95": ci,
                                                    "n_train": result["n_train"], "n_real": result["n_real"]}))
    table = table2_markdown(results, seeds, n_test, real_subjects, per_class)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out / "table2.md", "w") as handle:
        handle.write(table)
    write_json(args.out / "metrics.json", json_safe(metrics_summary(results)))
    write_json(args.out / "per_seed.json", json_safe({row_name(name, f): r for f, rows in results.items()
                                                      for name, r in rows.items()}))
    with start_run(root, "classify-summary", run_tags(root, params["profile"], stage="classify")):
        mlflow.log_artifact(str(args.out / "table2.md"), "classify")
    print(table)
