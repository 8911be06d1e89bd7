"""g2i compare: one row per model copied from the stage reports, and one MLflow run per model over its stage runs."""

from __future__ import annotations

import json

import mlflow
import yaml

from g2i.commands.compare import log_model_runs
from g2i.reports.model_table import COLUMNS, model_rows, render_markdown
from g2i.tracking import start_run

EVALUATION = {"real": {"psnr": 99.0},
              "g2i_l_att": {"fd_cnn": 1.25, "kid_cnn": 3.5, "psnr": 18.0, "ssim": 0.6, "ms_ssim": 0.7, "ssim_pairwise": 0.3,
                            "sweep_to_truth": 0.16, "sweep_to_ceiling": 0.44, "sweep_to_ceiling_ci95_lo": 0.1,
                            "sweep_to_ceiling_ci95_hi": 0.9, "label_effect_ratio_ad_cn": 1.1,
                            "label_effect_ratio_mci_cn": 0.9, "conditional_r": 0.75, "conditional_r_ci95_lo": 0.7,
                            "conditional_r_ci95_hi": 0.8, "fid": None},
              "cgan": {"fd_cnn": 170.0, "psnr": float("nan"), "sweep_to_truth": 0.0}}
FIDELITY = {"models": {"g2i_l_att": {"apoe_sweep": {"effect": 0.0092, "ci95": [0.007, 0.0114]},
                                     "memorisation": {"max": 0.84}},
                       "cgan": {"apoe_images_identical_across_doses": True,
                                "apoe_sweep": {"effect": 0.0, "ci95": [0.0, 0.0]}, "memorisation": {"max": 0.5}}}}
CLASSIFY = {"real": {"mean": {"accuracy": 0.41}, "n_train": 90},
            "real_balanced": {"mean": {"accuracy": 0.44}, "n_train": 300,
                              "vs_real": {"accuracy": {"mean": 0.03, "ci95": [-0.1, 0.16]}}},
            "g2i_l_att": {"mean": {"accuracy": 0.46}, "ci95": {"accuracy": [0.37, 0.55]}, "n_train": 300,
                          "vs_real": {"accuracy": {"mean": 0.05, "ci95": [-0.11, 0.22]}},
                          "vs_balanced": {"accuracy": {"mean": 0.02, "ci95": [-0.08, 0.12]}}}}


def test_rows_copy_every_number_from_its_report_and_mark_what_is_absent():
    rows = model_rows(EVALUATION, FIDELITY, CLASSIFY)
    assert set(rows) == {"g2i_l_att", "cgan"}                                # 'real' is not a model
    att = rows["g2i_l_att"]
    assert att["fd_cnn"] == 1.25 and att["e4_sweep_slope"] == 0.0092 and att["e4_sweep_slope_ci95_hi"] == 0.0114
    assert att["e4_to_ceiling_ci95_lo"] == 0.1 and att["memorisation_max"] == 0.84
    assert att["table2_accuracy"] == 0.46 and att["table2_gain_vs_real"] == 0.05
    assert att["table2_gain_vs_real_ci95_lo"] == -0.11
    assert att["table2_gain_vs_balanced"] == 0.02 and att["table2_gain_vs_balanced_ci95_hi"] == 0.12
    assert "real_balanced" not in rows                                         # a control row, not a model
    cgan = rows["cgan"]
    assert cgan["psnr"] is None and cgan["table2_accuracy"] is None and cgan["table2_gain_vs_balanced"] is None
    assert cgan["e4_sweep_slope"] is None and cgan["e4_to_truth"] is None      # no genotype input: n/a, not 0
    text = render_markdown(rows, {"g2i_l_att": "G2I-l w/ Att", "cgan": "CGAN"})
    assert text.count("\n| ") == 3 and "| G2I-l w/ Att | 1.250 |" in text and "+0.0092 (0.007 to 0.0114)" in text
    assert all(label in text for _, label, _ in COLUMNS)


def test_one_mlflow_run_per_model_carries_its_numbers_params_data_and_stage_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "slices": {"outs": [{"path": "data/processed/slices", "md5": "0123456789abcdef.dir"}]},
        "split": {"outs": [{"path": "data/processed/split.csv", "md5": "fedcba9876543210"}]}}}))
    stage_runs = {}
    for stage in ("train", "sample", "evaluate", "classify"):
        for attempt in (1, 2):                                                # the newer run is the child
            tags = {"g2i.variant": "g2i_l_att", "g2i.profile": "demo", "g2i.stage": stage}
            with start_run(tmp_path, f"{stage}-g2i_l_att", tags) as run:
                if stage == "train":
                    mlflow.log_params({"model.unet.layers_per_block": attempt, "training.diffusion.max_steps": 800})
            stage_runs[(stage, attempt)] = run.info.run_id
    with start_run(tmp_path, "train-g2i_l_att", {"g2i.variant": "g2i_l_att", "g2i.profile": "paper",
                                                 "g2i.stage": "train"}) as other_profile:
        pass
    rows = model_rows(EVALUATION, FIDELITY, CLASSIFY)
    created = log_model_runs(tmp_path, {"g2i_l_att": rows["g2i_l_att"]}, "demo", {"g2i_l_att": "G2I-l w/ Att"},
                             {"g2i_l_att": "diffusion"})
    model_run = mlflow.get_run(created[0])
    assert model_run.info.run_name == "model-g2i_l_att" and model_run.info.status == "FINISHED"
    assert model_run.data.metrics["fd_cnn"] == 1.25 and model_run.data.metrics["table2_gain_vs_real"] == 0.05
    assert "e4_to_truth" in model_run.data.metrics and "psnr" in model_run.data.metrics
    assert model_run.data.params["model.unet.layers_per_block"] == "2"        # from the newest train run
    assert model_run.data.tags["g2i.family"] == "diffusion" and model_run.data.tags["g2i.variant"] == "g2i_l_att"
    digests = {d.dataset.name: d.dataset.digest for d in model_run.inputs.dataset_inputs}
    assert digests == {"data/processed/slices": "0123456789abcdef.dir", "data/processed/split.csv": "fedcba9876543210"}
    for stage in ("train", "sample", "evaluate", "classify"):
        assert mlflow.get_run(stage_runs[(stage, 2)]).data.tags["mlflow.parentRunId"] == created[0]
        assert "mlflow.parentRunId" not in mlflow.get_run(stage_runs[(stage, 1)]).data.tags
    assert "mlflow.parentRunId" not in mlflow.get_run(other_profile.info.run_id).data.tags
    logged = mlflow.search_logged_models(experiment_ids=[model_run.info.experiment_id], output_format="list")
    assert [m.name for m in logged] == ["g2i_l_att"] and logged[0].source_run_id == created[0]
    assert {m.key: m.value for m in logged[0].metrics}["fd_cnn"] == 1.25
    experiment = mlflow.get_experiment(model_run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_missing_or_broken_report_is_a_plain_error(tmp_path, capsys):
    from g2i.cli import main

    (tmp_path / "evaluate").mkdir()
    (tmp_path / "evaluate/metrics.json").write_text("{not json")
    (tmp_path / "evaluate/fidelity.json").write_text(json.dumps(FIDELITY))
    code = main(["compare", "--evaluation", str(tmp_path / "evaluate"), "--classify", str(tmp_path / "c.json"),
                 "--out", str(tmp_path / "out")])
    assert code != 0 and "metrics.json: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_results_page_carries_both_table_2_differences():
    """The study's results page (g2i.reports.results) keeps each row's difference with real only and, for a
    model, with the class-balanced control, as classify's metrics.json holds them."""
    from g2i.reports.results import table2_entries

    table, scarcity = table2_entries(CLASSIFY)
    assert set(table) == {"real", "real_balanced", "g2i_l_att"} and scarcity == {}
    assert table["g2i_l_att"]["accuracy_vs_balanced"] == {"mean": 0.02, "ci95": [-0.08, 0.12]}
    assert table["real_balanced"]["accuracy_vs_real"]["mean"] == 0.03
    assert "accuracy_vs_balanced" not in table["real_balanced"] and "accuracy_vs_real" not in table["real"]
