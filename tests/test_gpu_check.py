"""benchmarks/gpu_check.py, ready for a GPU user: its dry run on CPU exercises every measurement end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from .conftest import ROOT, load_benchmark


def test_dry_run_writes_every_figure_of_the_gpu_column(tmp_path, monkeypatch, capsys):
    """In this process (the script's imports are the worker's already); the refusal below runs it as a process."""
    monkeypatch.setattr(sys, "path", list(sys.path))            # the script puts benchmarks/ and src/ on it
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--dry-run", "--out", str(tmp_path)])
    load_benchmark("gpu_check").main()
    assert "DRY RUN" in capsys.readouterr().out
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["dry_run"] is True and data["profile"] == "paper"
    numbers = [data["training"][k] for k in ("images_per_s", "mfu", "ae_step_s", "full_step_s")] + [
        data["sampling"]["images_per_s"], data["serving"]["p50_s"]]
    assert all(math.isfinite(x) and x > 0 for x in numbers), numbers
    assert data["sampling"]["finite"] and data["serving"]["image_height"] == 32
    table = (tmp_path / "gpu_check.md").read_text()
    assert "DRY RUN" in table and "autoencoder step" in table and "served request" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_without_a_gpu_it_refuses_to_measure_and_says_how_to_check_it(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--dry-run" in result.stderr and not list(tmp_path.iterdir())
