"""The cohort_report stage: summary metrics and the CN vs AD preview figure."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from .conftest import ROOT


def test_cohort_report_stage_writes_metrics_and_preview(tiny_cohort, tmp_path):
    raw, _ = tiny_cohort
    out, figure = tmp_path / "summary.json", tmp_path / "preview.png"
    result = subprocess.run([sys.executable, str(ROOT / "pipelines" / "cohort_report.py"), "--raw", str(raw),
                             "--out", str(out), "--figure", str(figure)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert summary["ventricle_ratio_ad_over_cn"] > 1.0
    assert summary["spearman_measured_vs_ground_truth"] > 0.9
    assert set(summary["per_class"]) == {"CN", "MCI", "AD"}
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.size[0] > 400


def test_cohort_report_names_missing_input(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "pipelines" / "cohort_report.py"), "--raw", str(tmp_path),
                             "--out", str(tmp_path / "s.json")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "ADNIMERGE.csv: not found" in result.stderr
    assert not (tmp_path / "s.json").exists()
