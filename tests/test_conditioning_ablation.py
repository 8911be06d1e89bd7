"""benchmarks/genotype_conditioning_ablation.py: arm parsing and the report it writes (the training and
measurement it drives are the library's, tested in their own files)."""

from __future__ import annotations

import pytest

from g2i.errors import G2IError

from .conftest import load_benchmark

ablation = load_benchmark("genotype_conditioning_ablation")


def test_arms_parse_into_genotype_encoder_overrides():
    assert ablation.parse_arm("per_snp:snp_value_embedding=per_snp,num_layers=3,dropout=0.0") == (
        "per_snp", {"snp_value_embedding": "per_snp", "num_layers": 3, "dropout": 0.0})
    assert ablation.parse_arm("baseline:") == ("baseline", {})
    with pytest.raises(G2IError, match="name:key=value"):
        ablation.parse_arm("x:snp_value_embedding")
    with pytest.raises(G2IError, match="needs a name"):
        ablation.parse_arm(":num_layers=3")


def test_report_shows_every_arm_and_marks_what_cannot_be_computed():
    probe = {"encoder": {"e4_over_swap": 0.2}, "attention": {"over_uniform": 1.01},
             "denoiser": {50: {"e4_over_swap": 0.25}, 500: {"e4_over_swap": None}}}
    arm = lambda slope, ratio: {   # noqa: E731
        "probe": probe, "train": {"seconds": 600.0, "overrides": {"snp_value_embedding": "per_snp"}},
        "sweeps": {"1.5/3": {"slope": slope, "ci95": [slope - 0.001, slope + 0.001],
                             "to_ceiling": {"ratio": ratio, "ci95": [None, None]}}},
        "test": {"conditional": {"r": 0.45, "ci95": [0.37, 0.52], "ceiling": {"r": 0.55}, "ratio_to_ceiling": 0.82},
                 "label_effect_ratio": {"AD-CN": {"ratio": 0.71}, "MCI-CN": {"ratio": None}}}}
    results = {"ceiling": {"slope": 0.0607, "ci95": [0.0373, 0.0841]}, "truth": 0.058, "machine": "test CPU",
               "commit": "abc1234", "profile": "study_2000", "arms": {"shared": arm(0.004, 0.07),
                                                                      "per_snp": arm(0.03, 0.5)}}
    text = ablation.markdown(results, "python benchmarks/genotype_conditioning_ablation.py ...")
    assert "| shared | snp_value_embedding=per_snp | 10.0 | 0.20 | 0.25 / n/c | 1.01 |" in text
    assert "| per_snp | 1.5/3 | +0.0300 (0.0290 to 0.0310) | 0.50 (unbounded) |" in text
    assert "| shared | 0.450 (0.370 to 0.520) | 0.550 | 0.82 | 0.71 | n/c |" in text
    assert "+0.0607 (95 % CI 0.0373 to 0.0841)" in text and "`abc1234`" in text
