"""MLflow tracking helpers: the store location, flattened params, and run tags."""

from __future__ import annotations

import mlflow
import numpy as np

from g2i.tracking import (EXPERIMENT, data_version, flatten, log_new_params, run_tags, start_run, tracking_uri,
                          training_logger)

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


def test_training_logger_draws_each_loss_per_step_on_the_named_run(tmp_path, monkeypatch):
    """The trainers' callback: `train/<loss>` at each logged step, on its own run even when another is active."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    with start_run(ROOT, "train-x", {}) as run:
        log = training_logger(run.info.run_id)
    with start_run(ROOT, "other", {}) as other:
        log({"loss": 0.5, "kl": np.float32(0.25)}, 10)
        log({"loss": 0.25, "kl": np.float32(0.125)}, 20)
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(10, 0.5), (20, 0.25)]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "train/kl")] == [0.25, 0.125]
    assert client.get_run(other.info.run_id).data.metrics == {}


def test_the_test_session_never_logs_to_the_checkout_s_store():
    """tests/conftest.py points MLFLOW_TRACKING_URI at a session store, even under `make test`, which exports the
    checkout's mlflow.db: stages the tests run must not add runs to the user's store."""
    assert tracking_uri(ROOT) != f"sqlite:///{ROOT.resolve()}/mlflow.db"
    assert tracking_uri(ROOT).startswith("sqlite:///") and "mlflow" in tracking_uri(ROOT)
