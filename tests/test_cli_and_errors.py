"""Bad parameters and outputs give a plain message, exit non-zero and leave nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from g2i.errors import G2IError
from g2i.synthetic import generate as generate_module
from g2i.synthetic.generate import generate_cohort

from .conftest import ROOT, tiny_spec


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "pipelines" / "synthesize.py"), *args],
                          capture_output=True, text=True, cwd=cwd)


def test_help_for_every_command():
    for command in (["g2i", "--help"], ["g2i", "synthesize", "--help"], ["g2i", "cohort-report", "--help"], ["g2i-synthesize", "--help"]):
        result = subprocess.run([str(Path(sys.executable).parent / command[0]), *command[1:]], capture_output=True, text=True)
        assert result.returncode == 0 and "usage" in result.stdout.lower()


def test_too_few_subjects_per_class(tmp_path):
    result = run_cli("--n-subjects", "8", "--out", str(tmp_path / "raw"))
    assert result.returncode == 2
    assert "at least 3" in result.stderr and "AD" in result.stderr
    assert not (tmp_path / "raw").exists()


def test_unknown_profile(tmp_path):
    result = run_cli("--profile", "huge", "--out", str(tmp_path / "raw"))
    assert result.returncode == 2
    assert "unknown profile 'huge'" in result.stderr and "demo" in result.stderr
    assert not (tmp_path / "raw").exists()


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_cli("--out", str(blocker / "raw"))
    assert result.returncode == 2
    assert str(blocker) in result.stderr and "cannot create output folder" in result.stderr


def test_existing_output_needs_force(tmp_path):
    (tmp_path / "raw").mkdir()
    result = run_cli("--out", str(tmp_path / "raw"))
    assert result.returncode == 2 and "--force" in result.stderr


def test_bad_params_file_is_named(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthesize"]["apoe_haplotype_freq"] = {"e2": 0.5, "e3": 0.6, "e4": 0.1}
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    result = run_cli("--params", str(bad), "--out", str(tmp_path / "raw"))
    assert result.returncode == 2 and "apoe_haplotype_freq" in result.stderr
    (tmp_path / "broken.yaml").write_text("profiles: [unclosed")
    result = run_cli("--params", str(tmp_path / "broken.yaml"), "--out", str(tmp_path / "raw"))
    assert result.returncode == 2 and "broken.yaml" in result.stderr


def test_failure_midway_leaves_no_output(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(generate_module, "_render_all", explode)
    with pytest.raises(RuntimeError):
        generate_cohort(tiny_spec(n_subjects=16, n_background_snps=50), tmp_path / "raw", progress=False)
    assert list(tmp_path.iterdir()) == []  # neither data/raw nor a temporary folder is left


def test_force_replaces_only_after_success(tmp_path, monkeypatch):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "keep.txt").write_text("old cohort")
    monkeypatch.setattr(generate_module, "_render_all", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        generate_cohort(tiny_spec(n_subjects=16, n_background_snps=50), out, overwrite=True, progress=False)
    assert (out / "keep.txt").read_text() == "old cohort"


def test_spec_validation_messages():
    with pytest.raises(G2IError, match="voxel_mm"):
        tiny_spec(voxel_mm=0)
    with pytest.raises(G2IError, match="adni1_fraction"):
        tiny_spec(adni1_fraction=1.5)


def test_library_value_errors_are_plain_words_and_foreign_ones_stay_tracebacks(monkeypatch, capsys):
    """A ValueError the library raises about its input reaches the user as one line with exit 2; one raised deep
    inside numpy (a bug of ours) keeps its traceback."""
    import numpy as np

    from g2i import cli
    from g2i.commands import split as split_command
    from g2i.evaluation.fidelity import ground_truth_apoe_effect

    monkeypatch.setattr(split_command, "run", lambda args: ground_truth_apoe_effect({"hippocampus": {}}))
    assert cli.main(["split"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("g2i split: error: ") and "params_effects" in err and "Traceback" not in err
    monkeypatch.setattr(split_command, "run", lambda args: np.zeros(3).reshape(2, 2))
    with pytest.raises(ValueError, match="reshape"):
        cli.main(["split"])


def test_importing_g2i_asks_mkl_for_alignment_independent_results_before_torch_loads():
    """MKL's GEMM picks its code path by memory alignment unless MKL_CBWR says STRICT, so the same stage could
    write other bytes when only the environment's size changed; g2i sets it before torch is imported, and
    leaves a user's own setting alone."""
    import os

    probe = "import os, sys, g2i; print(os.environ.get('MKL_CBWR'), 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert plain.stdout.split() == ["AUTO,STRICT", "False"]
    own = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**env, "MKL_CBWR": "COMPATIBLE"})
    assert own.stdout.split() == ["COMPATIBLE", "False"]


def test_the_mkl_benchmark_times_both_modes_in_their_own_processes(capsys, monkeypatch):
    """benchmarks/mkl_cbwr.py: one line per shape with both times and their ratio, labelled with the machine."""
    from .conftest import load_benchmark

    monkeypatch.setattr("sys.argv", ["mkl_cbwr.py", "--repeats", "1", "--reps", "2"])
    load_benchmark("mkl_cbwr").main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("machine: ") and len(lines) == 4
    assert all("MKL default" in line and "STRICT" in line and ": x" in line for line in lines[1:])
