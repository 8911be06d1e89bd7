"""Disease and APOE e4 effects are present in the written images, measured as a user would."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from g2i.config import load_params, resolve
from g2i.data.raw import RawInputs
from g2i.imaging.anatomy import load_anatomy
from g2i.imaging.grid import Grid
from g2i.imaging.morphometry import ventricle_volume_ml
from g2i.reports.cohort import measure_cohort
from g2i.synthetic.cohort import anatomical_effects, stream
from g2i.synthetic.generate import GROUND_TRUTH
from g2i.synthetic.render import ImageNuisance, SubjectEffects, render_subject

from .conftest import ROOT, tiny_spec


def test_ventricles_measured_from_images_track_truth_and_diagnosis(tiny_cohort, tiny_genotypes, tmp_path):
    raw, _ = tiny_cohort
    _, _, (table, subjects, _, _) = tiny_genotypes
    subjects.to_csv(tmp_path / "subjects.csv", index=False)
    table.to_csv(tmp_path / "genotypes.csv", index=False)
    measured = measure_cohort(tmp_path / "subjects.csv", tmp_path / "genotypes.csv",
                              RawInputs.from_params({**resolve(load_params(ROOT / "params.yaml"))["data"], "root": str(raw)},
                                                    ROOT))
    truth = pd.read_csv(raw / GROUND_TRUTH)
    joined = measured.merge(truth[["PTID", "ventricle_volume_ml_image"]], on="PTID")
    rho = stats.spearmanr(joined["ventricle_ml_measured"], joined["ventricle_volume_ml_image"]).statistic
    assert rho > 0.9
    by_dx = measured.groupby("DX")["ventricle_ml_measured"].mean()
    assert by_dx["AD"] > by_dx["CN"]


def test_e4_dose_enlarges_ventricles_in_the_image_all_else_equal():
    """Counterfactual: one subject, same noise and deformation, e4 dose 0 / 1 / 2."""
    spec = tiny_spec()
    base = pd.DataFrame({"DX": ["MCI"] * 3, "APOE4": [0, 1, 2], "prs_z": [0.0] * 3, "AGE": [74.0] * 3})
    # identical random draws for all three rows: the only difference is the e4 dose
    effects = pd.concat([anatomical_effects(base.iloc[[i]], spec.effects, stream(1, 9)) for i in range(3)])
    assert effects["ventricle_scale_target"].is_monotonic_increasing
    assert effects["hippocampus_scale_target"].is_monotonic_decreasing  # e4 shrinks hippocampus in MCI

    anatomy = load_anatomy(smoothing_mm=0.8)
    grid = Grid.icbm152(2.0, (0, 32))
    volumes = []
    for row in effects.itertuples():
        image, realised = render_subject(
            anatomy, grid, SubjectEffects(row.ventricle_scale_target, row.hippocampus_scale_target, row.cortical_thinning),
            ImageNuisance(), stream(1, 10))
        volumes.append(ventricle_volume_ml(image, grid.affine))
    assert volumes[0] < volumes[1] < volumes[2]
    assert volumes[2] / volumes[0] > 1.08  # about +8 % per allele by default


def test_structure_flow_is_calibrated_and_invertible():
    anatomy = load_anatomy()
    vent = anatomy.ventricles
    lo, hi = vent.scale_range
    assert lo < 0.6 and hi > 3.0
    for scale in (0.7, 1.5, 2.5):
        achieved = vent.volume_after(vent.alpha_for_scale(scale), spacing_mm=2.0) / vent.volume_after(0.0, spacing_mm=2.0)
        assert abs(achieved - scale) / scale < 0.1
    # a smooth flow keeps neighbouring points ordered (no folding) along x through the ventricles
    x = np.linspace(-40, 40, 161, dtype=np.float32)
    line = np.stack([x, np.full_like(x, -12.0), np.full_like(x, 15.0)]).reshape(3, -1, 1, 1)
    mapped = vent.flow(line, vent.alpha_for_scale(3.0))[0].ravel()
    assert np.all(np.diff(mapped) > 0)
