"""Table 1's numbers (image quality) and the gene-to-image fidelity numbers per model, from the generated sets.

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
Their Markdown is tables.py, Figures 2-3 figures.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..data.dataset import SliceGenotypeDataset
from ..imaging.slice_morphometry import lateral_ventricle_area
from ..io.jsonable import finite_or_none
from ..vocabulary import DIAGNOSES
from . import fidelity, image_metrics
from .classifier import ClassifierConfig, extract_features, feature_cnn, predict
from .memorisation import memorisation_audit
from ..generation.sets import DOSES, load_set


class RealReference:
    """The real slices per split and the feature CNN trained on the real training slices."""

    def __init__(self, train: SliceGenotypeDataset, val: SliceGenotypeDataset, test: SliceGenotypeDataset,
                 cfg: ClassifierConfig, seed: int, inception_weights: str | None):
        self.train, self.val, self.test = train, val, test
        self.x_val, self.x_test = val.array(), test.array()
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
    areas = {d: lateral_ventricle_area(cf[f"dose_{d}"].astype(np.float32)) for d in DOSES}
    sweep = fidelity.counterfactual_effect(areas)
    original = lateral_ventricle_area(cf["original"].astype(np.float32))
    shuffled = lateral_ventricle_area(cf["panel_shuffled"].astype(np.float32))
    ok = (original > 0) & (shuffled > 0)
    log_ratio = np.log(shuffled[ok] / original[ok])
    identical = bool(np.array_equal(cf["dose_0"], cf["dose_2"]))
    test, augment = load_set(model_dir, "test"), load_set(model_dir, "augment")
    generated = np.concatenate([test["images"], augment["images"]]).astype(np.float32)
    labels = np.concatenate([test["label"], augment["label"]])
    predicted = predict(ref.cnn, generated)
    audit = memorisation_audit(test["images"].astype(np.float32), ref.x_train,
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
                                "ratio_measured_to_expected": finite_or_none(got / expected) if got is not None else None,
                                "truth_within_ci": bool(sweep["ci95"][0] <= expected <= sweep["ci95"][1])
                                if sweep.get("ci95") else False}
    return out
