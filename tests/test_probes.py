"""The conditioning probe: it measures the APOE path itself, and reports nothing where a variant has no path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from g2i.evaluation.probes import conditioning_probe

from .test_g2i_pipeline import SNPS, tiny_pipeline

RNG = np.random.default_rng(0)
CODES = RNG.integers(0, 3, (6, len(SNPS)))
LABELS = np.array([0, 1, 2, 0, 1, 2])


def latents(pipe) -> torch.Tensor:
    return torch.randn(6, pipe.vae.config.latent_channels, 4, 4, generator=torch.Generator().manual_seed(1))


def test_cross_attention_model_gives_finite_ratios_and_normalised_attention():
    pipe = tiny_pipeline("g2i_l_att")
    out = conditioning_probe(pipe, CODES, LABELS, latents(pipe), timesteps=(10, 40))
    assert out["encoder"]["e4_rms"] > 0 and np.isfinite(out["encoder"]["e4_over_swap"])
    assert set(out["denoiser"]) == {10, 40}
    assert all(row["e4_rms"] > 0 and np.isfinite(row["e4_over_condition"]) for row in out["denoiser"].values())
    att = out["attention"]
    assert att["uniform"] == pytest.approx(1 / len(SNPS)) and 0 < att["mean_weight"] < 1 and att["layers"] >= 1


def test_an_encoder_blind_to_apoe_shows_zero_e4_effect_everywhere():
    pipe = tiny_pipeline("g2i_l_att")
    apoe = SNPS.index("APOE4")
    forward = pipe.genotype_encoder.forward

    def blind(genotypes, drop=None):    # the APOE token always reads 0: no e4 information gets through
        genotypes = genotypes.clone()
        genotypes[:, apoe] = 0
        return forward(genotypes, drop)

    pipe.genotype_encoder.forward = blind
    out = conditioning_probe(pipe, CODES, LABELS, latents(pipe), timesteps=(10,))
    assert out["encoder"]["e4_rms"] == 0 and out["encoder"]["e4_over_swap"] == 0
    assert out["denoiser"][10]["e4_rms"] == 0 and out["denoiser"][10]["swap_rms"] > 0


def test_label_only_model_has_no_genotype_path_and_bad_inputs_are_named():
    pipe = tiny_pipeline("ldm")
    out = conditioning_probe(pipe, CODES, LABELS, latents(pipe), timesteps=(10,))
    assert out["encoder"] is None and out["attention"] is None
    assert set(out["denoiser"][10]) == {"condition_rms"} and out["denoiser"][10]["condition_rms"] > 0
    with pytest.raises(ValueError, match="codes"):
        conditioning_probe(pipe, CODES[:, :2], LABELS, latents(pipe))
    with pytest.raises(ValueError, match="labels, z_0"):
        conditioning_probe(pipe, CODES, LABELS[:3], latents(pipe))


def test_timesteps_outside_the_schedule_are_refused():
    pipe = tiny_pipeline("g2i_l_att")
    with pytest.raises(ValueError, match="timesteps"):
        conditioning_probe(pipe, CODES, LABELS, latents(pipe), timesteps=(10, 10_000))


def test_sliced_forward_passes_give_the_one_batch_answer():
    """probe.batch_size bounds memory at the paper's sizes by running the U-Net on slices of the subjects; the
    figures match one batch (float rounding aside), slices of unequal size included (6 rows as 4 + 2)."""
    pipe = tiny_pipeline("g2i_l_att")
    whole = conditioning_probe(pipe, CODES, LABELS, latents(pipe), timesteps=(10, 40))
    for batch in (4, 1):
        sliced = conditioning_probe(pipe, CODES, LABELS, latents(pipe), timesteps=(10, 40), batch_size=batch)
        for t in (10, 40):
            for key, value in whole["denoiser"][t].items():
                assert sliced["denoiser"][t][key] == pytest.approx(value, rel=1e-4, abs=1e-7), (batch, t, key)
        assert sliced["attention"]["mean_weight"] == pytest.approx(whole["attention"]["mean_weight"], rel=1e-5)
        assert sliced["attention"]["layers"] == whole["attention"]["layers"]
