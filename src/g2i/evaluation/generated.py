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

from ..data.dataset import SliceGenotypeDataset, codes_with_nan
from ..errors import G2IError
from ..io.atomic import atomic_file

Generate = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
SETS = ("test", "augment", "counterfactual")
DOSES = (0, 1, 2)


@dataclass(frozen=True)
class SampleConfig:
    per_subject: int = 4          # generated images per test subject (paper: 3960 in all)
    per_class: int = 100          # classifier training set filled to this many per class (paper: 500)
    n_counterfactual: int = 32    # subjects in the APOE e4 dose sweep
    seed: int = 0
    guidance_sweep: tuple[float, ...] = ()   # classifier-free guidance scales w to compare (empty: no sweep)
    guidance_models: tuple[str, ...] = ()    # diffusion models that get the sweep (it costs ~2x per w != 1)
    guidance_per_subject: int = 1            # images per validation subject at each w

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> "SampleConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise G2IError(f"params.yaml: unknown sample key(s) {unknown}; known: {sorted(known)}")
        section = dict(section)
        for key in ("guidance_sweep", "guidance_models"):
            section[key] = tuple(section.get(key) or ())
        cfg = cls(**section)
        if min(cfg.per_subject, cfg.per_class, cfg.n_counterfactual, cfg.guidance_per_subject) <= 0:
            raise G2IError("params.yaml: sample.per_subject, per_class, n_counterfactual and guidance_per_subject "
                           "must be positive")
        bad = [w for w in cfg.guidance_sweep if not (isinstance(w, (int, float)) and 0 <= w <= 20)]
        if bad:
            raise G2IError(f"params.yaml: sample.guidance_sweep holds {bad}; guidance scales must be numbers in [0, 20]")
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


def guidance_set(generate_at: Callable[[float], Generate], train: SliceGenotypeDataset, val: SliceGenotypeDataset,
                 cfg: SampleConfig) -> dict[str, np.ndarray]:
    """The classifier-free guidance sweep: for each w in cfg.guidance_sweep, `guidance_per_subject` images
    per VALIDATION subject (w is chosen on these, never on the test subjects) and the APOE e4 dose sweep
    of the counterfactual subjects on the same noise as `counterfactual_set`.

    Keys: w; val_row / val_label; cf_row / cf_label; w<i>_val and w<i>_dose_<d> (images at w = w[i]).
    """
    if "APOE4" not in train.snps:
        raise G2IError("genotype table has no APOE4 column: no dose sweep possible")
    rows_val = np.repeat(np.arange(len(val)), cfg.guidance_per_subject)
    rows_cf, _ = _counterfactual_rows(train, cfg)
    codes_val, codes_cf = codes_with_nan(val.codes[rows_val]), codes_with_nan(train.codes[rows_cf])
    apoe = train.snps.index("APOE4")
    out: dict[str, np.ndarray] = {"w": np.asarray(cfg.guidance_sweep, dtype=np.float64), "val_row": rows_val,
                                  "val_label": val.labels[rows_val], "cf_row": rows_cf, "cf_label": train.labels[rows_cf]}
    for i, w in enumerate(cfg.guidance_sweep):
        generate = generate_at(float(w))
        out[f"w{i}_val"] = generate(codes_val, val.labels[rows_val], cfg.seed).astype(np.float16)
        for dose in DOSES:
            swept = codes_cf.copy()
            swept[:, apoe] = dose
            out[f"w{i}_dose_{dose}"] = generate(swept, train.labels[rows_cf], cfg.seed + 3).astype(np.float16)
    return out


def choose_guidance(sets: Mapping[str, np.ndarray], fd: Callable[[np.ndarray], float]) -> tuple[float, np.ndarray]:
    """The guidance scale a swept model's sets are generated at, and FD per w: the w whose validation images
    lie closest to the real training slices (`fd`: FD_cnn of an image set), the smaller w on a tie.

    A distribution distance, not the conditional-mean r: guidance that collapses each condition onto its mode
    lifts r above what a perfect generator reaches (the study's sweep: 0.82 at w = 5 against 0.52), so r
    rewards lost diversity; FD penalises both a conditioning too weak to show and that collapse. The planted
    truth plays no part, so the same rule runs on real data."""
    fds = np.array([fd(sets[f"w{i}_val"].astype(np.float32)) for i in range(len(sets["w"]))], dtype=np.float64)
    best = min(range(len(fds)), key=lambda i: (fds[i], sets["w"][i]))
    return float(sets["w"][best]), fds


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
    """`generate` for a G2IPipeline with the params' sampler, steps, guidance and batch size."""

    def generate(genotypes: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
        if len(labels) == 0:
            return np.zeros((0, pipe.image_size, pipe.image_size), dtype=np.float32)
        return pipe(genotypes=genotypes, diagnosis=[int(x) for x in labels],
                    num_inference_steps=int(sampling["num_inference_steps"]), sampler=sampling["sampler"],
                    guidance_scale=float(sampling["guidance_scale"]), eta=float(sampling.get("eta", 0.0)), seed=seed,
                    batch_size=int(sampling.get("batch_size", 64)), progress=progress, output_type="np").images

    return generate
