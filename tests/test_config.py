"""params.yaml profiles: one source of every knob, each profile visible to DVC as written."""

from __future__ import annotations

import re

import pytest
import yaml

from g2i.config import SERVING_INHERITS, check_sizes, load_params, resolve
from g2i.serving.registry import check_serving
from g2i.errors import G2IError

from .conftest import ROOT


def test_the_study_points_resolve_from_the_real_params():
    params = load_params()
    study, larger = resolve(params, "study"), resolve(params, "study_2000")
    assert study["split"]["test_per_class"] == larger["split"]["test_per_class"] == 150
    assert larger["training"] == study["training"] and larger["sample"] == study["sample"]   # the YAML merge
    assert {k: v for k, v in larger["synthesize"].items() if k not in ("n_subjects", "class_proportions")} == \
        {k: v for k, v in study["synthesize"].items() if k not in ("n_subjects", "class_proportions")}
    pool = {dx: larger["synthesize"]["class_proportions"][dx] - 150 for dx in ("CN", "MCI", "AD")}
    assert sum(pool.values()) == 2000 and larger["synthesize"]["n_subjects"] == 2450
    # the paper's proportions 291 : 438 : 182, to the subject
    assert all(abs(pool[dx] / 2000 - share / 911) < 1e-3 for dx, share in (("CN", 291), ("MCI", 438), ("AD", 182)))
    assert sum(study["synthesize"]["class_proportions"].values()) - 450 == 911


def test_every_profile_defines_each_section_dvc_tracks_per_profile():
    """`dvc repro` stops ("Parameters 'profiles.x.s' are missing") under a profile that lacks a section some
    stage lists as profiles.${profile}.<section>; and a stage that reads a section some profile overrides
    must track that override, or editing it reruns nothing."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = load_params()
    tracked: dict[str, set[str]] = {}
    for name, stage in dvc["stages"].items():
        listed = [p for p in (stage.get("do") or stage).get("params", []) if isinstance(p, str)]
        per_profile = {m.group(1) for p in listed if (m := re.fullmatch(r"profiles\.\$\{profile\}\.(\w+)", p))}
        tracked[name] = per_profile
        overridden = {p.split(".")[0] for p in listed} & {s for prof in params["profiles"].values() for s in prof}
        assert overridden <= per_profile, f"{name}: reads {sorted(overridden - per_profile)} without its profile override"
    needed = set().union(*tracked.values())
    for profile, sections in params["profiles"].items():
        assert needed <= set(sections), f"profile {profile} lacks {sorted(needed - set(sections))}"


@pytest.mark.parametrize("edit, words", [
    (lambda p: p["profiles"]["demo"].setdefault("slices", {}).update({"size": [32, 32]}), "slices.size is 32 x 32 but model.autoencoder.sample_size is 64"),
    (lambda p: p["profiles"]["demo"].setdefault("model", {}).setdefault("unet", {}).update({"sample_size": 32}),
     "model.unet.sample_size is 32 but the autoencoder turns "
                                                              "64 x 64 slices into 16 x 16 latents; set it to 16"),
])
def test_a_slice_size_stated_differently_in_two_places_is_an_error(edit, words):
    params = load_params(ROOT / "params.yaml")
    edit(params)
    resolved = resolve(params, "demo")          # the data stages do not mind
    with pytest.raises(G2IError, match=re.escape(words)):
        check_sizes(resolved)                    # the model stages do (commands.model_params)


def test_serving_generates_as_sampling_unless_it_says_otherwise():
    params = load_params(ROOT / "params.yaml")
    resolved = resolve(params, "demo")
    for key in SERVING_INHERITS:
        assert key not in params["serving"] and resolved["serving"][key] == resolved["sampling"][key]
    params["sampling"]["num_inference_steps"] = 20
    params["serving"]["guidance_scale"] = 2.0
    resolved = resolve(params, "demo")
    assert resolved["serving"]["num_inference_steps"] == 20 and resolved["serving"]["guidance_scale"] == 2.0
    assert resolved["sampling"]["guidance_scale"] == 1.0
    check_serving(resolved["serving"])   # complete after the merge


def test_every_params_dataclass_rejects_unknown_keys_and_bad_values_by_name():
    """One boundary (config.from_section) for the sections that become frozen dataclasses."""
    from g2i.config import from_section
    from g2i.evaluation.classifier import ClassifierConfig
    from g2i.generation.sets import SampleConfig
    from g2i.losses.autoencoder import AutoencoderLossWeights
    from g2i.training.gan import DamsmConfig
    from g2i.training.trainer import TrainConfig

    params = resolve(load_params(ROOT / "params.yaml"), "demo")
    for build, section, where in ((TrainConfig.from_params, params["training"]["diffusion"], "training"),
                                  (SampleConfig.from_params, params["sample"], "sample"),
                                  (ClassifierConfig.from_params, params["classify"]["classifier"], "classifier"),
                                  (DamsmConfig.from_params, params["model"]["gan"]["attngan"]["damsm"],
                                   "model.gan.attngan.damsm")):
        build(section)   # today's params.yaml is accepted
        with pytest.raises(G2IError, match=rf"unknown {re.escape(where)} key\(s\) \['typo'\]; known: \["):
            build({**section, "typo": 1})
    with pytest.raises(G2IError, match=r"unknown model.autoencoder_loss key\(s\) \['typo'\]"):
        AutoencoderLossWeights.from_config({"autoencoder_loss": {**params["model"]["autoencoder_loss"], "typo": 1}})
    with pytest.raises(G2IError, match="bad classifier setting"):
        from_section(ClassifierConfig, {**params["classify"]["classifier"], "channels": 3}, "classifier")


def test_every_knob_of_the_training_sample_and_classifier_sections_is_required():
    """No code default restates or contradicts params.yaml: a key left out is an error naming it."""
    from g2i.evaluation.classifier import ClassifierConfig
    from g2i.generation.sets import SampleConfig
    from g2i.training.trainer import TrainConfig

    params = resolve(load_params(ROOT / "params.yaml"), "demo")
    for build, section, where in ((TrainConfig.from_params, params["training"]["autoencoder"], "training"),
                                  (SampleConfig.from_params, params["sample"], "sample"),
                                  (ClassifierConfig.from_params, params["classify"]["classifier"], "classifier")):
        build(section)   # complete
        for key in section:
            with pytest.raises(G2IError, match=rf"params.yaml: {re.escape(where)}\.{key} is missing"):
                build({k: v for k, v in section.items() if k != key})
