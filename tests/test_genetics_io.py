"""The shipped SNP panel and the PLINK .bed encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from g2i.genetics.panel import APOE_SNPS, is_strand_ambiguous, load_panel
from g2i.genetics.plink import encode_bed_rows, write_plink1


def test_panel_is_shipped_with_sources_and_without_apoe_proxies():
    panel = load_panel()
    assert len(panel) >= 49 and panel["rsid"].is_unique
    assert {"rsid", "gene", "effect_allele", "other_allele", "effect_allele_freq", "odds_ratio", "source"} <= set(panel.columns)
    assert panel["source"].notna().all() and panel["effect_allele_freq"].between(0, 1).all()
    assert not {"rs2075650", "rs157581", "rs4420638", "rs429358", "rs7412"} & set(panel["rsid"])
    assert (panel["effect_allele"] != panel["other_allele"]).all()
    assert [s.rsid for s in APOE_SNPS] == ["rs429358", "rs7412"]
    assert is_strand_ambiguous("C", "G") and is_strand_ambiguous("t", "a") and not is_strand_ambiguous("A", "G")


def test_bed_roundtrip_through_pandas_plink(tmp_path):
    from pandas_plink import read_plink1_bin

    rng = np.random.default_rng(0)
    counts = rng.integers(-1, 3, size=(7, 13)).astype(np.int8)  # 13 samples: a partly filled last byte
    bim = pd.DataFrame({"chrom": 1, "snp": [f"rs{i}" for i in range(7)], "cm": 0, "pos": np.arange(7) + 100,
                        "a1": "A", "a2": "G"})
    fam = pd.DataFrame({"fid": [f"S{i}" for i in range(13)], "iid": [f"S{i}" for i in range(13)], "father": 0,
                        "mother": 0, "sex": 1, "pheno": -9})
    write_plink1(tmp_path / "x", bim, fam, counts)
    assert (tmp_path / "x.bed").stat().st_size == 3 + 7 * 4
    values = read_plink1_bin(str(tmp_path / "x.bed"), verbose=False).values  # counts the column-6 allele
    expected = np.where(counts.T < 0, np.nan, 2 - counts.T)
    np.testing.assert_array_equal(np.nan_to_num(values, nan=-1), np.nan_to_num(expected, nan=-1))


def test_bed_encoder_rejects_bad_codes():
    with pytest.raises(ValueError, match="0, 1, 2 or -1"):
        encode_bed_rows(np.array([[0, 3]]))
