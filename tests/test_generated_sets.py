"""The generated sets behind Table 1, Table 2 and the fidelity report: counts, conditions, fixed noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from g2i.data.dataset import SliceGenotypeDataset
from g2i.errors import G2IError
from g2i.generation.sets import (SampleConfig, choose_guidance, guidance_set, load_set, pipeline_generator,
                                     write_sets)
from g2i.generation.loader import guidance_settings

from .conftest import sample_config, sample_section, write_processed
from .test_g2i_pipeline import tiny_pipeline

SAMPLING = {"sampler": "ddpm", "num_inference_steps": 2, "eta": 0.0, "guidance_scale": 1.0,
            "genotype_guidance_scale": None, "batch_size": 8}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    rng = np.random.default_rng(1)
    n = 15
    images = rng.uniform(-1, 1, (n, 16, 16))
    rs2 = rng.integers(0, 3, n).astype(float)
    rs2[0] = np.nan  # a missing call travels as NaN into the pipeline
    snps = {"rs1": rng.integers(0, 3, n), "rs2": rs2, "APOE4": rng.integers(0, 3, n)}
    paths = write_processed(root, images, ["CN", "MCI", "AD"] * 5, ["train"] * 12 + ["test"] * 3, snps,
                            ptids=[f"011_S_{i:04d}" for i in range(n)])
    return SliceGenotypeDataset(paths, "train"), SliceGenotypeDataset(paths, "test")


@pytest.mark.parametrize("variant", ["ldm", "g2i_l_att"])
def test_sets_have_the_configured_sizes_and_conditions(splits, tmp_path, variant):
    train, test = splits
    cfg = sample_config(per_subject=2, per_class=6, n_counterfactual=5, seed=0)
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
    cfg = sample_config(per_subject=1, per_class=5, n_counterfactual=3)
    generate = pipeline_generator(tiny_pipeline("g2i"), SAMPLING, progress=False)
    write_sets(generate, train, test, cfg, tmp_path / "a")
    write_sets(generate, train, test, cfg, tmp_path / "b")
    for name in ("test", "augment", "counterfactual"):
        a, b = load_set(tmp_path / "a", name), load_set(tmp_path / "b", name)
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_settings_and_missing_sets_are_clear_errors(tmp_path):
    with pytest.raises(G2IError, match="unknown sample key"):
        SampleConfig.from_params(sample_section(per_subjects=3))
    with pytest.raises(G2IError, match="positive"):
        SampleConfig.from_params(sample_section(per_class=0))
    with pytest.raises(G2IError, match="dvc repro"):
        load_set(tmp_path, "test")


def test_augment_fills_the_smallest_real_subsample(splits, tmp_path):
    train, test = splits   # 4 training subjects per class
    cfg = sample_config(per_subject=1, per_class=6, n_counterfactual=2)
    generate = pipeline_generator(tiny_pipeline("g2i_l_att"), SAMPLING, progress=False)
    counts = write_sets(generate, train, test, cfg, tmp_path, min_real=[1, 2, 4])
    assert counts["augment"] == (6 - 1) + (6 - 2) + (6 - 4)
    assert np.bincount(load_set(tmp_path, "augment")["label"], minlength=3).tolist() == [5, 4, 2]


def test_guidance_sweep_set_uses_validation_subjects_and_the_counterfactual_noise(splits, tmp_path):
    train, test = splits
    pipe = tiny_pipeline("g2i_l_att")
    cfg = sample_config(per_subject=1, per_class=4, n_counterfactual=3, guidance_sweep=[1.0, 3.0],
                        guidance_models=["g2i_l_att"], guidance_per_subject=2)
    at = lambda w, w_g: pipeline_generator(pipe, {**SAMPLING, **guidance_settings(w, w_g)}, progress=False)  # noqa: E731
    sweep = guidance_set(at, train, test, cfg, [(1.0, 1.0), (3.0, 3.0)])
    counts = write_sets(pipeline_generator(pipe, SAMPLING, progress=False), train, test, cfg, tmp_path, guidance=sweep)
    assert counts["guidance"] == 2 * (3 * 2 + 3 * 3)     # per w: 2 images per val subject + 3 doses x 3 subjects
    g, cf = load_set(tmp_path, "guidance"), load_set(tmp_path, "counterfactual")
    assert g["w"].tolist() == [1.0, 3.0] and g["w_g"].tolist() == [1.0, 3.0] and g["val_row"].tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(g["cf_row"], cf["row"])
    np.testing.assert_array_equal(g["w0_dose_2"], cf["dose_2"])      # w = 1 is the plain conditional sampler
    assert not np.array_equal(g["w1_dose_2"], cf["dose_2"])           # guidance changes the images
    # extending the sweep adds only the new points; (1, 1) is not generated again
    calls = []
    more = guidance_set(lambda w, w_g: calls.append((w, w_g)) or at(w, w_g), train, test, cfg,
                        [(1.0, 1.0), (1.0, 4.0)], sets=sweep)
    assert calls == [(1.0, 4.0)] and more["w"].tolist() == [1.0, 3.0, 1.0] and more["w_g"].tolist() == [1.0, 3.0, 4.0]
    np.testing.assert_array_equal(more["w1_val"], sweep["w1_val"])
    assert not np.array_equal(more["w2_val"], sweep["w0_val"])       # the genotype's own scale changes the images
    with pytest.raises(G2IError, match="guidance_sweep"):
        SampleConfig.from_params(sample_section(guidance_sweep=[1.0, "x"]))
    with pytest.raises(G2IError, match="genotype_guidance_sweep needs"):
        SampleConfig.from_params(sample_section(genotype_guidance_sweep=[2.0]))


def _sweep_images(pairs):
    """A sweep whose validation images of point i are all equal to i (so a scorer can tell them apart)."""
    sets = {f"w{i}_val": np.full((3, 4, 4), float(i), dtype=np.float16) for i in range(len(pairs))}
    return {"w": np.array([p[0] for p in pairs]), "w_g": np.array([p[1] for p in pairs]),
            "val_label": np.array([0, 1, 2]), **sets}


def test_choose_guidance_takes_the_lowest_fd_and_the_smaller_w_on_a_tie():
    sets = _sweep_images([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (5.0, 5.0)])
    by_level = {0: 3.0, 1: 1.5, 2: 0.7, 3: 0.7}            # FD of each w's validation images
    fd = lambda x: by_level[int(x[0, 0, 0])]  # noqa: E731
    chosen = choose_guidance(sets, fd)
    assert chosen["w"] == chosen["w_g"] == 3.0 and chosen["fd_cnn"].tolist() == [3.0, 1.5, 0.7, 0.7]
    assert np.isnan(chosen["label_error"]).all()
    assert choose_guidance(_sweep_images([(1.0, 1.0), (2.0, 2.0)]), lambda x: 1.0)["w"] == 1.0


def test_choose_guidance_sets_the_diagnosis_by_label_effects_then_the_genotype_by_fd():
    # single-scale points 0..3, then the genotype's own scale at w_dx = 2 (points 4, 5)
    sets = _sweep_images([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (5.0, 5.0), (2.0, 3.0), (2.0, 5.0)])
    error = {0: 0.30, 1: 0.05, 2: 0.8, 3: 1.6, 4: 0.2, 5: 0.3}        # label effects: w = 2 matches the real ones
    fd = {0: 2.0, 1: 1.0, 2: 0.5, 3: 0.9, 4: 0.6, 5: 0.8}            # FD alone would take w = 3
    chosen = choose_guidance(sets, lambda x: fd[int(x[0, 0, 0])], lambda x, labels: error[int(x[0, 0, 0])])
    assert (chosen["w"], chosen["w_g"]) == (2.0, 3.0)                 # w_dx by labels; w_g by FD among w_dx = 2
    assert chosen["label_error"].tolist() == [0.30, 0.05, 0.8, 1.6, 0.2, 0.3]
    # an unmeasurable point (inf) never wins; without single-scale points there is nothing to choose from
    error[1] = float("inf")
    assert choose_guidance(sets, lambda x: fd[int(x[0, 0, 0])], lambda x, labels: error[int(x[0, 0, 0])])["w"] == 1.0
    with pytest.raises(G2IError, match="single-scale"):
        choose_guidance(_sweep_images([(1.0, 2.0)]), lambda x: 1.0)


def test_label_effect_error_is_zero_for_the_real_slices_and_grows_with_exaggeration(monkeypatch):
    from g2i.evaluation.truth import label_effect_error

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    log_area = np.array([0.0, 0.26, 0.41])[labels] + rng.normal(0, 0.1, labels.size)
    measure = {}

    def fake_area(images):   # images carry their own log area in pixel [0, 0]
        return np.exp(images[:, 0, 0].astype(np.float64))

    import g2i.imaging.slice_morphometry as slice_morphometry

    monkeypatch.setattr(slice_morphometry, "lateral_ventricle_area", fake_area)
    error = label_effect_error(np.exp(log_area), labels)
    as_images = lambda logs: np.broadcast_to(logs[:, None, None], (logs.size, 2, 2)).astype(np.float32)  # noqa: E731
    measure["same"] = error(as_images(log_area), labels)
    measure["double"] = error(as_images(2 * log_area - log_area[labels == 0].mean()), labels)
    measure["flat"] = error(as_images(np.zeros(labels.size) + rng.normal(0, 0.1, labels.size)), labels)
    assert measure["same"] == pytest.approx(0.0, abs=1e-9)
    assert measure["double"] == pytest.approx(1.0, abs=0.05)          # twice the real differences: error 1
    assert 0.7 < measure["flat"] < 1.3                                # no class difference: error ~1


def test_export_writes_a_set_as_png_or_nifti_files_with_an_index(tmp_path):
    """`g2i export`: the sample stage's arrays as files a viewer opens, each named in index.csv; nothing half-written."""
    import nibabel as nib
    from PIL import Image

    from g2i.cli import main
    from g2i.imaging.slicing import slice_affine

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (3, 16, 16)).astype(np.float16)
    folder = tmp_path / "generated" / "g2i_l_att"
    folder.mkdir(parents=True)
    np.savez(folder / "test.npz", images=images, row=np.array([0, 0, 1]), label=np.array([2, 2, 0]),
             ptid=np.array(["002_S_0001", "002_S_0001", "002_S_0002"]))
    np.savez(folder / "counterfactual.npz", row=np.array([4, 5]), label=np.array([1, 1]), apoe4=np.array([0.0, 2.0]),
             dose_0=images[:2], dose_2=images[1:])
    index = tmp_path / "index.csv"
    pd.DataFrame({"PTID": ["a"], "z_mm": [16.0]}).to_csv(index, index=False)
    common = ["--variant", "g2i_l_att", "--generated", str(tmp_path / "generated"), "--slices-index", str(index), "--quiet"]

    assert main(["export", *common, "--out", str(tmp_path / "png")]) == 0
    table = pd.read_csv(tmp_path / "png" / "index.csv")
    assert list(table["file"]) == ["images_0.png", "images_1.png", "images_2.png"]
    assert list(table["diagnosis"]) == ["AD", "AD", "CN"] and table["ptid"].iloc[2] == "002_S_0002"
    png = np.asarray(Image.open(tmp_path / "png" / "images_2.png"))
    np.testing.assert_allclose(png / 127.5 - 1, images[2].astype(np.float32), atol=1 / 127.5)

    assert main(["export", *common, "--set", "counterfactual", "--format", "nifti", "--limit", "1",
                 "--out", str(tmp_path / "nii")]) == 0
    table = pd.read_csv(tmp_path / "nii" / "index.csv")
    assert list(table["file"]) == ["dose_0_0.nii.gz", "dose_2_0.nii.gz"] and list(table["apoe4"]) == [0.0, 0.0]
    nifti = nib.load(tmp_path / "nii" / "dose_2_0.nii.gz")
    np.testing.assert_allclose(nifti.get_fdata()[:, :, 0].T, images[1].astype(np.float32), atol=1e-3)
    np.testing.assert_allclose(nifti.affine, slice_affine(16.0, (16, 16)))

    # a set `sample` never wrote: a plain error, exit 2, no folder
    assert main(["export", *common, "--set", "augment", "--out", str(tmp_path / "none")]) == 2
    assert main(["export", *common, "--limit", "0", "--out", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "none").exists()
