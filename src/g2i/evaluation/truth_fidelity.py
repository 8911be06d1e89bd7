"""Generated sets measured against the synthetic cohort's planted truth (issue: does the genotype move the image?).

Per evaluation run (`TruthReference`, the real side):
  ceiling        within-diagnosis e4 slope of log ventricle area on the REAL training and test slices:
                 the effect the data carry, all that any learner trained on them could recover
  autoencoder    the same slope on autoencoder reconstructions of the real training slices: if the
                 autoencoder already shrinks the effect, the latent diffusion model cannot restore it
  label effects  AD-CN and MCI-CN mean log-area differences of the real test slices
  measurement    log area against the planted log volume multiplier (exponent, residual SD), which
                 calibrates the simulated conditional-mean ceiling
Per model (`model_truth_fidelity`): the dose sweep as a ratio to the ceiling and to the truth, the
generated label effects as a ratio to the real ones, the conditional-mean r over test subjects next to
what a perfect generator reaches with the same k, and, when sampled, the classifier-free guidance sweep
(on validation subjects) with FD_cnn per w. Their Markdown is tables.truth_markdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..data.dataset import SliceGenotypeDataset
from ..imaging.slice_morphometry import lateral_ventricle_area
from ..vocabulary import codes_with_nan
from . import fidelity, image_metrics, truth
from .classifier import extract_features
from ..generation.sets import DOSES, load_set

N_SIM = 200   # simulations behind each conditional-r ceiling (its interval is their 2.5 / 97.5 percentiles)


def split_apoe4(dataset: SliceGenotypeDataset) -> np.ndarray:
    """The e4 dose each subject of a split is conditioned on (NaN where missing)."""
    return codes_with_nan(dataset.codes)[:, dataset.snps.index("APOE4")]


def log_areas_by_row(images: np.ndarray, rows: np.ndarray, n_rows: int) -> list[np.ndarray]:
    """Log ventricle area of each generated image, grouped by the subject row it was conditioned on."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(lateral_ventricle_area(images.astype(np.float32)))
    return [logs[rows == i] for i in range(n_rows)]


def _truth_rows(dataset: SliceGenotypeDataset, ground_truth: pd.DataFrame) -> pd.DataFrame:
    rows = dataset.index[["PTID"]].merge(ground_truth, on="PTID", how="left")
    if rows["DX"].isna().any():
        missing = rows.loc[rows["DX"].isna(), "PTID"].iloc[0]
        raise ValueError(f"ground_truth: no row for subject {missing} of the evaluation splits")
    return rows


class TruthReference:
    """The real slices' side of every truth measure (computed once per evaluation)."""

    def __init__(self, train: SliceGenotypeDataset, val: SliceGenotypeDataset, test: SliceGenotypeDataset,
                 x_train: np.ndarray, x_test: np.ndarray, ground_truth: pd.DataFrame, effects: Mapping[str, Any],
                 planted_log_area_per_allele: float, reconstructions: np.ndarray | None = None, seed: int = 0):
        self.effects, self.seed = effects, seed
        self.truth = planted_log_area_per_allele
        self.rows = {name: _truth_rows(ds, ground_truth) for name, ds in (("train", train), ("val", val),
                                                                          ("test", test))}
        self.expected = {name: truth.expected_log_volume(rows, effects) for name, rows in self.rows.items()}
        areas_train = lateral_ventricle_area(x_train)
        areas_test = lateral_ventricle_area(x_test)
        self.ceiling = truth.slope_on_images(areas_train, split_apoe4(train), train.labels)
        self.ceiling_test = truth.slope_on_images(areas_test, split_apoe4(test), test.labels)
        # What these very subjects drew: the same slope on the planted volume multiplier itself (log volume
        # per allele, no image involved). Set against the model's parameter it separates the luck of the
        # draw from any loss in the images or the area measure.
        self.drawn = {name: truth.slope_on_images(self.rows[name]["ventricle_scale_target"].to_numpy(np.float64),
                                                  split_apoe4(ds), ds.labels)
                      for name, ds in (("train", train), ("test", test))}
        self.planted_log_volume = float(fidelity._ventricle_effects(effects)["e4_log_per_allele"])
        self.autoencoder = None
        if reconstructions is not None:
            self.autoencoder = truth.slope_on_images(lateral_ventricle_area(reconstructions),
                                                     split_apoe4(train), train.labels)
            self.autoencoder["ratio_to_ceiling"] = truth.slope_ratio(self.autoencoder, self.ceiling)
        self.label_effects_real = truth.label_effects(areas_test, test.labels)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_target = np.log(self.rows["train"]["ventricle_scale_target"].to_numpy(np.float64))
            self.measurement = truth.measurement_noise(np.log(areas_train), log_target)
        # the real test slices are one draw per subject: their r should sit inside the k = 1 ceiling
        self.real_test_conditional = truth.conditional_mean_r(np.log(areas_test)[:, None], self.expected["test"])
        self.real_test_conditional["ceiling"] = self.r_ceiling("test", 1)

    def r_ceiling(self, split: str, k: Any) -> dict:
        return truth.conditional_r_ceiling(self.rows[split], self.effects, k, self.measurement["area_exponent"],
                                           self.measurement["measurement_sd"], n_sim=N_SIM, seed=self.seed)

    def conditional(self, split: str, images: np.ndarray, rows: np.ndarray) -> dict:
        """Conditional-mean r of generated images over one split's subjects, with the perfect-generator ceiling."""
        logs = log_areas_by_row(images, rows, len(self.expected[split]))
        out = truth.conditional_mean_r(logs, self.expected[split])
        counts = np.array([np.isfinite(x).sum() for x in logs])
        out["ceiling"] = self.r_ceiling(split, counts)
        out["ratio_to_ceiling"] = out["r"] / out["ceiling"]["r"] if out["ceiling"]["r"] else None
        return out

    def sweep_ratios(self, sweep: Mapping[str, Any]) -> dict:
        """A dose-sweep slope as ratios to the identifiability ceiling (Fieller) and to the planted truth."""
        lo, hi = sweep["ci95"]
        return {"to_ceiling": truth.slope_ratio(sweep, self.ceiling),
                "to_truth": {"ratio": sweep["effect"] / self.truth, "ci95": (lo / self.truth, hi / self.truth)}}

    def summary(self) -> dict:
        return {"ceiling_train": self.ceiling, "ceiling_test": self.ceiling_test, "truth": self.truth,
                "drawn_log_volume": {"planted": self.planted_log_volume, **self.drawn},
                "ceiling_to_truth": self.ceiling["slope"] / self.truth, "autoencoder": self.autoencoder,
                "label_effects_real_test": self.label_effects_real, "measurement": self.measurement,
                "real_test_conditional": self.real_test_conditional}


def _sweep(sets: Mapping[str, np.ndarray], prefix: str) -> dict:
    areas = {d: lateral_ventricle_area(sets[f"{prefix}dose_{d}"].astype(np.float32)) for d in DOSES}
    return fidelity.counterfactual_effect(areas)


def model_truth_fidelity(model_dir: Path, ref: TruthReference, cnn, f_train: np.ndarray,
                         sweep: Mapping[str, Any]) -> dict:
    """All truth measures of one model's generated sets (`sweep`: its counterfactual_effect result)."""
    test = load_set(model_dir, "test")
    images = test["images"].astype(np.float32)
    areas = lateral_ventricle_area(images)
    out: dict[str, Any] = {}
    try:   # a model whose images hold no measurable ventricles gets no figure, not a crashed evaluation
        out["sweep"] = ref.sweep_ratios(sweep)
        out["label_effects"] = truth.label_effects(areas, test["label"])
        out["label_effect_ratio"] = truth.label_effect_ratio(out["label_effects"], ref.label_effects_real)
        out["conditional"] = ref.conditional("test", images, test["row"])
        if (Path(model_dir) / "guidance.npz").is_file():
            out["guidance"] = guidance_sweep(load_set(model_dir, "guidance"), ref, cnn, f_train)
    except ValueError as exc:
        out["not_measurable"] = str(exc)
    return out


def guidance_sweep(sets: Mapping[str, np.ndarray], ref: TruthReference, cnn, f_train: np.ndarray) -> dict:
    """Per guidance point (w_dx, w_g): dose sweep (and its ratio to the ceiling), conditional r on the
    validation subjects and FD_cnn of those images (as `sample` measured them when it stored them);
    `chosen` / `chosen_genotype` = the scales `sample` picked on the validation subjects
    (`generated.choose_guidance`) and generated the model's other sets at."""
    per_w = {}
    w_g_all = sets["w_g"] if "w_g" in sets else sets["w"]
    for i, (w, w_g) in enumerate(zip(sets["w"], w_g_all)):
        images = sets[f"w{i}_val"].astype(np.float32)
        effect = _sweep(sets, f"w{i}_")
        fd = (float(sets["fd_cnn"][i]) if "fd_cnn" in sets
              else image_metrics.frechet_distance(extract_features(cnn, images), f_train))
        key = f"{float(w):g}" if w_g == w else f"{float(w):g}/g{float(w_g):g}"
        per_w[key] = {
            "w": float(w), "w_g": float(w_g),
            "sweep": {k: v for k, v in effect.items() if k in ("effect", "se", "ci95", "n")},
            "sweep_to_ceiling": truth.slope_ratio(effect, ref.ceiling),
            "conditional_val": ref.conditional("val", images, sets["val_row"]),
            "fd_cnn": fd,
            "label_error": float(sets["label_error"][i]) if "label_error" in sets else None,
        }
    chosen = float(sets["chosen"]) if "chosen" in sets else None
    chosen_g = float(sets["chosen_genotype"]) if "chosen_genotype" in sets else chosen
    return {"per_w": per_w, "chosen": chosen, "chosen_genotype": chosen_g,
            "rule": "on the validation subjects: w_dx with generated label effects closest to the real training "
                    "slices' (lowest FD_cnn for a model without a diagnosis input), then w_g with the lowest FD_cnn "
                    "at that w_dx; the model's test, augmentation and dose-sweep sets are generated at these scales"}


def reconstructions(autoencoder_dir: Path, x: np.ndarray) -> np.ndarray | None:
    """Autoencoder reconstructions of real slices (None when no autoencoder is saved there)."""
    if not (Path(autoencoder_dir) / "config.json").is_file():
        return None
    import torch

    from ..models.autoencoder import load_autoencoder, reconstruct

    return reconstruct(load_autoencoder(autoencoder_dir), torch.from_numpy(x)[:, None])[:, 0].numpy()


def headline(result: Mapping[str, Any] | None) -> dict:
    """The figures a reader checks first, flat for `dvc metrics show` (empty without a truth)."""
    if not result or "not_measurable" in result:
        return {}
    s, le, cond = result["sweep"], result["label_effect_ratio"], result["conditional"]
    (lo, hi), (rlo, rhi) = s["to_ceiling"]["ci95"], cond["ci95"]
    out = {"sweep_to_ceiling": s["to_ceiling"]["ratio"], "sweep_to_ceiling_ci95_lo": lo, "sweep_to_ceiling_ci95_hi": hi,
           "sweep_to_truth": s["to_truth"]["ratio"],
           "label_effect_ratio_ad_cn": le["AD-CN"]["ratio"], "label_effect_ratio_mci_cn": le["MCI-CN"]["ratio"],
           "conditional_r": cond["r"], "conditional_r_ci95_lo": rlo, "conditional_r_ci95_hi": rhi,
           "conditional_r_ceiling": cond["ceiling"]["r"]}
    if "guidance" in result and result["guidance"]["chosen"] is not None:
        out["guidance_chosen"] = result["guidance"]["chosen"]
        out["genotype_guidance_chosen"] = result["guidance"]["chosen_genotype"]
    return out


def headline_real(ref: TruthReference) -> dict:
    """Ceiling, autoencoder and truth, flat, under the `real` key of reports/evaluate/metrics.json."""
    out = {"planted_log_area_per_allele": ref.truth, "ceiling_slope": ref.ceiling["slope"],
           "ceiling_ci95_lo": ref.ceiling["ci95"][0], "ceiling_ci95_hi": ref.ceiling["ci95"][1],
           "test_slope": ref.ceiling_test["slope"], "conditional_r_test": ref.real_test_conditional["r"]}
    if ref.autoencoder is not None:
        out.update(autoencoder_slope=ref.autoencoder["slope"],
                   autoencoder_to_ceiling=ref.autoencoder["ratio_to_ceiling"]["ratio"])
    return out


__all__ = ["TruthReference", "model_truth_fidelity", "guidance_sweep", "reconstructions",
           "headline", "headline_real",
           "log_areas_by_row", "split_apoe4"]
