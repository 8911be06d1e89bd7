"""params.yaml `variants`: the models `dvc repro` runs, per profile, and the stages that follow them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from g2i import cli
from g2i.commands import model_names
from g2i.config import load_params, resolve
from g2i.errors import G2IError
from g2i.vocabulary import DIFFUSION_VARIANTS, GAN_VARIANTS, pipeline_models, variants, variants_yaml

from .conftest import ROOT

BIN = Path(sys.executable).parent


def test_the_demo_runs_all_seven_and_the_study_the_issues_minimum():
    params = load_params(ROOT / "params.yaml")
    assert variants(resolve(params, "demo")) == {"diffusion": list(DIFFUSION_VARIANTS), "gan": list(GAN_VARIANTS)}
    assert variants(resolve(params, "paper")) == variants(resolve(params, "demo"))
    for profile in ("study", "study_2000"):   # study_2000 takes study's sections (a YAML merge)
        assert variants(resolve(params, profile)) == {"diffusion": ["ldm", "g2i", "g2i_l_att"], "gan": []}
    # the top-level line (what dvc.yaml's foreach reads) is the demo's, in the one-line form g2i study rewrites
    line = next(l for l in (ROOT / "params.yaml").read_text().splitlines() if l.startswith("variants:"))
    assert line.split("#")[0].strip() == f"variants: {variants_yaml(variants(resolve(params, 'demo')))}"


@pytest.mark.parametrize("bad, words", [
    ({"diffusion": ["ldm", "vae"], "gan": []}, "vae"),
    ({"diffusion": ["ldm", "ldm"], "gan": []}, "distinct"),
    ({"diffusion": ["cgan"], "gan": []}, "variants.diffusion"),
    ({"diffusion": ["ldm"]}, "must be {diffusion"),
])
def test_bad_variants_are_named(bad, words):
    with pytest.raises(G2IError, match=words.replace("{", r"\{")):
        variants({"profile": "demo", "variants": bad})


def test_stage_model_lists_default_to_the_configured_variants():
    params = {"profile": "study", "variants": {"diffusion": ["ldm", "g2i_l_att"], "gan": ["cgan"]}}
    assert pipeline_models(params) == ["cgan", "ldm", "g2i_l_att"]                       # GANs first, as Table 1
    assert pipeline_models(params, ("diffusion",)) == ["ldm", "g2i_l_att"]              # probe, register
    assert model_names([""]) == [] and model_names(None) == []                         # MLproject's default ""
    assert model_names(["g2i ldm"]) == ["g2i", "ldm"]                                  # named ones win


def test_train_refuses_a_variant_the_profile_drops_and_says_how_to_set_dvcs_line(tmp_path, capsys):
    params = load_params(ROOT / "params.yaml")   # top-level: all seven; profile study: three
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    assert cli.main(["train", "--variant", "g2i_l_noatt", "--profile", "study", "--params", str(path)]) == 2
    err = capsys.readouterr().err
    assert "does not run g2i_l_noatt" in err and "-S 'variants={diffusion: [ldm, g2i, g2i_l_att], gan: []}'" in err
    assert cli.main(["train", "--variant", "cgan", "--profile", "study", "--params", str(path)]) == 2
    assert "does not run cgan" in capsys.readouterr().err


def test_dvc_runs_exactly_the_variants_line(tmp_path):
    """dvc.yaml's foreach follows the top-level line: the study's gives three train@ / sample@ stages and no GAN
    stage; evaluate, classify and probe depend on the folders those stages write."""
    if shutil.which("dvc", path=str(BIN)) is None:
        pytest.skip("dvc is not installed in this environment")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}

    def dvc(*args: str) -> str:
        result = subprocess.run(["dvc", *args], cwd=tmp_path, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    dvc("init", "--no-scm", "-q")
    stages = {line.split()[0] for line in dvc("stage", "list").splitlines()}
    assert {f"train@{v}" for v in DIFFUSION_VARIANTS} | {f"sample_gan@{v}" for v in GAN_VARIANTS} <= stages
    text = (tmp_path / "params.yaml").read_text()
    study = variants_yaml(variants(resolve(load_params(tmp_path / "params.yaml"), "study")))
    (tmp_path / "params.yaml").write_text(
        "\n".join(f"variants: {study}" if l.startswith("variants:") else l for l in text.splitlines()) + "\n")
    stages = {line.split()[0] for line in dvc("stage", "list").splitlines()}
    per_model = {s for s in stages if "@" in s}
    assert per_model == {f"{stage}@{v}" for stage in ("train", "sample") for v in ("ldm", "g2i", "g2i_l_att")}
    dag = dvc("dag", "--dot", "classify")
    assert all(f'"sample@{v}"' in dag for v in ("ldm", "g2i", "g2i_l_att")) and "train_gan" not in dag
    dag = dvc("dag", "--dot", "probe")
    assert all(f'"train@{v}"' in dag for v in ("ldm", "g2i", "g2i_l_att"))
    # probe's `models` dependency is the trained models, not the trainers' resume state
    resume = "models/.checkpoints/autoencoder/checkpoints/step-00000500/random_states_0.pkl"
    assert dvc("check-ignore", resume).strip() == resume
    ignored = subprocess.run(["dvc", "check-ignore", "models/g2i/model_index.json"], cwd=tmp_path, env=env)
    assert ignored.returncode == 1   # a model is not ignored
