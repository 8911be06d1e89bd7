"""MLflow tracking helpers: the store location, flattened params, and run tags."""

from __future__ import annotations

import mlflow

from g2i.tracking import EXPERIMENT, data_version, flatten, log_new_params, run_tags, start_run, tracking_uri

from .conftest import ROOT


def test_tracking_uri_defaults_to_the_project_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere.db")
    assert tracking_uri(tmp_path) == "sqlite:////elsewhere.db"


def test_flatten_nested_params():
    flat = dict(flatten({"model": {"unet": {"widths": [32, 64]}, "lr": 1e-4}, "profile": "demo"}))
    assert flat == {"model.unet.widths": "[32, 64]", "model.lr": "0.0001", "profile": "demo"}


def test_tags_and_a_real_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    tags = run_tags(ROOT, "demo", variant="g2i_l_att")
    assert tags["g2i.data_dvc_md5"] == data_version(ROOT) != "untracked"
    assert len(tags["g2i.git_commit"].split("-")[0]) == 40 or tags["g2i.git_commit"] == "unknown"
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    with start_run(ROOT, "test-run", tags) as run:
        log_new_params(dict(flatten({"model": {"lr": 1e-4}})))
        log_new_params({"model.lr": "changed", "other": "1"})  # an already-logged key is left alone
    assert mlflow.get_tracking_uri() == tracking_uri()
    stored = mlflow.get_run(run.info.run_id)
    assert stored.data.tags["g2i.variant"] == "g2i_l_att" and stored.data.params["model.lr"] == "0.0001"
    assert stored.data.params["other"] == "1"
    experiment = mlflow.get_experiment(stored.info.experiment_id)
    assert experiment.name == EXPERIMENT
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs


def test_training_runs_draw_system_metrics(tmp_path, monkeypatch):
    """CPU and memory curves beside the loss in the run's charts (MLflow's own sampler, psutil)."""
    import time

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    with start_run(ROOT, "train-test", {"g2i.stage": "train"}, system_metrics=True) as run:
        time.sleep(2.5)
    with start_run(ROOT, "evaluate-test", {"g2i.stage": "evaluate"}) as quiet:
        time.sleep(1.5)
    assert any(k.startswith("system/cpu_utilization") for k in mlflow.get_run(run.info.run_id).data.metrics)
    assert not any(k.startswith("system/") for k in mlflow.get_run(quiet.info.run_id).data.metrics)
