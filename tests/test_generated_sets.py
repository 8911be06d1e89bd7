"""The generated sets behind Table 1, Table 2 and the fidelity report: counts, conditions, fixed noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from g2i.data.dataset import ProcessedPaths, SliceGenotypeDataset
from g2i.errors import G2IError
from g2i.evaluation.generated import (SampleConfig, choose_guidance, guidance_set, load_set, pipeline_generator,
                                     write_sets)

from .test_g2i_pipeline import tiny_pipeline

SAMPLING = {"sampler": "ddpm", "num_inference_steps": 2, "guidance_scale": 1.0, "batch_size": 8}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    rng = np.random.default_rng(1)
    n = 15
    ptids = [f"011_S_{i:04d}" for i in range(n)]
    dx = ["CN", "MCI", "AD"] * 5
    (root / "slices").mkdir()
    np.save(root / "slices/slices.npy", rng.uniform(-1, 1, (n, 16, 16)).astype(np.float16))
    pd.DataFrame({"row": range(n), "PTID": ptids, "diagnosis": dx, "z_mm": 16.0}).to_csv(root / "slices/index.csv",
                                                                                         index=False)
    rs2 = rng.integers(0, 3, n).astype(float)
    rs2[0] = np.nan  # a missing call travels as NaN into the pipeline
    pd.DataFrame({"PTID": ptids, "diagnosis": dx, "rs1": rng.integers(0, 3, n), "rs2": rs2,
                  "APOE4": rng.integers(0, 3, n)}).to_csv(root / "genotypes.csv", index=False)
    pd.DataFrame({"PTID": ptids, "split": ["train"] * 12 + ["test"] * 3}).to_csv(root / "split.csv", index=False)
    paths = ProcessedPaths(root / "slices", root / "genotypes.csv", root / "split.csv")
    return SliceGenotypeDataset(paths, "train"), SliceGenotypeDataset(paths, "test")


@pytest.mark.parametrize("variant", ["ldm", "g2i_l_att"])
def test_sets_have_the_configured_sizes_and_conditions(splits, tmp_path, variant):
    train, test = splits
    cfg = SampleConfig(per_subject=2, per_class=6, n_counterfactual=5, seed=0)
    counts = write_sets(pipeline_generator(tiny_pipeline(variant), SAMPLING, progress=False), train, test, cfg, tmp_path)
    assert counts == {"test": 6, "augment": 3 * (6 - 4), "counterfactual": 5 * 5}
    t = load_set(tmp_path, "test")
    assert t["images"].shape == (6, 16, 16) and list(t["row"]) == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(t["label"], test.labels[t["row"]])
    a = load_set(tmp_path, "augment")
    assert np.bincount(a["label"], minlength=3).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(train.labels[a["row"]], a["label"])  # conditions from subjects of that class
    cf = load_set(tmp_path, "counterfactual")
    assert all(cf[f"dose_{d}"].shape == (5, 16, 16) for d in (0, 1, 2))
    # fixed noise: the original genotype's image equals the sweep image at the subject's own dose
    for k, dose in enumerate(cf["apoe4"].astype(int)):
        np.testing.assert_array_equal(cf["original"][k], cf[f"dose_{dose}"][k])
    if variant == "ldm":  # no genotype input: every dose gives the same image
        np.testing.assert_array_equal(cf["dose_0"], cf["dose_2"])
        np.testing.assert_array_equal(cf["original"], cf["panel_shuffled"])
    else:
        assert not np.array_equal(cf["dose_0"], cf["dose_2"])


def test_the_same_settings_give_the_same_sets(splits, tmp_path):
    train, test = splits
    cfg = SampleConfig(per_subject=1, per_class=5, n_counterfactual=3)
    generate = pipeline_generator(tiny_pipeline("g2i"), SAMPLING, progress=False)
    write_sets(generate, train, test, cfg, tmp_path / "a")
    write_sets(generate, train, test, cfg, tmp_path / "b")
    for name in ("test", "augment", "counterfactual"):
        a, b = load_set(tmp_path / "a", name), load_set(tmp_path / "b", name)
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_settings_and_missing_sets_are_clear_errors(tmp_path):
    with pytest.raises(G2IError, match="unknown sample key"):
        SampleConfig.from_params({"per_subjects": 3})
    with pytest.raises(G2IError, match="positive"):
        SampleConfig.from_params({"per_class": 0})
    with pytest.raises(G2IError, match="dvc repro"):
        load_set(tmp_path, "test")


def test_augment_fills_the_smallest_real_subsample(splits, tmp_path):
    train, test = splits   # 4 training subjects per class
    cfg = SampleConfig(per_subject=1, per_class=6, n_counterfactual=2)
    generate = pipeline_generator(tiny_pipeline("g2i_l_att"), SAMPLING, progress=False)
    counts = write_sets(generate, train, test, cfg, tmp_path, min_real=[1, 2, 4])
    assert counts["augment"] == (6 - 1) + (6 - 2) + (6 - 4)
    assert np.bincount(load_set(tmp_path, "augment")["label"], minlength=3).tolist() == [5, 4, 2]


def test_guidance_sweep_set_uses_validation_subjects_and_the_counterfactual_noise(splits, tmp_path):
    train, test = splits
    pipe = tiny_pipeline("g2i_l_att")
    cfg = SampleConfig(per_subject=1, per_class=4, n_counterfactual=3, guidance_sweep=(1.0, 3.0),
                       guidance_models=("g2i_l_att",), guidance_per_subject=2)
    sweep = guidance_set(lambda w: pipeline_generator(pipe, {**SAMPLING, "guidance_scale": w}, progress=False),
                         train, test, cfg)
    counts = write_sets(pipeline_generator(pipe, SAMPLING, progress=False), train, test, cfg, tmp_path, guidance=sweep)
    assert counts["guidance"] == 2 * (3 * 2 + 3 * 3)     # per w: 2 images per val subject + 3 doses x 3 subjects
    g, cf = load_set(tmp_path, "guidance"), load_set(tmp_path, "counterfactual")
    assert g["w"].tolist() == [1.0, 3.0] and g["val_row"].tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(g["cf_row"], cf["row"])
    np.testing.assert_array_equal(g["w0_dose_2"], cf["dose_2"])      # w = 1 is the plain conditional sampler
    assert not np.array_equal(g["w1_dose_2"], cf["dose_2"])           # guidance changes the images
    with pytest.raises(G2IError, match="guidance_sweep"):
        SampleConfig.from_params({"guidance_sweep": [1.0, "x"]})


def test_choose_guidance_takes_the_lowest_fd_and_the_smaller_w_on_a_tie():
    images = {f"w{i}_val": np.full((2, 4, 4), float(i), dtype=np.float16) for i in range(4)}
    by_level = {0: 3.0, 1: 1.5, 2: 0.7, 3: 0.7}            # FD of each w's validation images
    fd = lambda x: by_level[int(x[0, 0, 0])]
    w, fds = choose_guidance({"w": np.array([1.0, 2.0, 3.0, 5.0]), **images}, fd)
    assert w == 3.0 and fds.tolist() == [3.0, 1.5, 0.7, 0.7]
    w, _ = choose_guidance({"w": np.array([1.0, 2.0]), **{k: images[k] for k in ("w0_val", "w1_val")}},
                           lambda x: 1.0)
    assert w == 1.0
