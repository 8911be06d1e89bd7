"""benchmarks/sampling_benchmark.py: the --root / --guidance options reach the pipeline (a workspace without
a trained model gives the untrained pipeline at the profile's size: speed only)."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT


def _run(tmp_path, *guidance: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/sampling_benchmark.py"), "--profile", "demo",
                             "--root", str(tmp_path), "--n", "2", "--batch-size", "2", "--sweep", "0",
                             "--samplers", "ddpm:2", *guidance], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_guidance_scales_reach_the_sampler(tmp_path):
    plain = _run(tmp_path, "--guidance", "1", "--genotype-guidance", "1")
    guided = _run(tmp_path, "--guidance", "1.5", "--genotype-guidance", "3")
    assert "UNTRAINED g2i_l_att" in plain and "guidance w 1.5, w_g 3.0" in guided
    rows = [re.search(r"^DDPM-2 .*$", out, re.M).group(0).split() for out in (plain, guided)]
    assert all(row[3] == "n/c" for row in rows)        # no trained model under --root: no FD
    assert rows[0][-1] != rows[1][-1]                  # the image mean moves with the guidance scales
