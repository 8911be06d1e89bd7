"""The paper's Figures 2 and 3 from the generated sets: sample grids and mean group differences."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..generation.sets import load_set
from ..vocabulary import DIAGNOSES, display_name

if TYPE_CHECKING:
    from .evaluate import RealReference


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


__all__ = ["figure2", "figure3", "class_means"]
