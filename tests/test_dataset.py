"""Training examples joined from slices, genotype table and split."""

from __future__ import annotations

import numpy as np
import pytest

from g2i.data.dataset import ProcessedPaths, SliceGenotypeDataset
from g2i.vocabulary import MISSING_CODE
from g2i.errors import G2IError

from .conftest import write_processed


@pytest.fixture
def processed(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (9, 8, 8))
    snps = {"rs1": rng.integers(0, 3, 9).astype(float), "rs2": [np.nan] + [1.0] * 8, "APOE4": 0}
    return write_processed(tmp_path, images, ["CN", "MCI", "AD"] * 3, ["train"] * 6 + ["test"] * 3, snps)


def test_items_join_image_label_and_genotype(processed):
    train = SliceGenotypeDataset(processed, "train")
    assert len(train) == 6 and train.snps == ["rs1", "rs2", "APOE4"]
    item = train[0]
    assert item["x_0"].shape == (1, 8, 8) and item["x_0"].dtype.is_floating_point
    assert int(item["label"]) == 0 and item["genotype"].tolist()[1] == MISSING_CODE
    assert len(SliceGenotypeDataset(processed, "test")) == 3


def test_missing_processed_data_says_run_dvc_repro(tmp_path):
    with pytest.raises(G2IError, match="run `dvc repro`"):
        SliceGenotypeDataset(ProcessedPaths(tmp_path / "nope", tmp_path / "g.csv", tmp_path / "s.csv"), "train")
