"""G2IPipeline: save / load, determinism, which inputs each variant reads, outputs, and bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from g2i.imaging.slicing import PLANE_SHAPE, plane_world_coords, slice_affine
from g2i.models import build_autoencoder, build_denoiser, build_genotype_encoder, build_scheduler
from g2i.generation.diffusion import G2IPipeline
from g2i.generation.export import save_nifti, save_png

from .test_train_diffusion import TINY_MODEL

SNPS = ["rs1", "rs2", "APOE4"]


def tiny_pipeline(variant: str) -> G2IPipeline:
    torch.manual_seed(0)
    vae = build_autoencoder(TINY_MODEL)
    vae.register_to_config(scaling_factor=0.5)
    denoiser = build_denoiser(variant, TINY_MODEL)
    encoder = build_genotype_encoder(TINY_MODEL, len(SNPS)) if denoiser.uses_genotype else None
    return G2IPipeline(vae=vae.eval(), unet=denoiser.eval(), scheduler=build_scheduler(TINY_MODEL),
                       genotype_encoder=encoder.eval() if encoder else None, snps=SNPS, z_mm=16.0)


GENOTYPES = np.array([[0, 1, 2], [2, 2, 0], [1, np.nan, 1]])


@pytest.mark.parametrize("variant", ["ldm", "g2i_l_att"])
def test_save_load_round_trip_gives_the_same_images(tmp_path, variant):
    pipe = tiny_pipeline(variant)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = G2IPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.config.snps == SNPS and loaded.config.variant == variant
    assert (loaded.genotype_encoder is None) == (variant == "ldm")
    a = pipe(genotypes=GENOTYPES, diagnosis=["CN", "MCI", "AD"], num_inference_steps=4, seed=3)
    b = loaded(genotypes=GENOTYPES, diagnosis=["CN", "MCI", "AD"], num_inference_steps=4, seed=3)
    # the same weights and noise; the last float bits may differ with the kernels a CPU picks (seen with one
    # thread: 1.2e-6), while a lost or mis-loaded weight moves pixels by orders of magnitude more
    np.testing.assert_allclose(a.images, b.images, rtol=0, atol=1e-4)
    assert a.images.shape == (3, 16, 16) and a.images.dtype == np.float32
    assert a.images.min() >= -1 and a.images.max() <= 1
    assert len(a.pil) == 3 and a.pil[0].mode == "L" and a.pil[0].size == (16, 16)


def test_same_seed_same_images_other_seed_other_images_and_batching_does_not_matter():
    pipe = tiny_pipeline("g2i_l_att")
    run = lambda **kw: pipe(genotypes=GENOTYPES, diagnosis="AD", num_inference_steps=3, output_type="np", **kw).images
    np.testing.assert_array_equal(run(seed=1), run(seed=1))
    assert not np.array_equal(run(seed=1), run(seed=2))
    # DDIM with eta and guidance run as well; a deterministic DDIM repeats exactly
    ddim = lambda: pipe(genotypes=GENOTYPES, diagnosis="AD", num_inference_steps=3, sampler="ddim",
                        guidance_scale=2.0, seed=1, output_type="np").images
    np.testing.assert_array_equal(ddim(), ddim())


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++"])
def test_a_row_with_its_own_seed_gives_its_image_alone_or_inside_any_batch(sampler):
    """Per-row seeds (what the served model batches with): each row has its own noise stream."""
    pipe = tiny_pipeline("g2i_l_att")
    run = lambda rows, seeds: pipe(genotypes=GENOTYPES[rows], diagnosis=[("CN", "MCI", "AD")[r] for r in rows],
                                   num_inference_steps=3, sampler=sampler, eta=1.0, guidance_scale=2.0,
                                   seed=seeds, output_type="np").images
    alone = [run([r], [10 + r]) for r in range(3)]
    together = run([0, 1, 2], [10, 11, 12])
    reordered = run([2, 0], [12, 10])
    for r in range(3):   # the same noise; batch-size-dependent CPU kernels may move the last float bits
        np.testing.assert_allclose(together[r], alone[r][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(reordered[0], alone[2][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(reordered[1], alone[0][0], rtol=0, atol=1e-5)
    assert not np.allclose(run([0], [10]), run([0], [11]), atol=1e-3)        # the seed is what moves a row
    # a one-row batch with a per-row seed is the plain seeded call: served single rows keep their images
    np.testing.assert_array_equal(run([1], [11]), pipe(genotypes=GENOTYPES[[1]], diagnosis=["MCI"],
                                                       num_inference_steps=3, sampler=sampler, eta=1.0,
                                                       guidance_scale=2.0, seed=11, output_type="np").images)
    with pytest.raises(ValueError, match="^seed: 2 seeds for 3 rows"):
        run([0, 1, 2], [1, 2])


def test_each_variant_reads_only_its_inputs():
    other = np.array([[2, 2, 2], [0, 0, 0], [2, 0, 2]])
    g2i = tiny_pipeline("g2i")
    same = lambda p, g, d: p(genotypes=g, diagnosis=d, num_inference_steps=3, seed=0, output_type="np").images
    np.testing.assert_array_equal(same(g2i, GENOTYPES, "CN"), same(g2i, GENOTYPES, "AD"))  # label ignored
    assert not np.array_equal(same(g2i, GENOTYPES, "CN"), same(g2i, other, "CN"))
    ldm = tiny_pipeline("ldm")
    np.testing.assert_array_equal(same(ldm, GENOTYPES, "CN"), same(ldm, other, "CN"))  # genotype ignored
    assert not np.array_equal(same(ldm, GENOTYPES, "CN"), same(ldm, GENOTYPES, "AD"))
    # ldm needs no genotypes at all
    assert ldm(diagnosis=["CN", "AD"], num_inference_steps=2, output_type="np").images.shape == (2, 16, 16)


def test_a_table_in_any_column_order_equals_the_array():
    pipe = tiny_pipeline("g2i_l_att")
    table = pd.DataFrame(GENOTYPES, columns=SNPS)[["APOE4", "rs2", "rs1"]].assign(PTID=["a", "b", "c"])
    a = pipe(genotypes=table, diagnosis=[0, 1, 2], num_inference_steps=3, seed=5, output_type="np").images
    b = pipe(genotypes=GENOTYPES, diagnosis=["CN", "MCI", "AD"], num_inference_steps=3, seed=5, output_type="np").images
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, field", [
    ({"genotypes": [[0, 1, 3]]}, "genotypes"),
    ({"genotypes": [[0, -1, 1]]}, "genotypes"),
    ({"genotypes": [[0, 1]]}, "genotypes"),
    ({"genotypes": pd.DataFrame({"rs1": [0], "rs2": [1]})}, "genotypes"),
    ({"genotypes": [[0, 1, 2]], "diagnosis": "FTD"}, "diagnosis"),
    ({"genotypes": [[0, 1, 2]], "diagnosis": 3}, "diagnosis"),
    ({"genotypes": [[0, 1, 2]], "num_inference_steps": 0}, "num_inference_steps"),
    ({"genotypes": [[0, 1, 2]], "num_inference_steps": -5}, "num_inference_steps"),
    ({"genotypes": [[0, 1, 2]], "num_inference_steps": 10_000}, "num_inference_steps"),
    ({"genotypes": [[0, 1, 2]], "sampler": "euler"}, "sampler"),
    ({"genotypes": [[0, 1, 2]], "guidance_scale": -1.0}, "guidance_scale"),
    ({"genotypes": [[0, 1, 2]], "genotype_guidance_scale": float("nan")}, "genotype_guidance_scale"),
    ({"genotypes": [[0, 1, 2]], "genotype_guidance_scale": -2.0}, "genotype_guidance_scale"),
    ({"genotypes": [[0, 1, 2], [1, 1, 1]], "diagnosis": ["CN", "AD", "MCI"]}, "diagnosis"),
    ({"diagnosis": "AD"}, "genotypes"),
])
def test_bad_input_raises_a_value_error_naming_the_field(kwargs, field):
    pipe = tiny_pipeline("g2i_l_att")
    kwargs = {"diagnosis": "CN", "num_inference_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=rf"^{field}"):
        pipe(**kwargs)


def test_compositional_guidance_mixes_the_three_branches_and_runs_only_those_needed():
    """eps_null + w_dx (eps_dx - eps_null) + w_g (eps_full - eps_dx); w_g = w_dx is plain CFG."""
    from g2i.generation.sampler import guided_eps

    values = {"full": torch.tensor(3.0), "dx": torch.tensor(2.0), "null": torch.tensor(0.5)}
    calls = []

    def eps_of(onehot, tokens):
        calls.append(onehot + tokens)
        return values[onehot + tokens]

    full, dx, null = ("fu", "ll"), ("d", "x"), ("nu", "ll")
    cases = [((1.0, 1.0), 3.0, ["full"]),
             ((2.0, 2.0), 0.5 + 2 * (3.0 - 0.5), ["full", "null"]),
             ((1.0, 4.0), 2.0 + 4 * (3.0 - 2.0), ["full", "dx"]),
             ((2.0, 4.0), 0.5 + 2 * (2.0 - 0.5) + 4 * (3.0 - 2.0), ["full", "dx", "null"])]
    for (w_dx, w_g), expected, branches in cases:
        calls.clear()
        assert float(guided_eps(eps_of, full, dx, null, w_dx, w_g)) == pytest.approx(expected)
        assert calls == branches


def test_genotype_guidance_moves_only_models_that_see_both_conditions():
    """w_g changes g2i_l_att's images; in g2i and ldm (one condition) it is ignored; None equals w_dx."""
    for variant, moves in (("g2i_l_att", True), ("g2i", False), ("ldm", False)):
        pipe = tiny_pipeline(variant)
        run = lambda **kw: pipe(genotypes=[[0, 1, 2], [2, 2, 0]], diagnosis=["CN", "AD"], num_inference_steps=3,  # noqa: E731
                                seed=4, output_type="np", guidance_scale=2.0, **kw).images
        plain = run()
        np.testing.assert_array_equal(plain, run(genotype_guidance_scale=None))
        np.testing.assert_array_equal(plain, run(genotype_guidance_scale=2.0))
        assert (not np.array_equal(plain, run(genotype_guidance_scale=6.0))) == moves


def test_png_and_nifti_outputs(tmp_path):
    image = tiny_pipeline("ldm")(diagnosis="AD", num_inference_steps=2, output_type="np").images[0]
    save_png(image, tmp_path / "x.png")
    png = np.asarray(Image.open(tmp_path / "x.png"))
    assert png.shape == (16, 16) and png.dtype == np.uint8
    np.testing.assert_allclose(png / 127.5 - 1, image, atol=1 / 127.5)
    save_nifti(image, tmp_path / "x.nii.gz", z_mm=16.0)
    nifti = nib.load(tmp_path / "x.nii.gz")
    assert nifti.shape == (16, 16, 1) and int(nifti.header["sform_code"]) == 4  # MNI_152
    np.testing.assert_allclose(nifti.get_fdata()[:, :, 0].T, image, atol=1e-6)
    np.testing.assert_allclose(nifti.affine, slice_affine(16.0, (16, 16)))


def test_slice_affine_maps_pixels_to_their_mni_coordinates():
    """At the 1 mm plane's own size the affine reproduces plane_world_coords exactly; at 64 x 64 the
    corners stay inside the plane's extent (pixel centres of a stretched grid)."""
    affine = slice_affine(16.0, PLANE_SHAPE)
    world = plane_world_coords(16.0)
    for i, j in [(0, 0), (10, 100), (PLANE_SHAPE[0] - 1, PLANE_SHAPE[1] - 1)]:
        np.testing.assert_allclose((affine @ [j, i, 0, 1])[:3], world[:, i, j])
    small = slice_affine(16.0, (64, 64))
    first, last = small @ [0, 0, 0, 1], small @ [63, 63, 0, 1]
    assert -90 < first[0] < -87 and 87 < last[0] < 90 and 86 < first[1] < 90 and -126 < last[1] < -123
