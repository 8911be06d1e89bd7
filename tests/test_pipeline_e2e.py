"""`dvc repro` of the whole pipeline on a tiny cohort, in a throw-away repository, as a user would run it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from g2i.config import resolve
from g2i.stage_deps import stage_steps, step_code
from g2i.training.gan import train_config as gan_train_config
from g2i.vocabulary import DISPLAY_NAMES, GAN_VARIANTS

from .conftest import ROOT, free_port
from .test_gans import TINY_MODEL as TINY_GAN, TRAIN as TINY_GAN_TRAIN

BIN = Path(sys.executable).parent
TINY_DEMO = {
    "synthesize": {"n_subjects": 40, "voxel_mm": 4.0, "z_range_mm": [0, 32], "n_background_snps": 300},
    "slices": {"size": [32, 32]},
    "split": {"test_per_class": 2},
    "validate_genotypes": {"min_per_class": 2},
}
# The models this repro runs: each one's stages are two processes of ~8 s, nearly all of it imports (torch,
# diffusers, MLflow), so all seven would make this file the suite's long pole. One of each conditioning path:
# diagnosis only (LDM), genotype only through cross-attention (G2I), both with the guidance sweep (G2I-l w/ Att),
# and the GAN with the most code (AttnGAN). G2I-l w/o Att, CGAN and StackGAN run through the same foreach
# stages; test_train_diffusion and test_gans train and sample each of them, and `make demo` runs all seven.
E2E_VARIANTS = {"diffusion": ["ldm", "g2i", "g2i_l_att"], "gan": ["attngan"]}
MODELS = {*E2E_VARIANTS["diffusion"], *E2E_VARIANTS["gan"]}
MODEL_STAGES = ({f"{stage}@{v}" for v in E2E_VARIANTS["diffusion"] for stage in ("train", "sample")}
                | {f"{stage}@{v}" for v in E2E_VARIANTS["gan"] for stage in ("train_gan", "sample_gan")})


def run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{repo}/mlflow.db"}
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run(list(args), cwd=repo, capture_output=True, text=True, env=env)


def stages_run(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", result.stdout + result.stderr))


def tiny_training(params: dict) -> None:
    """Seconds, not minutes: tiny networks on 32 x 32 slices and a handful of steps."""
    model = params["model"]
    model["autoencoder"].update({"block_out_channels": [8, 8, 8], "norm_num_groups": 4, "sample_size": 32})
    model["discriminator"].update({"channels": 8, "norm_num_groups": 4})
    model["autoencoder_loss"]["adversarial_warmup_steps"] = 2
    model["genotype_encoder"].update({"embed_dim": 16, "num_layers": 1, "num_heads": 2, "ff_dim": 16})
    model["unet"].update({"block_out_channels": [16, 16, 32], "attention_head_dim": 8, "norm_num_groups": 4,
                          "sample_size": 8})
    model["scheduler"]["num_train_timesteps"] = 50
    for loop in ("autoencoder", "diffusion"):
        params["training"][loop].update({"max_steps": 4, "batch_size": 4, "checkpoint_every": 2, "warmup_steps": 1})
    params["sampling"].update({"num_inference_steps": 3, "batch_size": 16})
    params["model"]["gan"] = {k: v for k, v in TINY_GAN["gan"].items()}
    params["training"]["gan"] = {**TINY_GAN_TRAIN, "max_steps": 2}
    params["profiles"]["demo"]["sample"] = {"per_subject": 1, "per_class": 16, "n_counterfactual": 4,
                                            "guidance_sweep": [1.0, 2.0], "guidance_models": ["g2i_l_att"],
                                            "genotype_guidance_sweep": [1.0, 3.0]}
    params["evaluate"].update({"max_pairs": 20, "kid_subset_size": 8})
    params["classify"].update({"seeds": [0, 1]})
    # min_steps: the demo's 300-update floor made Table 2's 16 tiny classifiers the slowest stage here
    params["classify"]["classifier"].update({"epochs": 1, "batch_size": 8, "min_steps": 4})
    # profiles.demo overlays its own GAN steps and classifier floor on these sections; drop them, or the
    # "tiny" GANs train 400 / 270 / 200 steps (~60 s of this file's repro)
    params["profiles"]["demo"].update({"training": {}, "classify": {}})
    params["variants"] = E2E_VARIANTS


def assert_tiny(repo: Path) -> None:
    """What the stages will read after the profile overlay is still tiny (a profile edit cannot undo it)."""
    resolved = resolve(yaml.safe_load((repo / "params.yaml").read_text()))
    for variant in GAN_VARIANTS:
        assert gan_train_config(resolved, variant).max_steps == 2, variant
    for loop in ("autoencoder", "diffusion"):
        assert resolved["training"][loop]["max_steps"] == 4, loop
    assert resolved["classify"]["classifier"]["min_steps"] == 4
    assert resolved["classify"]["seeds"] == [0, 1]


def set_params(repo: Path, edit) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("e2e")
    for item in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / item, repo / item)
    for folder in ("pipelines", "src", "gx"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "uncommitted"))
    set_params(repo, lambda p: p["profiles"]["demo"].update(TINY_DEMO))
    set_params(repo, tiny_training)
    assert_tiny(repo)
    assert run(repo, "git", "init", "-q").returncode == 0
    assert run(repo, "dvc", "init", "-q").returncode == 0
    run(repo, "dvc", "config", "core.analytics", "false")
    synth = run(repo, sys.executable, "pipelines/synthesize.py", "--out", "data/raw", "--quiet")
    assert synth.returncode == 0, synth.stderr
    assert run(repo, "dvc", "add", "data/raw", "-q").returncode == 0
    return repo


def test_repro_runs_every_stage_then_nothing(repo):
    first = run(repo, "dvc", "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert stages_run(first) == {"cohort_report", "genotype_qc", "genotypes", "validate_genotypes", "slices", "split",
                                 "train_autoencoder", "encode_latents", "evaluate", "probe", "classify",
                                 "compare"} | MODEL_STAGES
    for output in ("reports/data/genotype_qc.md", "data/processed/genotypes.csv", "data/processed/slices/slices.npy",
                   "reports/validate_genotypes/data_docs/index.html", "data/processed/split.csv",
                   "models/autoencoder/config.json", "models/g2i_l_att/unet/config.json",
                   "models/g2i_l_att/genotype_encoder/config.json", "models/ldm/model_index.json",
                   "reports/train/g2i_l_att_samples.png", "data/generated/g2i/counterfactual.npz",
                   "reports/evaluate/table1.md", "reports/evaluate/fidelity.md", "reports/evaluate/fig2_samples.png",
                   "reports/evaluate/fig3_group_differences.png", "reports/classify/table2.md",
                   "reports/probe/probe.md", "reports/compare/models.md"):
        assert (repo / output).is_file(), output
    # the swept model's sets are generated at the w the sweep chose; the others at sampling.guidance_scale
    # (w_dx by label effects over the single-scale points, then w_g by FD_cnn at that w_dx)
    sweep = np.load(repo / "data/generated/g2i_l_att/guidance.npz")
    w, w_g, fd, error = sweep["w"], sweep["w_g"], sweep["fd_cnn"], sweep["label_error"]
    assert float(sweep["chosen"]) in (1.0, 2.0) and len(w) == len(fd) == len(error) >= 3
    assert {(1.0, 1.0), (2.0, 2.0), (float(sweep["chosen"]), 3.0)} <= set(zip(w.tolist(), w_g.tolist()))
    single = [i for i in range(len(w)) if w[i] == w_g[i]]
    best = min(single, key=lambda i: (not np.isfinite(error[i]), error[i] if np.isfinite(error[i]) else 0.0, w[i]))
    assert float(sweep["chosen"]) == w[best]
    at_w = [i for i in range(len(w)) if w[i] == w[best]]
    assert float(sweep["chosen_genotype"]) == w_g[min(at_w, key=lambda i: (fd[i], w_g[i]))]
    summary = json.loads((repo / "data/generated/g2i_l_att/summary.json").read_text())
    assert summary["generation"]["guidance_scale"] == float(sweep["chosen"])
    assert summary["generation"]["genotype_guidance_scale"] == (
        None if sweep["chosen_genotype"] == sweep["chosen"] else float(sweep["chosen_genotype"]))
    assert not (repo / "data/generated/g2i/guidance.npz").exists()
    table1 = (repo / "reports/evaluate/table1.md").read_text()
    assert all(f"| {DISPLAY_NAMES[model]} |" in table1 for model in MODELS)
    assert "| CGAN |" not in table1 and "| G2I-l w/o Att |" not in table1   # the variants line, not all seven
    table2 = (repo / "reports/classify/table2.md").read_text()
    assert "| Real only |" in table2 and "| Real + G2I-l w/ Att |" in table2 and "| Real + AttnGAN |" in table2
    assert "| Real only, class-balanced |" in table2 and "Against real only, class-balanced (accuracy)" in table2
    metrics = run(repo, "dvc", "metrics", "show", "--json")
    assert metrics.returncode == 0 and "psnr" in metrics.stdout and "macro_f1" in metrics.stdout
    second = run(repo, "dvc", "repro")
    assert second.returncode == 0 and stages_run(second) == set()


def test_editing_a_module_marks_exactly_the_stages_that_import_it(repo):
    module = "src/g2i/models/ssim.py"   # the autoencoder loss and Table 1's SSIM: models and evaluation, no data stage
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    params = yaml.safe_load((repo / "params.yaml").read_text())

    def items(foreach):   # "${variants.diffusion}": the params.yaml list DVC expands
        if not isinstance(foreach, str):
            return foreach
        value = params
        for key in foreach.strip("${}").split("."):
            value = value[key]
        return value

    expected = set()
    for name, step in stage_steps(dvc).items():
        if module in step_code(repo, step):
            stage = dvc["stages"][name]
            expected |= {f"{name}@{item}" for item in items(stage["foreach"])} if "foreach" in stage else {name}
    path = repo / module
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        status = run(repo, "dvc", "status", "--json")
    finally:
        path.write_text(original)
    assert status.returncode == 0, status.stderr
    assert {"train_autoencoder", "evaluate", "train@g2i"} <= expected and "slices" not in expected
    assert set(json.loads(status.stdout)) == expected
    assert json.loads(run(repo, "dvc", "status", "--json").stdout) == {}


def test_changing_a_qc_threshold_reruns_only_that_stage_and_later(repo):
    set_params(repo, lambda p: p["genotype_qc"].update({"hwe": 1e-6}))
    result = run(repo, "dvc", "repro")
    assert result.returncode == 0, result.stderr
    ran = stages_run(result)
    assert "genotype_qc" in ran
    assert "cohort_report" not in ran
    assert ran <= {"genotype_qc", "genotypes", "validate_genotypes", "slices", "split", "train_autoencoder",
                   "encode_latents", "evaluate", "probe", "classify", "compare"} | MODEL_STAGES


def test_failed_validation_stops_the_pipeline(repo):
    set_params(repo, lambda p: p["profiles"]["demo"]["validate_genotypes"].update({"min_per_class": 1000}))
    result = run(repo, "dvc", "repro")
    set_params(repo, lambda p: p["profiles"]["demo"]["validate_genotypes"].update({"min_per_class": 2}))
    assert result.returncode != 0
    assert "at least 1000 required" in result.stderr
    assert not stages_run(result) & {"slices", "split"}


def test_results_page_is_generated_from_the_run(repo, tmp_path):
    """docs/results/<profile>.{json,md}: the study's page, from the reports of a finished `dvc repro`."""
    import json

    from g2i.reports.results import write_results

    assert run(repo, "dvc", "repro").returncode == 0
    run_info = {"profile": "demo", "commit": "0" * 40, "wall_seconds": 12.5, "cpu": "test CPU", "cores": 2}
    paths = write_results(repo, tmp_path, run_info)
    data = json.loads((tmp_path / "demo.json").read_text())
    assert {"profile", "commit", "wall_seconds", "ceiling", "autoencoder", "models", "table2"} <= set(data)
    fidelity = json.loads((repo / "reports/evaluate/fidelity.json").read_text())
    assert data["ceiling"]["slope"] == fidelity["identifiability"]["ceiling_train"]["slope"]
    assert data["ceiling"]["truth"] == fidelity["ground_truth"]["log_area_per_allele"]
    assert set(data["models"]) == MODELS
    classify = json.loads((repo / "reports/classify/metrics.json").read_text())
    assert data["table2"]["real"]["accuracy_mean"] == classify["real"]["mean"]["accuracy"]
    assert (data["table2"]["g2i"]["accuracy_vs_balanced"]["mean"]
            == classify["g2i"]["vs_balanced"]["accuracy"]["mean"])
    text = (tmp_path / "demo.md").read_text()
    assert f"{data['ceiling']['slope']:+.4f}" in text and "0.2 min" in text and "| Real only |" in text
    assert "| Real only, class-balanced |" in text and "vs class-balanced real (95 % CI) |" in text
    assert (tmp_path / "demo/fidelity.png").is_file() and (tmp_path / "demo/e4_sweep.png").is_file()
    assert all(p.exists() for p in paths)
    # benchmarks/identifiability.py: the same ceiling from the data stages alone, no model needed
    measured = run(repo, sys.executable, str(ROOT / "benchmarks/identifiability.py"), "--out", str(tmp_path / "id.json"))
    assert measured.returncode == 0, measured.stderr
    alone = json.loads((tmp_path / "id.json").read_text())
    assert alone["train"]["ceiling"]["slope"] == pytest.approx(fidelity["identifiability"]["ceiling_train"]["slope"])
    assert alone["truth_log_area_per_allele"] == pytest.approx(fidelity["ground_truth"]["log_area_per_allele"])
    assert alone["train"]["drawn"]["n"] == alone["train"]["ceiling"]["n"] > 0 and "| train | drawn |" in measured.stdout


@pytest.mark.slow
def test_mlflow_ui_in_chromium_compares_every_model_and_shows_the_champion(repo, tmp_path):
    """The researcher's view, in a real browser: `mlflow ui` on the pipeline's store, the links `g2i ui` prints."""
    from g2i.errors import G2IError
    from g2i.mlflow_ui import (browser, check_pages, expected_metrics, find_browser, metric_problems, model_runs,
                               serve, ui_links)

    try:
        find_browser()
    except G2IError as exc:
        pytest.skip(f"no browser could be installed here: {exc}")
    assert run(repo, "dvc", "repro").returncode == 0
    registered = run(repo, "g2i", "register", "--models", "g2i_l_att")
    assert registered.returncode == 0 and "champion" in registered.stdout, registered.stdout + registered.stderr
    # one line per model, nothing else: no MLflow registration chatter, progress bars or warnings
    assert registered.stdout.count("\n") == 1 and registered.stderr.strip() == "", registered.stderr
    uri = f"sqlite:///{repo}/mlflow.db"
    experiment_id, runs = model_runs(uri, "g2i")
    assert set(runs) == MODELS
    expected = expected_metrics(uri, runs)
    with serve(uri, free_port()) as base, browser(tmp_path / "chromium") as driver:
        links = ui_links(base, experiment_id, runs, "g2i")
        assert all("workflowType=machine_learning" in links[page] for page in ("runs", "compare", "registry"))
        problems, shown = check_pages(driver, links, expected, tmp_path / "shots")
    assert problems == []
    assert all(len(shown[metric]) == len(runs) for metric in ("fd_cnn", "e4_to_ceiling", "table2_accuracy"))
    # the check can fail: a value the store does not hold is reported, by metric
    wrong = {variant: {**metrics, "fd_cnn": metrics["fd_cnn"] + 1.0} for variant, metrics in expected.items()}
    assert [p.split(" shows")[0] for p in metric_problems(shown, wrong)] == ["compare page: fd_cnn"]
    assert all((tmp_path / "shots" / f"{page}.png").stat().st_size > 10_000
               for page in ("experiment", "runs", "compare", "registry"))


# Last: it leaves genotypes.csv corrupted, and the tests before it start from a repro that has nothing to redo.
def test_corrupted_genotype_table_fails_the_stage(repo):
    assert run(repo, "dvc", "repro").returncode == 0
    table_path = repo / "data/processed/genotypes.csv"
    table = pd.read_csv(table_path, dtype=str)
    table.iloc[0, 2] = "3"
    table.to_csv(table_path, index=False)
    result = run(repo, "dvc", "repro", "--single-item", "validate_genotypes")
    assert result.returncode != 0
    assert "genotypes.csv" in result.stderr and table.columns[2] in result.stderr
