"""g2i.evaluation.image_metrics and .inception: known values, directions, bad input, weights loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from g2i.evaluation.image_metrics import (frechet_distance, kernel_inception_distance, mean_finite, ms_ssim_pairs,
                                          ms_ssim_scales, pairwise_similarity, psnr, ssim_pairs)
from g2i.evaluation.inception import FEATURE_DIM, InceptionV3, inception_features, load_inception


def smooth_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Blobby images in [-1, 1] (structure at several scales, unlike white noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros((n, size, size))
    for i in range(n):
        for _ in range(6):
            cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
            out[i] += rng.uniform(-1, 1) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
    return np.clip(out, -1, 1)


def noisy(images: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    return images + np.random.default_rng(seed).normal(0, sigma, images.shape)


# ----------------------------------------------------------------------------------------- PSNR

def test_psnr_matches_formula_for_known_noise():
    real = smooth_images(4, 32)
    gen = noisy(real, 0.1)
    mse = ((gen - real) ** 2).mean(axis=(1, 2))
    expected = 10 * np.log10(4.0 / mse)
    np.testing.assert_allclose(psnr(gen, real), expected, rtol=1e-12)
    # sigma = 0.1 on a range of 2 -> about 10 log10(4 / 0.01) = 26 dB
    assert np.all(np.abs(psnr(gen, real) - 26.02) < 0.5)


def test_psnr_identical_is_inf_and_mean_finite_skips_it():
    real = smooth_images(3, 16)
    gen = real.copy()
    gen[1] += 0.1  # constant offset: mse = 0.01
    values = psnr(gen, real)
    assert values[0] == np.inf and values[2] == np.inf
    assert mean_finite(values) == pytest.approx(10 * np.log10(4 / 0.01))
    assert mean_finite(psnr(real, real)) == np.inf
    assert np.isnan(mean_finite(np.array([np.nan])))


# ----------------------------------------------------------------------------------------- SSIM / MS-SSIM

def test_ssim_identical_is_one_and_decreases_with_noise():
    real = smooth_images(3, 48)
    np.testing.assert_allclose(ssim_pairs(real, real), 1.0, atol=1e-12)
    low, high = ssim_pairs(noisy(real, 0.05), real), ssim_pairs(noisy(real, 0.3), real)
    assert np.all(low < 1) and np.all(high < low)


@pytest.mark.parametrize("size,scales", [(11, 1), (21, 1), (22, 2), (44, 3), (64, 3), (128, 4), (176, 5), (256, 5),
                                         (1024, 5)])
def test_ms_ssim_scales(size, scales):
    assert ms_ssim_scales(size) == scales


def test_ms_ssim_identical_bounded_and_monotone_in_noise():
    real = smooth_images(3, 64)
    np.testing.assert_allclose(ms_ssim_pairs(real, real), 1.0, atol=1e-12)
    values = [ms_ssim_pairs(noisy(real, s), real) for s in (0.05, 0.2, 1.0)]
    for v in values:
        assert np.all((v >= 0) & (v <= 1))
    assert np.all(values[1] < values[0]) and np.all(values[2] < values[1])
    # Anti-correlated images: cs < 0 at fine scales; relu keeps the result finite (0), not NaN.
    assert np.all(np.isfinite(ms_ssim_pairs(real, -real)))


def test_ms_ssim_one_scale_equals_project_ssim_and_scales_matter():
    real = smooth_images(2, 64)
    gen = noisy(real, 0.2)
    np.testing.assert_allclose(ms_ssim_pairs(gen, real, scales=1), ssim_pairs(gen, real), rtol=1e-10)
    # Coarser scales average the noise away, so 3-scale MS-SSIM rates the noisy copy higher than SSIM.
    assert np.all(ms_ssim_pairs(gen, real) > ssim_pairs(gen, real))
    big = smooth_images(1, 256)
    assert 0 < ms_ssim_pairs(noisy(big, 0.2), big)[0] < 1  # 5 scales run


def test_ms_ssim_refuses_too_many_scales_and_tiny_images():
    real = smooth_images(1, 64)
    with pytest.raises(ValueError, match="scales"):
        ms_ssim_pairs(real, real, scales=4)
    with pytest.raises(ValueError, match="a and b must be at least 11 px"):
        ms_ssim_pairs(real[:, :8, :8], real[:, :8, :8])
    with pytest.raises(ValueError, match="size"):
        ms_ssim_scales(10)


def test_batching_does_not_change_results():
    real = smooth_images(5, 32)
    gen = noisy(real, 0.2)
    np.testing.assert_allclose(ssim_pairs(gen, real, batch_size=2), ssim_pairs(gen, real), rtol=1e-12)
    np.testing.assert_allclose(ms_ssim_pairs(gen, real, batch_size=2), ms_ssim_pairs(gen, real), rtol=1e-12)
    np.testing.assert_allclose(psnr(gen, real, batch_size=2), psnr(gen, real), rtol=1e-12)


# ----------------------------------------------------------------------------------------- diversity

@pytest.mark.parametrize("metric", ["ssim", "ms_ssim"])
def test_pairwise_similarity_collapsed_vs_diverse(metric):
    one = smooth_images(1, 64)
    collapsed = np.repeat(one, 6, axis=0)
    assert pairwise_similarity(collapsed, metric) == pytest.approx(1.0, abs=1e-9)
    diverse = np.random.default_rng(0).uniform(-1, 1, (6, 64, 64))
    assert pairwise_similarity(diverse, metric) < 0.2


def test_pairwise_similarity_samples_distinct_pairs_reproducibly():
    images = smooth_images(12, 32)  # 66 pairs > max_pairs
    a = pairwise_similarity(images, max_pairs=10, seed=3)
    assert a == pairwise_similarity(images, max_pairs=10, seed=3)
    # Never compares an image with itself: a set of distinct images cannot reach 1.
    assert a < 1


# ----------------------------------------------------------------------------------------- FID / KID

def test_frechet_distance_self_and_shifted_gaussians():
    rng = np.random.default_rng(0)
    cov = np.diag([1.0, 2.0, 0.5, 1.5])
    a = rng.multivariate_normal(np.zeros(4), cov, size=20000)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    b = rng.multivariate_normal(shift, cov, size=20000)
    # Equal covariances: the trace term vanishes and FD = |mu_a - mu_b|^2 = 5.25 (up to sampling error).
    assert frechet_distance(a, b) == pytest.approx(shift @ shift, rel=0.03)
    # Exactly the same covariance (translated copy): the formula is exact up to the mean estimate.
    assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-6)


def test_frechet_distance_singular_covariance_is_finite():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))  # 5 samples in 16 dims: rank-4 covariances
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    mean_same, std_same = kernel_inception_distance(a, b, subsets=10, subset_size=100)
    mean_shift, _ = kernel_inception_distance(a, b + 1.0, subsets=10, subset_size=100)
    assert abs(mean_same) < 3 * std_same + 0.05
    assert mean_shift > 1.0 and mean_shift > 10 * abs(mean_same)
    # subset_size is capped by the smaller set and the result is reproducible.
    capped = kernel_inception_distance(a[:20], b, subset_size=100)
    assert capped == kernel_inception_distance(a[:20], b, subset_size=100)


# ----------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call,name", [
    (lambda: psnr(np.zeros((2, 8, 8)), np.zeros((2, 8, 9))), "generated and real"),
    (lambda: psnr(np.zeros((8, 8)), np.zeros((8, 8))), "generated"),
    (lambda: psnr(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), data_range=0), "data_range"),
    (lambda: ssim_pairs(np.zeros((2, 16, 16)), np.zeros((3, 16, 16))), "a and b"),
    (lambda: ms_ssim_pairs(np.full((1, 16, 16), np.nan), np.zeros((1, 16, 16))), "a must hold finite"),
    (lambda: pairwise_similarity(np.zeros((1, 16, 16))), "images needs at least 2"),
    (lambda: pairwise_similarity(np.zeros((3, 16, 16)), metric="lpips"), "metric"),
    (lambda: frechet_distance(np.zeros((5, 3)), np.zeros((5, 4))), "features_a and features_b"),
    (lambda: frechet_distance(np.zeros((1, 3)), np.zeros((5, 3))), "features_a needs at least 2"),
    (lambda: kernel_inception_distance(np.zeros((5, 3)), np.zeros((5,))), "features_b"),
    (lambda: kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 3)), subsets=0), "subsets"),
])
def test_bad_input_raises_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ----------------------------------------------------------------------------------------- Inception-V3

@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory):
    """A randomly initialised torchvision-layout state dict (1000 classes, AuxLogits) saved to disk."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "inception_v3_random.pth"
    torch.save(InceptionV3().state_dict(), path)
    return path


def test_inception_layout_matches_torchvision_names():
    keys = InceptionV3().state_dict().keys()
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_mean", "Mixed_5b.branch1x1.conv.weight",
                "Mixed_6e.branch7x7dbl_5.bn.weight", "Mixed_7a.branch7x7x3_4.conv.weight",
                "Mixed_7c.branch3x3dbl_3b.bn.running_var", "AuxLogits.fc.weight", "fc.weight", "fc.bias"):
        assert key in keys
    # torchvision's inception_v3(aux_logits=True) has 27,161,264 parameters.
    assert sum(p.numel() for p in InceptionV3().parameters()) == 27_161_264


def test_load_inception_and_features_shape(saved_weights):
    model = load_inception(saved_weights)
    assert not model.training and not model.fid_variant
    assert not any(p.requires_grad for p in model.parameters())
    images = smooth_images(2, 32)
    feats = inception_features(images, model, batch_size=1)
    assert feats.shape == (2, FEATURE_DIM) and np.isfinite(feats).all()
    # The weights really came from the file.
    reference = torch.load(saved_weights, weights_only=True)
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, reference["Mixed_7c.branch_pool.conv.weight"])


def test_fid_weights_select_fid_variant(tmp_path):
    state = InceptionV3(num_classes=1008, aux_logits=False, fid_variant=True).state_dict()
    path = tmp_path / "pt_inception-2015-12-05-random.pth"
    torch.save(state, path)
    model = load_inception(path)
    assert model.fid_variant and model.AuxLogits is None and model.fc.out_features == 1008
    # The variant changes the pooling branches: with the same weights, border pixels differ.
    x = torch.rand(1, 1008, 4, 4)[:, :768]
    plain = InceptionV3(num_classes=1008, aux_logits=False).eval()
    plain.load_state_dict(state)
    with torch.no_grad():
        assert not torch.allclose(model.Mixed_6b(x), plain.Mixed_6b(x))


def test_load_inception_missing_file_message(tmp_path):
    for path in (None, tmp_path / "nope.pth"):
        with pytest.raises(FileNotFoundError, match="FID needs an Inception-V3 weights file") as info:
            load_inception(path)
        message = str(info.value)
        assert "pt_inception" in message and "inception_v3_google" in message and "downloaded" in message


def test_load_inception_wrong_keys(tmp_path):
    path = tmp_path / "not_inception.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="not_inception.pth.*missing keys.*Conv2d_1a_3x3"):
        load_inception(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a torch file")
    with pytest.raises(ValueError, match="garbage.pth"):
        load_inception(garbage)
