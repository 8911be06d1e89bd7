"""`g2i ui`: links that open MLflow 3.17's UI on the model runs, and plain errors when there is nothing to show.
(The pages themselves are checked in Chromium in tests/test_pipeline_e2e.py, on the pipeline's own store.)"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from g2i.cli import main
from g2i.mlflow_ui import ui_links


def test_every_link_asks_for_the_model_training_view_and_names_the_runs():
    links = ui_links("http://127.0.0.1:5000", "7", {"ldm": "a1", "g2i_l_att": "b2"}, "g2i")
    assert set(links) == {"experiment", "runs", "compare", "registry"}
    # the bare experiment address asks for nothing: it shows what the server's UI opens by default
    assert links["experiment"] == "http://127.0.0.1:5000/#/experiments/7"
    assert all(links[page].endswith("workflowType=machine_learning") for page in ("runs", "compare", "registry"))
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


def test_the_g2i_app_serves_mlflow_s_page_with_the_model_training_default_first():
    from flask import Flask
    from mlflow.server import app as mlflow_app

    from g2i.mlflow_app import WORKFLOW_KEY, create_app, with_default_workflow

    page = with_default_workflow("<!doctype html><html><head><title>MLflow</title><script src='main.js'></script>")
    script = page.index("localStorage")
    assert page.index("<head>") < script < page.index("main.js")   # before MLflow's own script reads the key
    assert f'getItem("{WORKFLOW_KEY}")===null' in page and '"\\"machine_learning\\""' in page
    with pytest.raises(ValueError, match="no <head>"):
        with_default_workflow("<html><body></body></html>")
    # the entry point `mlflow ui --app-name g2i` loads, and its index page is MLflow's with the line added
    import importlib.metadata as md

    [entry] = [e for e in md.entry_points(group="mlflow.app") if e.name == "g2i"]
    assert entry.value == "g2i.mlflow_app:create_app"
    original = mlflow_app.view_functions["serve"]
    try:
        app = create_app()   # no uvicorn in this process: the Flask app itself
        assert isinstance(app, Flask) and app is mlflow_app
        served = app.test_client().get("/").get_data(as_text=True)
    finally:
        mlflow_app.view_functions["serve"] = original
    assert served.startswith("<!doctype html>") and WORKFLOW_KEY in served and "static-files/static/js/main." in served
