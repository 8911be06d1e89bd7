"""The generated image sets that `evaluate` and `classify` read, made by `sample` for one model.

    test            `per_subject` images for every test subject, conditioned on that subject's genotype
                    and diagnosis (Table 1 compares each with the subject's real slice)
    augment         per class, enough images to fill the classifier's training set to `per_class`
                    (conditions drawn from training subjects of that class; paper: 500 per class)
    counterfactual  for `n_counterfactual` training subjects: the same noise and label with the APOE e4
                    dose set to 0, 1 and 2, and with the panel SNPs shuffled across subjects (control)

A model is any `generate(genotypes, labels, seed) -> N x H x W images in [-1, 1]` (the diffusion
pipelines and the GANs alike); `genotypes` are floats with NaN for a missing call. One file per set
(.npz, images as float16), written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..data.dataset import SliceGenotypeDataset
from ..config import from_section
from ..errors import G2IError
from ..io.atomic import atomic_file
from ..vocabulary import DOSES, codes_with_nan

Generate = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
SETS = ("test", "augment", "counterfactual")


@dataclass(frozen=True)
class SampleConfig:
    """The evaluation sets' settings: params.yaml `sample:`, every field stated there."""

    per_subject: int              # generated images per test subject (paper: 3960 in all)
    per_class: int                # classifier training set filled to this many per class (paper: 500)
    n_counterfactual: int         # subjects in the APOE e4 dose sweep
    seed: int
    guidance_sweep: tuple[float, ...]        # classifier-free guidance scales w to compare (empty: no sweep)
    guidance_models: tuple[str, ...]         # diffusion models that get the sweep (it costs ~2x per w != 1)
    guidance_per_subject: int                # images per validation subject at each w
    genotype_guidance_sweep: tuple[float, ...]        # w_g tried at the chosen w_dx (models seeing both conditions)
    gan_batch_pixels: int                    # a GAN baseline's generation batch, in output pixels

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> "SampleConfig":
        # lists (or null: none) as tuples; a key left out is reported missing by from_section
        cfg = from_section(cls, section, "sample", **{key: tuple(section[key] or ()) for key in
                                                      ("guidance_sweep", "guidance_models", "genotype_guidance_sweep")
                                                      if key in section})
        if min(cfg.per_subject, cfg.per_class, cfg.n_counterfactual, cfg.guidance_per_subject, cfg.gan_batch_pixels) <= 0:
            raise G2IError("params.yaml: sample.per_subject, per_class, n_counterfactual, guidance_per_subject and "
                           "gan_batch_pixels must be positive")
        for key in ("guidance_sweep", "genotype_guidance_sweep"):
            bad = [w for w in getattr(cfg, key) if not (isinstance(w, (int, float)) and 0 <= w <= 20)]
            if bad:
                raise G2IError(f"params.yaml: sample.{key} holds {bad}; guidance scales must be numbers in [0, 20]")
        if cfg.genotype_guidance_sweep and not cfg.guidance_sweep:
            raise G2IError("params.yaml: sample.genotype_guidance_sweep needs sample.guidance_sweep (w_dx is chosen "
                           "there first)")
        return cfg


def _save(path: Path, **arrays: np.ndarray) -> None:
    with atomic_file(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_set(folder: str | Path, name: str) -> dict[str, np.ndarray]:
    path = Path(folder) / f"{name}.npz"
    if not path.is_file():
        raise G2IError(f"{path}: generated set missing; run `dvc repro` (the `sample` stage) first")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_set(generate: Generate, test: SliceGenotypeDataset, cfg: SampleConfig) -> dict[str, np.ndarray]:
    """`per_subject` images per test subject; `row` points at the subject's item in the test split."""
    rows = np.repeat(np.arange(len(test)), cfg.per_subject)
    images = generate(codes_with_nan(test.codes[rows]), test.labels[rows], cfg.seed)
    return {"images": images.astype(np.float16), "row": rows, "label": test.labels[rows],
            "ptid": test.index["PTID"].to_numpy()[rows].astype(str)}


def augment_set(generate: Generate, train: SliceGenotypeDataset, cfg: SampleConfig,
                min_real: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Per class c, per_class - min_real[c] images (at least 0) with genotypes of class-c training subjects.

    min_real: the fewest real slices per class that a classifier training set will hold (the smallest
    fraction of the real-data-scarcity curve, classify.real_fractions); default all of them."""
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for c in range(3):
        members = np.flatnonzero(train.labels == c)
        need = max(cfg.per_class - (len(members) if min_real is None else int(min_real[c])), 0)
        if need and not len(members):
            raise G2IError(f"no training subject of class {c}: cannot draw conditions for its generated images")
        rows.append(rng.choice(members, need, replace=True) if need else np.empty(0, dtype=int))
    rows = np.concatenate(rows).astype(int)
    images = generate(codes_with_nan(train.codes[rows]), train.labels[rows], cfg.seed + 1)
    return {"images": images.astype(np.float16), "row": rows, "label": train.labels[rows]}


def counterfactual_set(generate: Generate, train: SliceGenotypeDataset, cfg: SampleConfig) -> dict[str, np.ndarray]:
    """Dose sweep and shuffled-panel control on the same noise (one seed, one batch layout per call)."""
    if "APOE4" not in train.snps:
        raise G2IError("genotype table has no APOE4 column: no dose sweep possible")
    rows, rng = _counterfactual_rows(train, cfg)
    codes = codes_with_nan(train.codes[rows])
    labels = train.labels[rows]
    apoe = train.snps.index("APOE4")
    seed = cfg.seed + 3
    out: dict[str, np.ndarray] = {"row": rows, "label": labels, "apoe4": codes[:, apoe]}
    for dose in DOSES:
        swept = codes.copy()
        swept[:, apoe] = dose
        out[f"dose_{dose}"] = generate(swept, labels, seed).astype(np.float16)
    panel = [i for i in range(codes.shape[1]) if i != apoe]
    shuffled = codes.copy()
    shuffled[:, panel] = codes[rng.permutation(len(codes))][:, panel]  # other subjects' panels, own APOE4
    out["original"] = generate(codes, labels, seed).astype(np.float16)
    out["panel_shuffled"] = generate(shuffled, labels, seed).astype(np.float16)
    return out


def _counterfactual_rows(train: SliceGenotypeDataset, cfg: SampleConfig) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(cfg.seed + 2)
    return rng.choice(len(train), min(cfg.n_counterfactual, len(train)), replace=False), rng


GenerateAt = Callable[[float, float], Generate]   # (w_dx, w_g) -> generate


def guidance_set(generate_at: GenerateAt, train: SliceGenotypeDataset, val: SliceGenotypeDataset,
                 cfg: SampleConfig, pairs: Sequence[tuple[float, float]],
                 sets: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The classifier-free guidance sweep: for each (w_dx, w_g) in `pairs`, `guidance_per_subject` images per
    VALIDATION subject (guidance is chosen on these, never on the test subjects) and the APOE e4 dose sweep
    of the counterfactual subjects on the same noise as `counterfactual_set`. `sets`: an earlier sweep to
    extend (pairs already in it are not generated again).

    Keys: w (w_dx per pair), w_g; val_row / val_label; cf_row / cf_label; w<i>_val and w<i>_dose_<d> (the
    images of pair i). A single-scale point has w_g = w_dx.
    """
    if "APOE4" not in train.snps:
        raise G2IError("genotype table has no APOE4 column: no dose sweep possible")
    rows_val = np.repeat(np.arange(len(val)), cfg.guidance_per_subject)
    rows_cf, _ = _counterfactual_rows(train, cfg)
    codes_val, codes_cf = codes_with_nan(val.codes[rows_val]), codes_with_nan(train.codes[rows_cf])
    apoe = train.snps.index("APOE4")
    out: dict[str, np.ndarray] = dict(sets) if sets is not None else {
        "w": np.zeros(0), "w_g": np.zeros(0), "val_row": rows_val, "val_label": val.labels[rows_val],
        "cf_row": rows_cf, "cf_label": train.labels[rows_cf]}
    done = set(zip(out["w"].tolist(), out["w_g"].tolist()))
    for w, w_g in pairs:
        if (float(w), float(w_g)) in done:
            continue
        i = len(out["w"])
        generate = generate_at(float(w), float(w_g))
        out[f"w{i}_val"] = generate(codes_val, val.labels[rows_val], cfg.seed).astype(np.float16)
        for dose in DOSES:
            swept = codes_cf.copy()
            swept[:, apoe] = dose
            out[f"w{i}_dose_{dose}"] = generate(swept, train.labels[rows_cf], cfg.seed + 3).astype(np.float16)
        out["w"], out["w_g"] = np.append(out["w"], float(w)), np.append(out["w_g"], float(w_g))
        done.add((float(w), float(w_g)))
    return out


def _lowest(score: np.ndarray, candidates: Sequence[int], tie: np.ndarray) -> int:
    """The candidate with the lowest score (finite before NaN), the smaller `tie` value on a tie."""
    return min(candidates, key=lambda i: (not np.isfinite(score[i]), score[i] if np.isfinite(score[i]) else 0.0,
                                          tie[i]))


def choose_guidance(sets: Mapping[str, np.ndarray], fd: Callable[[np.ndarray], float],
                    label_error: Callable[[np.ndarray, np.ndarray], float] | None = None) -> dict:
    """The guidance a swept model's sets are generated at, from its validation images (no truth involved).

    w_dx (`guidance_scale`), over the single-scale points (w_g = w_dx): with `label_error` (models that see
    the diagnosis), the w whose generated AD-CN / MCI-CN log-area differences are closest to the real
    training slices'; else the w with the lowest FD_cnn (`fd`: FD_cnn of an image set). Why the label
    effects: FD_cnn, computed in a diagnosis classifier's feature space, does not penalise exaggerated
    class differences (the study's FD chose w = 3 with the AD-CN difference 1.8x the real one).
    w_g (`genotype_guidance_scale`), over the points at that w_dx: the lowest FD_cnn. A distribution
    distance, not the conditional-mean r: guidance that collapses each condition onto its mode lifts r above
    what a perfect generator reaches, so r rewards lost diversity. Ties go to the smaller scale.

    Returns {w, w_g, fd_cnn: per pair, label_error: per pair (NaN without label_error)}.
    """
    w, w_g = np.asarray(sets["w"], dtype=np.float64), np.asarray(sets["w_g"], dtype=np.float64)
    n = len(w)
    val = [sets[f"w{i}_val"].astype(np.float32) for i in range(n)]
    fds = np.array([fd(x) for x in val], dtype=np.float64)
    errors = np.array([label_error(x, sets["val_label"]) if label_error else np.nan for x in val], dtype=np.float64)
    single = [i for i in range(n) if w[i] == w_g[i]]
    if not single:
        raise G2IError("guidance sweep: no single-scale point (w_g = w_dx) to choose the diagnosis scale from")
    best = _lowest(errors if label_error else fds, single, w)
    at_w = [i for i in range(n) if w[i] == w[best]]
    best_g = _lowest(fds, at_w, w_g)
    return {"w": float(w[best]), "w_g": float(w_g[best_g]), "fd_cnn": fds, "label_error": errors}


def write_sets(generate: Generate, train: SliceGenotypeDataset, test: SliceGenotypeDataset, cfg: SampleConfig,
               out: str | Path, guidance: Mapping[str, np.ndarray] | None = None,
               min_real: Sequence[int] | None = None) -> dict[str, int]:
    """All sets into `out`/<name>.npz (test, augment, counterfactual; plus `guidance`, the sweep already
    made by `guidance_set`, when given); returns image counts."""
    out = Path(out)
    counts = {}
    builds = [("test", lambda: test_set(generate, test, cfg)),
              ("augment", lambda: augment_set(generate, train, cfg, min_real)),
              ("counterfactual", lambda: counterfactual_set(generate, train, cfg))]
    if guidance is not None:
        builds.append(("guidance", lambda: dict(guidance)))
    for name, build in builds:
        arrays = build()
        _save(out / f"{name}.npz", **arrays)
        counts[name] = int(sum(v.shape[0] for k, v in arrays.items() if v.ndim == 3))
    return counts


def pipeline_generator(pipe, sampling: Mapping[str, Any], progress: bool = True) -> Generate:
    """`generate` for a G2IPipeline with the params' sampler, steps, eta, guidance scales and batch size (every key
    of params.yaml's `sampling` section but `seed`: the sets pass their own)."""

    def generate(genotypes: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
        if len(labels) == 0:
            return np.zeros((0, pipe.image_size, pipe.image_size), dtype=np.float32)
        return pipe(genotypes=genotypes, diagnosis=[int(x) for x in labels],
                    num_inference_steps=int(sampling["num_inference_steps"]), sampler=sampling["sampler"],
                    guidance_scale=float(sampling["guidance_scale"]), eta=float(sampling["eta"]), seed=seed,
                    genotype_guidance_scale=_optional_float(sampling["genotype_guidance_scale"]),
                    batch_size=int(sampling["batch_size"]), progress=progress, output_type="np").images

    return generate


def _optional_float(x: Any) -> float | None:
    return None if x is None else float(x)
