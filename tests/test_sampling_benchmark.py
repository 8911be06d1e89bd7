"""benchmarks/sampling_benchmark.py: the --root / --guidance options reach the pipeline (a workspace without
a trained model gives the untrained pipeline at the profile's size: speed only). Run in-process: two runs
of the script would spend most of their time importing torch and diffusers."""

from __future__ import annotations

import re
import sys

from .conftest import load_benchmark


def _run(monkeypatch, capsys, tmp_path, *guidance: str) -> str:
    module = load_benchmark("sampling_benchmark")
    monkeypatch.setattr(sys, "argv", ["sampling_benchmark.py", "--profile", "demo", "--root", str(tmp_path), "--n", "2",
                                      "--batch-size", "2", "--sweep", "0", "--samplers", "ddpm:2", *guidance])
    module.main()
    return capsys.readouterr().out


def test_guidance_scales_reach_the_sampler(monkeypatch, capsys, tmp_path):
    plain = _run(monkeypatch, capsys, tmp_path, "--guidance", "1", "--genotype-guidance", "1")
    guided = _run(monkeypatch, capsys, tmp_path, "--guidance", "1.5", "--genotype-guidance", "3")
    assert "UNTRAINED g2i_l_att" in plain and "guidance w 1.5, w_g 3.0" in guided
    rows = [re.search(r"^DDPM-2 .*$", out, re.M).group(0).split() for out in (plain, guided)]
    assert all(row[3] == "n/c" for row in rows)        # no trained model under --root: no FD
    assert rows[0][-1] != rows[1][-1]                  # the image mean moves with the guidance scales
