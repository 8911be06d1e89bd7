"""Figures shared by the stages: headless matplotlib, atomic PNG writes, slice rows and grids."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend (stages run headless, in CI and under DVC)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> None:
    """Write `fig` as PNG atomically (no half-written file when interrupted), then close it."""
    from ..io.atomic import atomic_file

    with atomic_file(Path(path), "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    pyplot().close(fig)


def image_grid(rows: Mapping[str, Sequence[np.ndarray]], columns: Sequence[str], path: str | Path, title: str = "",
               cmap: str = "gray", vmin: float = -1.0, vmax: float = 1.0, colorbar: str | None = None) -> None:
    """A grid of H x W images: one row per `rows` entry (its name on the left), column titles on top."""
    plt = pyplot()
    n_rows, n_cols = len(rows), len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols + (1.2 if colorbar else 0), 1.9 * n_rows + 0.5),
                             squeeze=False)
    shown = None
    for i, (name, images) in enumerate(rows.items()):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(images) and images[j] is not None:
                shown = ax.imshow(images[j], cmap=cmap, vmin=vmin, vmax=vmax)
            else:
                ax.axis("off")
            if i == 0:
                ax.set_title(columns[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if colorbar and shown is not None:  # a slim bar in a margin of its own, so no panel is squeezed
        fig.subplots_adjust(right=0.8)
        bar = fig.add_axes([0.84, 0.35, 0.035, 0.3])
        fig.colorbar(shown, cax=bar, label=colorbar)
    save_figure(fig, path)


def image_row(images: Sequence[np.ndarray], titles: Sequence[str], path: str | Path, title: str = "") -> None:
    """One row of slices with a title above each."""
    image_grid({"": list(images)}, titles, path, title)
