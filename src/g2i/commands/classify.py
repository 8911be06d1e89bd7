"""g2i classify: Table 2, CN / MCI / AD classification trained on real vs real + generated slices."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, model_names, resolved_params

NAME = "classify"
HELP = "Table 2: the paper's 2-layer CNN on real slices alone and on real + generated slices, several seeds"
DESCRIPTION = ("Train the paper's 2-layer CNN for 3-way CN/MCI/AD classification on the real training slices "
               "alone, then on real + each model's generated slices filled to sample.per_class per class; test on "
               "the held-out test subjects; accuracy and macro precision / recall / F1 as mean +- std over "
               "classify.seeds. One MLflow run per row.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--models", nargs="+", required=True, help="model names under --generated")
    parser.add_argument("--generated", type=Path, default=Path("data/generated"))
    parser.add_argument("--out", type=Path, default=Path("reports/classify"))


def table2_markdown(rows: dict, seeds: list[int], n_test: dict) -> str:
    from ..evaluation.classifier import METRICS
    from ..evaluation.evaluate import display_name

    lines = ["# Table 2: AD-stage classification (CN / MCI / AD)", "",
             f"The paper's 2-layer CNN; mean ± std over {len(seeds)} seeds {seeds}. Test set: held-out subjects "
             f"({', '.join(f'{k} {v}' for k, v in n_test.items())}). Augmented rows add generated slices until each "
             "class has sample.per_class training images.", "",
             "| Training data | n train | " + " | ".join(m.replace('_', ' ') for m in METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for name, result in rows.items():
        label = "Real only" if name == "real" else f"Real + {display_name(name)}"
        cells = [f"{result['mean'][m]:.3f} ± {result['std'][m]:.3f}" for m in METRICS]
        lines.append(f"| {label} | {result['n_train']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> None:
    import mlflow
    import numpy as np

    from ..config import repo_root
    from ..data.dataset import DIAGNOSES, ProcessedPaths, SliceGenotypeDataset
    from ..evaluation.classifier import ClassifierConfig, evaluate_over_seeds, fill_to_per_class
    from ..evaluation.evaluate import json_safe, real_images
    from ..evaluation.generated import SampleConfig, load_set
    from ..io.atomic import atomic_file, write_json
    from ..tracking import flatten, log_new_params, numeric_metrics, run_tags, start_run

    params = resolved_params(args)
    args.models = model_names(args.models)
    root = repo_root()
    cfg = ClassifierConfig.from_params(params["classify"]["classifier"])
    seeds = [int(s) for s in params["classify"]["seeds"]]
    per_class = SampleConfig.from_params(params["sample"]).per_class
    paths = ProcessedPaths()
    paths.check()
    train, test = SliceGenotypeDataset(paths, "train"), SliceGenotypeDataset(paths, "test")
    x_train, x_test = real_images(train), real_images(test)
    n_test = {d: int((test.labels == i).sum()) for i, d in enumerate(DIAGNOSES)}
    rows = {}
    for name in ["real", *args.models]:
        if name == "real":
            images, labels = x_train, train.labels
        else:
            augment = load_set(args.generated / name, "augment")
            images, labels, _ = fill_to_per_class(x_train, train.labels, augment["images"].astype(np.float32),
                                                  augment["label"], per_class, seed=0)
        print(f"classifier on {'real' if name == 'real' else 'real + ' + name} ({len(labels)} slices) ...")
        rows[name] = evaluate_over_seeds(images, labels, x_test, test.labels, cfg, seeds)
        with start_run(root, f"classify-{name}", run_tags(root, params["profile"], variant=name, stage="classify")):
            log_new_params({"variant": name, "profile": params["profile"],
                            **dict(flatten({"classify": params["classify"], "sample.per_class": per_class}))})
            mlflow.log_metrics(numeric_metrics({"mean": rows[name]["mean"], "std": rows[name]["std"],
                                                "n_train": rows[name]["n_train"]}))
    table = table2_markdown(rows, seeds, n_test)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out / "table2.md", "w") as handle:
        handle.write(table)
    write_json(args.out / "metrics.json", json_safe({name: {"mean": r["mean"], "std": r["std"], "n_train": r["n_train"]}
                                                     for name, r in rows.items()}))
    write_json(args.out / "per_seed.json", json_safe(rows))
    with start_run(root, "classify-summary", run_tags(root, params["profile"], stage="classify")):
        mlflow.log_artifact(str(args.out / "table2.md"), "classify")
    print(table)
