"""Table 1 (image quality), the gene-to-image fidelity report and Figures 2-3, from the generated sets.

Per model (read from data/generated/<model>/, made by `sample`):
  PSNR, SSIM, MS-SSIM      each generated test image vs the real slice of the subject whose genotype and
                           diagnosis conditioned it (higher = closer to that subject)
  pairwise SSIM / MS-SSIM  between generated test images: the paper's "MS-SSIM, SSIM (lower is better)",
                           a diversity / mode-collapse score, named `*_pairwise` to say what it is
  FID                      Inception-V3 pool features, only with a user-supplied weights file
  FD_cnn, KID_cnn          Frechet distance and KID in the feature space of a CNN trained on the REAL
                           training slices (not Inception: no ImageNet weights are shipped), generated
                           images (test + augmentation sets) vs the real training slices
Fidelity: APOE e4 dose sweep on fixed noise -> lateral-ventricle area (vs the synthetic cohort's ground
truth), the panel-shuffle control, label fidelity (the real-trained CNN recovers the conditioning label)
and a memorisation audit (nearest-training-slice SSIM, with held-out real slices as the baseline).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.dataset import SliceGenotypeDataset
from ..vocabulary import DIAGNOSES, display_name
from . import fidelity, image_metrics
from .classifier import ClassifierConfig, extract_features, predict, train_classifier
from ..generation.sets import DOSES, load_set


def real_images(dataset: SliceGenotypeDataset) -> np.ndarray:
    """All slices of a split as N x H x W float32."""
    return np.stack([np.asarray(dataset.images[r], dtype=np.float32) for r in dataset.index["row"]])


def feature_cnn(train: SliceGenotypeDataset, cfg: ClassifierConfig, seed: int):
    """FD_cnn's feature network, trained on the real training slices; returns (cnn, x_train, f_train).
    `sample` (to choose the guidance scale) and `evaluate` build it from the same data, config and seed."""
    x_train = real_images(train)
    cnn = train_classifier(x_train, train.labels, cfg, seed)
    return cnn, x_train, extract_features(cnn, x_train)


class RealReference:
    """The real slices per split and the feature CNN trained on the real training slices."""

    def __init__(self, train: SliceGenotypeDataset, val: SliceGenotypeDataset, test: SliceGenotypeDataset,
                 cfg: ClassifierConfig, seed: int, inception_weights: str | None):
        self.train, self.val, self.test = train, val, test
        self.x_val, self.x_test = real_images(val), real_images(test)
        self.cnn, self.x_train, self.f_train = feature_cnn(train, cfg, seed)
        self.real_test_accuracy = float((predict(self.cnn, self.x_test) == test.labels).mean())
        self.inception, self.inception_reason, self.i_train = None, "", None
        if inception_weights:
            from .inception import inception_features, load_inception

            try:
                self.inception = load_inception(inception_weights)
                self.i_train = inception_features(self.x_train, self.inception)
            except (FileNotFoundError, ValueError) as exc:
                self.inception_reason = str(exc).splitlines()[0]
        else:
            self.inception_reason = "no Inception-V3 weights file (set evaluate.inception_weights)"


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def image_quality(model_dir: Path, ref: RealReference, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Table 1's numbers for one model."""
    test, augment = load_set(model_dir, "test"), load_set(model_dir, "augment")
    generated = test["images"].astype(np.float32)
    real = ref.x_test[test["row"]]
    max_pairs, seed = int(cfg["max_pairs"]), int(cfg["seed"])
    all_generated = np.concatenate([generated, augment["images"].astype(np.float32)])
    features = extract_features(ref.cnn, all_generated)
    kid_mean, kid_std = image_metrics.kernel_inception_distance(
        features, ref.f_train, subset_size=min(int(cfg["kid_subset_size"]), len(features), len(ref.f_train)), seed=seed)
    out = {
        "n_generated_test": int(len(generated)), "n_generated_all": int(len(all_generated)),
        "psnr": image_metrics.mean_finite(image_metrics.psnr(generated, real)),
        "ssim": float(image_metrics.ssim_pairs(generated, real).mean()),
        "ms_ssim": float(image_metrics.ms_ssim_pairs(generated, real).mean()),
        "ssim_pairwise": image_metrics.pairwise_similarity(generated, "ssim", max_pairs, seed),
        "ms_ssim_pairwise": image_metrics.pairwise_similarity(generated, "ms_ssim", max_pairs, seed),
        "fd_cnn": image_metrics.frechet_distance(features, ref.f_train),
        "kid_cnn": kid_mean, "kid_cnn_std": kid_std,
        "fid": None, "fid_note": ref.inception_reason,
    }
    if ref.inception is not None:
        from .inception import inception_features

        out["fid"] = image_metrics.frechet_distance(inception_features(all_generated, ref.inception), ref.i_train)
        out["fid_note"] = "Inception-V3 pool3, generated (test + augmentation) vs real training slices"
    return out


def gene_fidelity(model_dir: Path, ref: RealReference, cfg: Mapping[str, Any], truth: dict | None) -> dict[str, Any]:
    """APOE sweep, panel-shuffle control, label fidelity and memorisation audit for one model."""
    cf = load_set(model_dir, "counterfactual")
    areas = {d: fidelity.lateral_ventricle_area(cf[f"dose_{d}"].astype(np.float32)) for d in DOSES}
    sweep = fidelity.counterfactual_effect(areas)
    original = fidelity.lateral_ventricle_area(cf["original"].astype(np.float32))
    shuffled = fidelity.lateral_ventricle_area(cf["panel_shuffled"].astype(np.float32))
    ok = (original > 0) & (shuffled > 0)
    log_ratio = np.log(shuffled[ok] / original[ok])
    identical = bool(np.array_equal(cf["dose_0"], cf["dose_2"]))
    test, augment = load_set(model_dir, "test"), load_set(model_dir, "augment")
    generated = np.concatenate([test["images"], augment["images"]]).astype(np.float32)
    labels = np.concatenate([test["label"], augment["label"]])
    predicted = predict(ref.cnn, generated)
    audit = fidelity.memorisation_audit(test["images"].astype(np.float32), ref.x_train,
                                        threshold=float(cfg["memorisation_threshold"]), reference=ref.x_test)
    out = {
        "apoe_sweep": {k: v for k, v in sweep.items() if not isinstance(v, np.ndarray)},
        "apoe_images_identical_across_doses": identical,
        "panel_shuffle": {"mean_log_ratio": float(log_ratio.mean()) if len(log_ratio) else None,
                          "mean_abs_log_ratio": float(np.abs(log_ratio).mean()) if len(log_ratio) else None,
                          "n": int(ok.sum())},
        "label_fidelity": {"accuracy": float((predicted == labels).mean()), "n": int(len(labels)),
                           "per_class": {DIAGNOSES[c]: float((predicted[labels == c] == c).mean())
                                         for c in range(3) if (labels == c).any()},
                           "real_test_accuracy": ref.real_test_accuracy},
        "memorisation": {k: v for k, v in audit.items() if not isinstance(v, np.ndarray) and k != "reference"}
                        | {"reference": {k: v for k, v in audit.get("reference", {}).items()
                                         if not isinstance(v, np.ndarray)}},
    }
    if truth is not None:
        expected = truth["log_area_per_allele"]
        got = sweep["effect"]
        out["apoe_vs_truth"] = {"expected_log_area_per_allele": expected, "measured": got,
                                "same_direction": bool(got is not None and np.sign(got) == np.sign(expected) and got != 0),
                                "ratio_measured_to_expected": _finite(got / expected) if got is not None else None,
                                "truth_within_ci": bool(sweep["ci95"][0] <= expected <= sweep["ci95"][1])
                                if sweep.get("ci95") else False}
    return out


def json_safe(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return _finite(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/c"
    return f"{value:.{digits}f}"


def table1_markdown(quality: Mapping[str, Mapping[str, Any]], fid_note: str) -> str:
    lines = ["# Table 1: image quality of generated slices", "",
             "PSNR, SSIM, MS-SSIM: generated vs the real slice of the conditioning subject (higher = closer). "
             "`pairwise` columns: similarity BETWEEN generated images, the paper's MS-SSIM / SSIM column "
             "(lower = more diverse; near 1 = mode collapse). FD_cnn / KID_cnn: Frechet distance and KID in the "
             "features of a CNN trained on the real training slices (lower = closer to real). "
             f"FID (Inception-V3): {fid_note or 'computed'}.", "",
             "| Model | PSNR ↑ | SSIM ↑ | MS-SSIM ↑ | FID ↓ | FD_cnn ↓ | KID_cnn ↓ | MS-SSIM pairwise ↓ | SSIM pairwise ↓ | n |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for model, q in quality.items():
        lines.append(f"| {display_name(model)} | {_fmt(q['psnr'], 2)} | {_fmt(q['ssim'])} | {_fmt(q['ms_ssim'])} | "
                     f"{_fmt(q['fid'], 2)} | {_fmt(q['fd_cnn'], 3)} | {_fmt(q['kid_cnn'], 4)} | "
                     f"{_fmt(q['ms_ssim_pairwise'])} | {_fmt(q['ssim_pairwise'])} | {q['n_generated_test']} |")
    return "\n".join(lines) + "\n"


def fidelity_markdown(results: Mapping[str, Mapping[str, Any]], truth: dict | None, validation: dict | None) -> str:
    lines = ["# Gene-to-image fidelity", ""]
    if truth is not None:
        lines += [f"Ground truth (synthetic cohort's generative model): +{truth['e4_log_per_allele']:.3f} log "
                  f"ventricle volume per e4 allele, i.e. {truth['log_area_per_allele']:+.4f} log slice area per allele "
                  f"(area ~ volume^{truth['area_exponent']:.2f}); a ratio of {math.exp(truth['log_area_per_allele']):.3f} "
                  "per allele."]
    else:
        lines += ["No ground truth: the inputs are not the synthetic cohort, so the sweep is reported without a target."]
    if validation:
        lines += ["", f"Area measure validated on the real slices: Spearman rho {validation['spearman_rho']:.3f} with the "
                      f"3D ventricle volume (n = {validation['n']})."]
    lines += ["", "## APOE e4 dose sweep (same noise and label, dose 0 / 1 / 2)", "",
              "| Model | log area per allele (95 % CI) | ratio per allele | monotone | vs truth | panel shuffle mean abs log ratio |",
              "|---|---|---|---|---|---|"]
    for model, r in results.items():
        s, vs = r["apoe_sweep"], r.get("apoe_vs_truth")
        ci = s.get("ci95") or [None, None]
        verdict = "images identical (no genotype input)" if r["apoe_images_identical_across_doses"] else (
            "n/a" if vs is None else
            f"{'same' if vs['same_direction'] else 'opposite/none'} direction, {_fmt(vs['ratio_measured_to_expected'], 2)}x size"
            f"{', truth inside CI' if vs['truth_within_ci'] else ''}")
        lines.append(f"| {display_name(model)} | {_fmt(s.get('effect'), 4)} ({_fmt(ci[0], 4)}, {_fmt(ci[1], 4)}) | "
                     f"{_fmt(s.get('ratio_per_allele'), 3)} | {_fmt(s.get('fraction_monotone'), 2)} | {verdict} | "
                     f"{_fmt(r['panel_shuffle']['mean_abs_log_ratio'], 4)} |")
    lines += ["", "## Label fidelity and memorisation", "",
              "Label fidelity: accuracy of a CNN trained on real training slices at recovering the diagnosis each "
              "generated image was conditioned on (its accuracy on the real test slices is the ceiling to compare with). "
              "Memorisation: SSIM of each generated test image to its nearest training slice; the reference row is "
              "held-out REAL slices against the same training slices.", "",
              "| Model | label fidelity | real-test accuracy | nn-SSIM mean | nn-SSIM max | > threshold | real reference > threshold |",
              "|---|---|---|---|---|---|---|"]
    for model, r in results.items():
        lf, m = r["label_fidelity"], r["memorisation"]
        lines.append(f"| {display_name(model)} | {_fmt(lf['accuracy'], 3)} | {_fmt(lf['real_test_accuracy'], 3)} | "
                     f"{_fmt(m.get('mean'), 3)} | {_fmt(m.get('max'), 3)} | {_fmt(m.get('fraction_above_threshold'), 3)} | "
                     f"{_fmt(m.get('reference', {}).get('fraction_above_threshold'), 3)} |")
    lines += ["", verdict_paragraph(results, truth)]
    return "\n".join(lines) + "\n"


def verdict_paragraph(results: Mapping[str, Mapping[str, Any]], truth: dict | None) -> str:
    """One sentence per model on whether it reproduces the APOE effect, the paper's model first."""
    order = sorted(results, key=lambda m: (m != "g2i_l_att", m))
    parts = []
    for model in order:
        r, s = results[model], results[model]["apoe_sweep"]
        if r["apoe_images_identical_across_doses"]:
            parts.append(f"{display_name(model)} ignores the genotype by construction (identical images at every dose).")
            continue
        effect, ci = s.get("effect"), s.get("ci95") or [None, None]
        if truth is None or effect is None:
            parts.append(f"{display_name(model)}: {_fmt(effect, 4)} log area per allele.")
            continue
        vs = r["apoe_vs_truth"]
        significant = ci[0] is not None and (ci[0] > 0 or ci[1] < 0)
        shuffle = r["panel_shuffle"]["mean_abs_log_ratio"]
        parts.append(f"{display_name(model)}: {effect:+.4f} log area per allele (95 % CI {ci[0]:+.4f} to {ci[1]:+.4f}) "
                     f"against {truth['log_area_per_allele']:+.4f} expected: "
                     f"{'same direction' if vs['same_direction'] else 'not the expected direction'}"
                     f"{' and distinguishable from zero' if significant else ', not distinguishable from zero'}, "
                     f"{_fmt(vs['ratio_measured_to_expected'], 2)}x the expected size"
                     + (f"; for scale, swapping in other subjects' panel SNPs (APOE kept) moves log area by "
                        f"{shuffle:.3f} on average (the cohort's polygenic score acts on the ventricles too)."
                        if shuffle is not None else "."))
    return "**Verdict.** " + " ".join(parts)


def figure2(models: Sequence[str], ref: RealReference, generated_dir: Path, path: Path) -> None:
    """Rows: real, then each model; columns CN, MCI, AD (the first test subject of each class)."""
    from ..reports.figures import image_grid

    picks = [int(np.flatnonzero(ref.test.labels == c)[0]) if (ref.test.labels == c).any() else None for c in range(3)]
    rows = {"Real": [ref.x_test[p] if p is not None else None for p in picks]}
    for model in models:
        test = load_set(generated_dir / model, "test")
        first = {int(r): i for i, r in reversed(list(enumerate(test["row"])))}
        rows[display_name(model)] = [test["images"][first[p]].astype(np.float32) if p in first else None for p in picks]
    image_grid(rows, list(DIAGNOSES), path, "Fig. 2: real test slices; generated\nfrom the same subjects' conditions")


def class_means(images: np.ndarray, labels: np.ndarray) -> list[np.ndarray | None]:
    return [images[labels == c].mean(0) if (labels == c).any() else None for c in range(3)]


def figure3(models: Sequence[str], ref: RealReference, generated_dir: Path, path: Path) -> dict[str, float]:
    """Mean image differences AD - CN and MCI - CN: real (train) slices, then each model's generated sets."""
    from ..reports.figures import image_grid

    def diffs(images, labels):
        mean = class_means(images, labels)
        return [None if mean[c] is None or mean[0] is None else mean[c] - mean[0] for c in (2, 1)]

    rows = {"Real": diffs(ref.x_train, ref.train.labels)}
    for model in models:
        test, augment = load_set(generated_dir / model, "test"), load_set(generated_dir / model, "augment")
        images = np.concatenate([test["images"], augment["images"]]).astype(np.float32)
        rows[display_name(model)] = diffs(images, np.concatenate([test["label"], augment["label"]]))
    real = rows["Real"]
    agreement = {}
    for model in models:  # how well each model's group difference map matches the real one
        generated = rows[display_name(model)]
        if real[0] is not None and generated[0] is not None:
            agreement[model] = float(np.corrcoef(real[0].ravel(), generated[0].ravel())[0, 1])
    limit = max(float(np.nanmax(np.abs(d))) for row in rows.values() for d in row if d is not None)
    image_grid(rows, ["AD − CN", "MCI − CN"], path, "Fig. 3: mean differences\nbetween diagnostic groups",
               cmap="RdBu_r", vmin=-limit, vmax=limit, colorbar="intensity difference")
    return agreement
