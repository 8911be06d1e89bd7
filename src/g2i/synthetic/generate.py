"""Write the whole synthetic cohort into data/raw, atomically, deterministically and in parallel.

Layout (the same as a real ADNI download arranged for G2I, plus a clearly marked synthetic/ folder):
    ADNIMERGE.csv, APOERES.csv
    genotypes/ADNI_cluster_01_forward_757LONI.{bed,bim,fam}   (ADNI-1)
    genotypes/ADNI_GO_2_Forward_Bin.{bed,bim,fam}             (ADNI-GO/2)
    mri/<PTID>/final/ADNI_<PTID>_t1_final.nii.gz              (CIVET-like tree, NIfTI instead of MINC)
    synthetic/ground_truth.csv, synthetic/manifest.json, synthetic/README.md
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import __version__
from ..imaging.anatomy import Anatomy, load_anatomy
from ..data.raw import GROUND_TRUTH
from ..io.atomic import atomic_dir
from ..io.nifti import mni_nifti, write_nifti_gz
from .clinical import adnimerge_table, apoeres_table
from .cohort import draw_cohort, stream
from .genotypes import write_phase_filesets
from .render import SubjectEffects, render_subject
from .spec import CohortSpec

MRI_PATTERN = "mri/{ptid}/final/ADNI_{ptid}_t1_final.nii.gz"
MANIFEST = "synthetic/manifest.json"
SYNTHETIC_NOTICE = """# SYNTHETIC DATA: not ADNI, not real people

Everything in this folder was simulated by `g2i synthesize` (G2I {version}) in ADNI's file formats so the
pipeline runs without data access. `ground_truth.csv` holds what the simulator put into each subject
(true structure volumes in the image, APOE e4 dose, polygenic score, effect parameters); it exists only
for synthetic data, so later stages can measure whether generated images carry the genetic effect.
Anatomy: MNI ICBM152 2009a symmetric template (as shipped by nilearn), deformed per subject.
"""

_ANATOMY: Anatomy | None = None  # set in the parent before forking, shared copy-on-write by workers


def _render_one(job: tuple) -> dict:
    seed, rid, ptid, effects, nuisance, grid, path = job
    volume, realised = render_subject(_ANATOMY, grid, effects, nuisance, stream(seed, 2, rid))
    image = mni_nifti(volume, grid.affine, description="G2I SYNTHETIC T1 (not real data)")
    write_nifti_gz(image, path)
    return {"PTID": ptid, **realised}


def _render_all(spec: CohortSpec, table: pd.DataFrame, root: Path, progress: bool) -> pd.DataFrame:
    global _ANATOMY
    grid = spec.grid
    _ANATOMY = load_anatomy(smoothing_mm=0.4 * spec.voxel_mm if spec.voxel_mm > 1 else 0.0)
    jobs = []
    for row in table[table["has_mri"]].itertuples():
        path = root / MRI_PATTERN.format(ptid=row.PTID)
        path.parent.mkdir(parents=True, exist_ok=True)
        effects = SubjectEffects(row.ventricle_scale_target, row.hippocampus_scale_target, row.cortical_thinning)
        jobs.append((spec.seed, row.RID, row.PTID, effects, spec.nuisance, grid, path))
    n_jobs = spec.n_jobs or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="rendering T1 volumes", unit="subject", disable=not progress)
    results = []
    if n_jobs == 1:
        for job in jobs:
            results.append(_render_one(job))
            bar.update()
    else:
        with multiprocessing.get_context("fork").Pool(n_jobs) as pool:
            for result in pool.imap(_render_one, jobs, chunksize=1):
                results.append(result)
                bar.update()
    bar.close()
    realised = pd.DataFrame(results, columns=["PTID", "ventricle_volume_ml_image", "hippocampus_volume_ml_image"])
    table = table.merge(realised, on="PTID", how="left")
    # Subjects without MRI get the volume the generator intended (no image to measure).
    anatomy = _ANATOMY
    table["ventricle_volume_ml"] = table["ventricle_volume_ml_image"].fillna(
        table["ventricle_scale_target"] * anatomy.ventricles.template_volume_ml)
    table["hippocampus_volume_ml"] = table["hippocampus_volume_ml_image"].fillna(
        table["hippocampus_scale_target"] * anatomy.hippocampus.template_volume_ml)
    table.attrs["hippocampus_template_ml"] = anatomy.hippocampus.template_volume_ml
    table.attrs["ventricle_template_ml"] = anatomy.ventricles.template_volume_ml
    table.attrs["ventricle_scale_range"] = anatomy.ventricles.scale_range
    _ANATOMY = None
    return table


def generate_cohort(spec: CohortSpec, out_dir: str | Path, overwrite: bool = False, progress: bool = True) -> dict:
    """Generate the cohort into `out_dir` (created atomically); returns the manifest."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        table, doses = draw_cohort(spec)
        (tmp / "genotypes").mkdir()
        genotype_manifest = write_phase_filesets(spec, table, doses, tmp / "genotypes")
        table = _render_all(spec, table, tmp, progress)

        rng = stream(spec.seed, 3)
        adnimerge = adnimerge_table(table, table.attrs["hippocampus_template_ml"], spec.followup_fraction, rng)
        adnimerge.to_csv(tmp / "ADNIMERGE.csv", index=False)
        apoeres_table(table[table["has_genotypes"] | table["has_mri"]]).to_csv(tmp / "APOERES.csv", index=False)

        (tmp / "synthetic").mkdir()
        truth_columns = ["RID", "PTID", "phase", "DX", "DX_bl", "has_mri", "has_genotypes", "APOE4", "APGEN1",
                         "APGEN2", "prs", "prs_z", "liability", "AGE", "PTGENDER", "ventricle_scale_target",
                         "hippocampus_scale_target", "cortical_thinning", "ventricle_volume_ml_image",
                         "hippocampus_volume_ml_image"]
        table[truth_columns].to_csv(tmp / GROUND_TRUTH, index=False, float_format="%.6f")
        (tmp / "synthetic" / "README.md").write_text(SYNTHETIC_NOTICE.format(version=__version__))

        complete = table[table["has_mri"] & table["has_genotypes"]]
        manifest = {
            "generator": f"g2i {__version__}",
            "synthetic": True,
            "profile": spec.profile,
            # n_jobs changes speed, never bytes: leave it out so the manifest is the same for any worker count
            "parameters": _jsonable({k: v for k, v in dataclasses.asdict(spec).items() if k != "n_jobs"}),
            "grid": {"shape": list(spec.grid.shape), "affine": spec.grid.affine.tolist(), "space": "MNI ICBM152"},
            "subjects": {
                "complete": int(len(complete)),
                "per_class": {dx: int(n) for dx, n in complete["DX"].value_counts().sort_index().items()},
                "per_phase": {p: int(n) for p, n in complete["phase"].value_counts().sort_index().items()},
                "without_mri": int((~table["has_mri"]).sum()),
                "without_genotypes": int((~table["has_genotypes"]).sum()),
                "adnimerge_rows": int(len(adnimerge)),
            },
            "genotypes": genotype_manifest,
            "structures": {
                "ventricle_template_ml": table.attrs["ventricle_template_ml"],
                "hippocampus_template_ml": table.attrs["hippocampus_template_ml"],
                "ventricle_scale_range": list(table.attrs["ventricle_scale_range"]),
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
