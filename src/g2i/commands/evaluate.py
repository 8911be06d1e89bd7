"""g2i evaluate: Table 1, the gene-to-image fidelity report and Figures 2-3 from the generated sets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import add_common_arguments, model_names, resolved_params

NAME = "evaluate"
HELP = "Table 1 (PSNR, SSIM, MS-SSIM, FID / FD / KID), fidelity report, Fig. 2 and Fig. 3"
DESCRIPTION = ("Score every model's generated sets (data/generated/<model>/) against the real slices: Table 1 "
               "image quality, the APOE e4 dose sweep vs the synthetic cohort's ground truth, label fidelity, the "
               "memorisation audit, and the paper's Fig. 2 (samples) and Fig. 3 (group differences). One MLflow run "
               "per model plus a summary run with the tables and figures.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--models", nargs="+", default=None,
                        help="model names under --generated (default: params.yaml `variants`, GANs then diffusion)")
    parser.add_argument("--generated", type=Path, default=Path("data/generated"))
    parser.add_argument("--out", type=Path, default=Path("reports/evaluate"))
    parser.add_argument("--autoencoder", type=Path, default=Path("models/autoencoder"),
                        help="the trained autoencoder: its reconstructions measure how much of the e4 effect survives")
    parser.add_argument("--ground-truth", type=Path, default=None,
                        help="the synthetic cohort's truth (default: synthetic/ground_truth.csv under params data.root; "
                             "absent for real ADNI: the sweep gets no target)")


def run(args: argparse.Namespace) -> None:
    import mlflow
    import pandas as pd

    from ..config import repo_root
    from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
    from ..evaluation import evaluate as ev
    from ..evaluation import fidelity, figures, tables
    from ..evaluation import truth_fidelity as tf
    from ..evaluation.classifier import ClassifierConfig
    from ..io.atomic import atomic_file, write_json
    from ..io.jsonable import json_safe
    from ..tracking import flatten, log_new_params, numeric_metrics, run_tags, start_run
    from ..vocabulary import display_name, pipeline_models

    params = resolved_params(args)
    args.models = model_names(args.models) or pipeline_models(params)
    cfg = params["evaluate"]
    root = repo_root()
    paths = ProcessedPaths()
    paths.check()
    splits = [SliceGenotypeDataset(paths, s) for s in ("train", "val", "test")]
    print("training the feature CNN on the real training slices ...")
    ref = ev.RealReference(*splits, ClassifierConfig.from_params(params["classify"]["classifier"]), int(cfg["seed"]),
                           cfg.get("inception_weights"))
    truth = validation = None
    if args.ground_truth is None:
        from ..data.raw import RawInputs

        args.ground_truth = RawInputs.from_params(params["data"], root).ground_truth
    if args.ground_truth.is_file():
        import numpy as np

        index = pd.read_csv(paths.slices_dir / "index.csv")
        slices = np.load(paths.slices_dir / "slices.npy").astype(np.float32)
        gt = pd.read_csv(args.ground_truth)
        validation = fidelity.validate_ventricle_measure(slices, index, gt)
        implied = fidelity.ground_truth_apoe_effect(params["synthesize"]["effects"], slices=slices, index=index,
                                                    ground_truth=gt)
        truth, source = fidelity.planted_truth(implied)
        print(f"planted e4 effect on log slice area: {truth['log_area_per_allele']:+.4f} per allele ({source})")

    truth_ref = None
    if truth is not None:
        print("measuring the real slices against the planted truth (ceiling, autoencoder) ...")
        try:
            truth_ref = tf.TruthReference(*splits, ref.x_train, ref.x_test, gt, params["synthesize"]["effects"],
                                          truth["log_area_per_allele"],
                                          reconstructions=tf.reconstructions(args.autoencoder, ref.x_train),
                                          seed=int(cfg["seed"]))
        except ValueError as exc:   # e.g. a cohort too small for the intervals: report it, keep the tables
            print(f"warning: no truth measures: {exc}", file=sys.stderr)

    quality, fidelity_results, truth_results = {}, {}, {}
    for model in args.models:
        print(f"evaluating {model} ...")
        folder = args.generated / model
        quality[model] = ev.image_quality(folder, ref, cfg)
        fidelity_results[model] = ev.gene_fidelity(folder, ref, cfg, truth)
        if truth_ref is not None:
            truth_results[model] = tf.model_truth_fidelity(folder, truth_ref, ref.cnn, ref.f_train,
                                                           fidelity_results[model]["apoe_sweep"])
            fidelity_results[model]["truth"] = truth_results[model]
        with start_run(root, f"evaluate-{model}", run_tags(root, params["profile"], variant=model, stage="evaluate")):
            log_new_params({"variant": model, "profile": params["profile"], **dict(flatten({"evaluate": cfg}))})
            mlflow.log_metrics(numeric_metrics(json_safe({"table1": quality[model],
                                                          "fidelity": fidelity_results[model],
                                                          "truth": tf.headline(truth_results.get(model))})))

    args.out.mkdir(parents=True, exist_ok=True)
    figure2, figure3 = args.out / "fig2_samples.png", args.out / "fig3_group_differences.png"
    figures.figure2(args.models, ref, args.generated, figure2)
    agreement = figures.figure3(args.models, ref, args.generated, figure3)
    table1 = tables.table1_markdown(quality, ref.inception_reason)
    report = tables.fidelity_markdown(fidelity_results, truth, validation)
    if truth_ref is not None:
        report += "\n" + tables.truth_markdown(truth_ref, truth_results, display_name)
    for name, text in (("table1.md", table1), ("fidelity.md", report)):
        with atomic_file(args.out / name, "w") as handle:
            handle.write(text)
    metrics = json_safe({model: {**quality[model], "fig3_ad_cn_correlation_with_real": agreement.get(model),
                                 **tf.headline(truth_results.get(model))}
                         for model in args.models}
                        | ({"real": tf.headline_real(truth_ref)} if truth_ref is not None else {}))
    write_json(args.out / "metrics.json", metrics)
    write_json(args.out / "fidelity.json", json_safe({"ground_truth": truth, "measure_validation": validation,
                                                   "identifiability": truth_ref.summary() if truth_ref else None,
                                                   "models": fidelity_results}))
    with start_run(root, "evaluate-summary", run_tags(root, params["profile"], stage="evaluate")):
        for path in (figure2, figure3, args.out / "table1.md", args.out / "fidelity.md"):
            mlflow.log_artifact(str(path), "evaluate")
        if truth_ref is not None:   # the identifiability ceiling and the autoencoder's share of it
            mlflow.log_metrics(numeric_metrics(json_safe({"truth": tf.headline_real(truth_ref)})))
    print(table1)
    print(report)

