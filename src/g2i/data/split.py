"""Subject-level stratified train / validation / test split (seeded): no subject in two splits.

The paper holds out 27 subjects per class for testing and trains on about 85 %; here the test set is a
fixed number per class, validation a fraction of what remains (per class), training the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import G2IError

SPLITS = ("train", "val", "test")


def split_subjects(subjects: pd.DataFrame, test_per_class: int, val_fraction: float, seed: int) -> pd.DataFrame:
    """PTID, diagnosis, split. Deterministic for a given seed and subject list (order-independent)."""
    if subjects["PTID"].duplicated().any():
        raise G2IError("subjects table: duplicate PTIDs")
    if not 0 <= val_fraction < 1:
        raise G2IError(f"params.yaml: split.val_fraction must be within [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    parts = []
    for diagnosis, group in subjects.sort_values("PTID").groupby("diagnosis", sort=True):
        if len(group) < test_per_class + 2:
            raise G2IError(f"class {diagnosis} has {len(group)} subjects: too few for {test_per_class} test subjects "
                           "plus training (lower split.test_per_class)")
        order = group["PTID"].to_numpy()[rng.permutation(len(group))]
        n_val = int(round(val_fraction * (len(group) - test_per_class)))
        labels = ["test"] * test_per_class + ["val"] * n_val + ["train"] * (len(group) - test_per_class - n_val)
        parts.append(pd.DataFrame({"PTID": order, "diagnosis": diagnosis, "split": labels}))
    return pd.concat(parts).sort_values("PTID").reset_index(drop=True)


def split_summary(split: pd.DataFrame) -> dict:
    counts = split.groupby(["split", "diagnosis"]).size()
    return {name: {dx: int(counts.get((name, dx), 0)) for dx in sorted(split["diagnosis"].unique())} | {
        "total": int((split["split"] == name).sum())} for name in SPLITS}
