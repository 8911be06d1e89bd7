"""The validate_genotypes stage: a good table passes with Data Docs; each kind of bad table is named and
stops the pipeline without outputs. GX takes seconds to start, so the tests share one project and run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from g2i.config import load_params, resolve
from g2i.errors import G2IError
from g2i.genetics.panel import load_panel
from g2i.validation.genotypes import SUITE_NAME, read_genotype_table, rules_from_params, validate_genotype_table

from .conftest import ROOT

SNPS = list(load_panel()["rsid"])
RULES = {"max_missing_fraction": 0.05, "min_per_class": 5, "diagnoses": ["AD", "CN", "MCI"]}
N = 60  # 20 per class
COMMITTED = [".gitignore", "checkpoints/validate_genotypes.json", "expectations/genotype_table.json",
             "great_expectations.yml", "validation_definitions/genotype_table.json"]


def make_table(seed: int = 0) -> pd.DataFrame:
    """A valid table: 20 subjects per class, codes 0/1/2, two missing calls (3.3 %) in the first SNP."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"PTID": [f"011_S_{i:04d}" for i in range(1, N + 1)],
                          "diagnosis": [("CN", "MCI", "AD")[i % 3] for i in range(N)]})
    for rsid in SNPS:
        table[rsid] = pd.array(rng.integers(0, 3, N), dtype="Int64")  # as the genotypes stage writes them
    table.loc[[0, 3], SNPS[0]] = pd.NA
    table["APOE4"] = rng.integers(0, 3, N)
    return table


def write(table: pd.DataFrame, path):
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory):
    return tmp_path_factory.mktemp("project") / "gx"


@pytest.fixture(scope="module")
def valid_run(gx_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("valid")
    table = write(make_table(), out / "genotypes.csv")
    summary = validate_genotype_table(table, SNPS, RULES, gx_root, out / "data_docs", out / "summary.json")
    return out, summary


def test_rules_come_from_params():
    assert rules_from_params(resolve(load_params(ROOT / "params.yaml"), "demo")) == RULES


def test_valid_table_passes_and_writes_docs_and_summary(valid_run):
    out, summary = valid_run
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["success"] and summary["expectations_failed"] == 0 and summary["failed"] == []
    # columns; PTID x2; diagnosis x2 + one row count per class; APOE4 x2; codes and missingness per SNP
    assert summary["expectations_evaluated"] == summary["expectations_successful"] == 1 + 2 + 2 + 3 + 2 + 2 * len(SNPS)
    assert summary["rows"] == N and summary["snps"] == len(SNPS)
    assert summary["per_class"] == {"AD": 20, "CN": 20, "MCI": 20}
    assert summary["max_missing_fraction"] == pytest.approx(2 / N, abs=1e-6)
    assert summary["max_missing_snp"] == SNPS[0]

    index = (out / "data_docs" / "index.html").read_text()
    assert SUITE_NAME in index and "expectations/genotype_table.html" in index
    assert 'id="g2i-offline-index"' in index  # plain links for a browser without the CDN scripts
    assert (out / "data_docs" / "expectations" / "genotype_table.html").is_file()
    pages = list((out / "data_docs" / "validations").rglob("*.html"))
    assert len(pages) == 1 and "At least 5 subjects with diagnosis AD" in pages[0].read_text()
    assert not any("amazonaws.com" in p.read_text() for p in (out / "data_docs").rglob("*.html"))  # GX's pixel


def test_gx_project_is_deterministic_and_commit_ready(valid_run, gx_root, tmp_path):
    committed = {name: (gx_root / name).read_bytes() for name in COMMITTED}
    assert b"analytics_enabled: false" in committed["great_expectations.yml"]
    assert (gx_root / ".gitignore").read_text() == "uncommitted/\n"
    assert sorted(p.relative_to(gx_root).as_posix() for p in gx_root.rglob("*")
                  if p.is_file() and p.relative_to(gx_root).parts[0] != "uncommitted") == sorted(COMMITTED)

    # a fresh project writes the same bytes (ids derived from names), and so does a rerun
    out, summary = valid_run
    fresh = tmp_path / "gx"
    again = validate_genotype_table(out / "genotypes.csv", SNPS, RULES, fresh, tmp_path / "docs", tmp_path / "s.json")
    assert {name: (fresh / name).read_bytes() for name in COMMITTED} == committed
    assert (tmp_path / "s.json").read_bytes() == (out / "summary.json").read_bytes() and again == summary


def code_3(table):
    table.loc[7, SNPS[3]] = 3
    return table, [f"expect_column_values_to_be_in_set [{SNPS[3]}]", "not in {0, 1, 2}: 3"]


def duplicate_ptid(table):
    table.loc[8, "PTID"] = table.loc[5, "PTID"]
    return table, ["expect_column_values_to_be_unique [PTID]", f"{table.loc[5, 'PTID']} (x2)"]


def unknown_diagnosis(table):
    table.loc[4, "diagnosis"] = "LMCI"  # an ADNIMERGE label that escaped data.diagnosis_map
    return table, ["expect_column_values_to_be_in_set [diagnosis]", "not in {AD, CN, MCI}: LMCI"]


def snp_10_percent_missing(table):
    table.loc[table.index[:6], SNPS[5]] = pd.NA
    return table, [f"expect_column_values_to_not_be_null [{SNPS[5]}]", "6 of 60 values missing (10.0 %)",
                   "at most 5.0 % allowed"]


def too_few_in_a_class(table):
    table = table.drop(table.index[table["diagnosis"] == "AD"][4:])
    return table, ["diagnosis == AD", "4 subjects, at least 5 required"]


def missing_snp_column(table):
    return table.drop(columns=[SNPS[9]]), ["expect_table_columns_to_match_set", f"missing columns {SNPS[9]}"]


@pytest.mark.parametrize("corrupt", [code_3, duplicate_ptid, unknown_diagnosis, snp_10_percent_missing,
                                     too_few_in_a_class, missing_snp_column], ids=lambda f: f.__name__)
def test_bad_table_is_named_and_writes_nothing(corrupt, gx_root, tmp_path):
    table, fragments = corrupt(make_table())
    path = write(table, tmp_path / "genotypes.csv")
    with pytest.raises(G2IError) as caught:
        validate_genotype_table(path, SNPS, RULES, gx_root, tmp_path / "out" / "data_docs", tmp_path / "out" / "summary.json")
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, message
    assert not (tmp_path / "out").exists()


def test_command_line_exits_2_on_a_bad_table(gx_root, tmp_path):
    table, _ = code_3(make_table())
    path = write(table, tmp_path / "genotypes.csv")
    genotype_summary = tmp_path / "genotypes.json"
    genotype_summary.write_text(json.dumps({"panel_snps_kept": SNPS}))
    docs, summary = tmp_path / "out" / "data_docs", tmp_path / "out" / "summary.json"
    result = subprocess.run([sys.executable, str(ROOT / "pipelines" / "validate_genotypes.py"), "--table", str(path),
                             "--genotype-summary", str(genotype_summary), "--docs", str(docs), "--summary", str(summary),
                             "--gx-root", str(gx_root)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"g2i validate-genotypes: error: {path}: 1 of ")
    assert f"[{SNPS[3]}]" in result.stderr
    assert not (tmp_path / "out").exists()


def test_only_empty_fields_are_missing(tmp_path):
    """'NA' or 'A' in a genotype column stays text, so the suite reports it rather than count a missing call."""
    path = tmp_path / "t.csv"
    path.write_text("PTID,diagnosis,rs1,rs2,APOE4\n011_S_0001,CN,1,NA,0\n011_S_0002,AD,,2.0,1\n")
    table = read_genotype_table(path)
    assert table["PTID"].tolist() == ["011_S_0001", "011_S_0002"]
    assert table["rs1"].isna().tolist() == [False, True] and table.loc[0, "rs1"] == 1
    assert table["rs2"].tolist() == ["NA", 2.0]
