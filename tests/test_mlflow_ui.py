"""`g2i ui`: links that open MLflow 3.17's UI on the model runs, and plain errors when there is nothing to show.
(The pages themselves are checked in Chromium in tests/test_pipeline_e2e.py, on the pipeline's own store.)"""

from __future__ import annotations

import json
import urllib.parse

from g2i.cli import main
from g2i.mlflow_ui import ui_links


def test_every_link_asks_for_the_model_training_view_and_names_the_runs():
    links = ui_links("http://127.0.0.1:5000", "7", {"ldm": "a1", "g2i_l_att": "b2"}, "g2i")
    assert set(links) == {"runs", "compare", "registry"}
    assert all(link.endswith("workflowType=machine_learning") for link in links.values())
    assert links["runs"].startswith("http://127.0.0.1:5000/#/experiments/7/runs?")
    query = urllib.parse.parse_qs(links["compare"].split("?", 1)[1])
    assert json.loads(query["runs"][0]) == ["a1", "b2"] and json.loads(query["experiments"][0]) == ["7"]
    assert "/#/models/g2i?" in links["registry"]


def test_a_store_without_the_pipeline_runs_is_a_plain_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    assert main(["ui", "--check", str(tmp_path / "shots")]) == 2
    err = capsys.readouterr().err
    assert "no experiment 'g2i'" in err and "dvc repro" in err
    assert not (tmp_path / "shots").exists()


def test_the_compare_check_wants_every_model_s_value_as_the_store_holds_it():
    from g2i.mlflow_ui import metric_problems

    expected = {"ldm": {"fd_cnn": 0.35178, "e4_to_ceiling": float("nan")},
                "g2i_l_att": {"fd_cnn": 12.3456, "e4_to_ceiling": 0.3214}}
    shown = {"fd_cnn": ["0.352", "12.346"], "e4_to_ceiling": ["NaN", "0.321"]}
    assert metric_problems(shown, expected) == []
    assert metric_problems({**shown, "fd_cnn": ["0.352", "12.4"]}, expected)[0].startswith("compare page: fd_cnn shows")
    assert metric_problems({**shown, "fd_cnn": ["0.352"]}, expected)[0].startswith("compare page: fd_cnn shows")
    assert metric_problems({**shown, "e4_to_ceiling": ["0", "0.321"]}, expected)[0].startswith(
        "compare page: e4_to_ceiling")
    assert metric_problems({"fd_cnn": shown["fd_cnn"]}, expected) == ["compare page: no row for e4_to_ceiling"]
