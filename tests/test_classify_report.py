"""Table 2's statistics and report: t-intervals, paired differences, the real-data-scarcity subsample,
the fractions parameter, table2.md / metrics.json, and the `classify` command on a tiny fake project."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from g2i.commands import classify
from g2i.errors import G2IError
from g2i.evaluation.classifier import (METRICS, check_real_fractions, fraction_key, intervals_overlap,
                                       paired_difference, stratified_subject_subsample, t_interval)
from g2i.evaluation.tables import table2_markdown

from .conftest import classifier_section, sample_section


# ---------------------------------------------------------------------------------------------- intervals

def test_t_interval_on_known_numbers():
    # mean 3, sample std sqrt(2.5), se sqrt(0.5); t(0.975, 4 dof) = 2.7764451052
    lo, hi = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * np.sqrt(0.5)
    assert (lo, hi) == pytest.approx((3 - half, 3 + half), abs=1e-12)
    assert (lo, hi) == pytest.approx((1.036757, 4.963243), abs=1e-6)
    # two values: t(0.975, 1) = 12.7062047362; mean 0.5, s = 0.1 * sqrt(2), se = 0.1
    assert t_interval([0.4, 0.6]) == pytest.approx([0.5 - 12.706204736174707 * 0.1, 0.5 + 12.706204736174707 * 0.1])
    assert t_interval([0.7, 0.7, 0.7]) == pytest.approx([0.7, 0.7])
    assert t_interval([0.7]) is None  # one seed: undefined
    with pytest.raises(ValueError, match="values"):
        t_interval([])


def fake_report(values: list[float], n_train: int = 30, seeds: list[int] | None = None) -> dict:
    """An `evaluate_over_seeds`-shaped result whose every metric takes `values` over the seeds."""
    seeds = seeds or list(range(len(values)))
    per_seed = [{"seed": s, **{m: v for m in METRICS}} for s, v in zip(seeds, values)]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"seeds": seeds, "per_seed": per_seed, "mean": {m: float(np.mean(values)) for m in METRICS},
            "std": {m: std for m in METRICS}, "ci95": {m: t_interval(values) for m in METRICS},
            "n_train": n_train, "n_test": 9, "n_real": n_train}


def test_paired_difference_is_the_per_seed_difference_and_needs_the_same_seeds():
    real, aug = fake_report([0.5, 0.6, 0.7]), fake_report([0.6, 0.75, 0.8])
    diff = paired_difference(aug, real, ["accuracy"])["accuracy"]
    assert diff["mean"] == pytest.approx((0.1 + 0.15 + 0.1) / 3)
    assert diff["ci95"] == pytest.approx(t_interval([0.1, 0.15, 0.1]))
    assert diff["n_seeds"] == 3
    # the rows' own intervals overlap widely, the paired one excludes 0: pairing is the sharper test
    assert intervals_overlap(aug["ci95"]["accuracy"], real["ci95"]["accuracy"]) is True
    assert diff["ci95"][0] > 0
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference(fake_report([0.6, 0.7, 0.8], seeds=[3, 4, 5]), real)
    assert paired_difference(fake_report([0.6]), fake_report([0.5]))["accuracy"]["ci95"] is None
    assert intervals_overlap([0, 1], [1, 2]) and not intervals_overlap([0, 1], [1.5, 2])
    assert intervals_overlap(None, [0, 1]) is None


# ------------------------------------------------------------------------------------- scarcity subsample

def subjects_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """CN 10, MCI 7, AD 3 subjects, two slices each, interleaved."""
    classes = [0] * 10 + [1] * 7 + [2] * 3
    subjects = np.array([f"S{i:02d}" for i in range(20) for _ in range(2)])
    labels = np.array([classes[i] for i in range(20) for _ in range(2)])
    order = np.random.default_rng(0).permutation(len(subjects))
    return subjects[order], labels[order]


def kept_subjects(subjects, labels, index) -> dict[int, set[str]]:
    return {c: set(subjects[index][labels[index] == c]) for c in range(3)}


def test_stratified_subsample_keeps_the_right_subjects_per_class_every_time():
    subjects, labels = subjects_and_labels()
    half = stratified_subject_subsample(subjects, labels, 0.5, seed=0)
    assert np.array_equal(half, np.sort(half))
    assert {c: len(s) for c, s in kept_subjects(subjects, labels, half).items()} == {0: 5, 1: 4, 2: 2}  # 3.5, 1.5 up
    assert len(half) == 2 * 11  # every slice of a kept subject, none of the others
    assert np.array_equal(stratified_subject_subsample(subjects, labels, 0.5, seed=0), half)  # identical again
    tiny = stratified_subject_subsample(subjects, labels, 0.05, seed=0)
    assert {c: len(s) for c, s in kept_subjects(subjects, labels, tiny).items()} == {0: 1, 1: 1, 2: 1}  # >= 1 each
    quarter = stratified_subject_subsample(subjects, labels, 0.25, seed=0)
    for c in range(3):  # nested: a smaller fraction's subjects lie within a larger one's
        assert kept_subjects(subjects, labels, quarter)[c] <= kept_subjects(subjects, labels, half)[c]
    assert np.array_equal(stratified_subject_subsample(subjects, labels, 1.0, seed=0), np.arange(len(subjects)))
    other = stratified_subject_subsample(subjects, labels, 0.5, seed=1)
    assert len(other) == len(half) and not np.array_equal(other, half)


def test_stratified_subsample_rejects_a_subject_with_two_labels_and_bad_fractions():
    subjects, labels = np.array(["a", "a", "b"]), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="subject a"):
        stratified_subject_subsample(subjects, labels, 0.5, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        stratified_subject_subsample(np.array(["a"]), np.array([0]), 0.0, seed=0)


@pytest.mark.parametrize("bad", [[], None, 0.5, [0.0], [1.5], [-0.25], ["0.5"], [True], [0.5, 0.5]])
def test_bad_real_fractions_raise_naming_the_parameter(bad):
    with pytest.raises(G2IError, match=r"classify\.real_fractions"):
        check_real_fractions(bad)


def test_real_fractions_are_sorted_and_always_include_table_2():
    assert check_real_fractions([1.0]) == [1.0]
    assert check_real_fractions([0.5, 0.25]) == [0.25, 0.5, 1.0]
    assert check_real_fractions([1, 0.5]) == [0.5, 1.0]
    assert fraction_key(0.25) == "0.25" and fraction_key(1) == "1.0"
    assert classify.row_name("g2i", 1.0) == "g2i" and classify.row_name("real", 0.25) == "real@0.25"


# ---------------------------------------------------------------------------------------- report

def results_for(fractions: list[float]) -> dict[float, dict[str, dict]]:
    out = {}
    for f in sorted(fractions, reverse=True):
        shift = (1 - f) * 0.2
        out[f] = {"real": fake_report([0.60 - shift, 0.62 - shift, 0.64 - shift], n_train=int(90 * f)),
                  "g2i": fake_report([0.74, 0.78, 0.76], n_train=300),           # clearly better, paired
                  "cgan": fake_report([0.61 - shift, 0.60 - shift, 0.65 - shift], n_train=300)}  # no clear change
    return out


def test_markdown_without_scarcity_when_only_table_2_is_configured():
    md = table2_markdown(results_for([1.0]), [0, 1, 2], {"CN": 3, "MCI": 3, "AD": 3}, per_class=100)
    assert "Real-data scarcity" not in md
    real_ci = t_interval([0.60, 0.62, 0.64])
    assert f"| Real only | 90 | 0.620 ({real_ci[0]:.3f}, {real_ci[1]:.3f}) |" in md
    g2i_line = next(line for line in md.splitlines() if line.startswith("- Real + G2I:"))
    assert "raised accuracy by 0.140" in g2i_line and "paired over 3 seeds" in g2i_line
    assert "do not overlap" in g2i_line
    cgan_line = next(line for line in md.splitlines() if line.startswith("- Real + CGAN:"))
    assert "did not clearly change accuracy" in cgan_line and "intervals overlap" in cgan_line
    assert sum(line.startswith("- Real + ") for line in md.splitlines()) == 2  # one sentence per augmented row


def test_markdown_scarcity_section_has_one_line_per_training_set_and_a_column_per_fraction():
    results = results_for([0.25, 0.5, 1.0])
    subjects = {f: {"CN": round(10 * f), "MCI": round(12 * f), "AD": round(4 * f)} for f in results}
    md = table2_markdown(results, [0, 1, 2], {"CN": 3, "MCI": 3, "AD": 3}, subjects, per_class=100)
    table2, scarcity = md.split("## Real-data scarcity")
    assert "@" not in table2 and table2.count("| Real + ") == 2  # Table 2 itself is unchanged
    lines = scarcity.splitlines()
    assert "| Training data | f = 0.25 | f = 0.5 | f = 1.0 |" in lines
    assert "| Real subjects (CN / MCI / AD) | 2 / 3 / 1 | 5 / 6 / 2 | 10 / 12 / 4 |" in lines
    real_line = next(line for line in lines if line.startswith("| Real only |"))
    assert real_line.count("(") == 3 and real_line.startswith("| Real only | 0.470 (")
    assert "Against real only at f = 0.25 (accuracy):" in scarcity
    assert sum(line.startswith("- Real + ") for line in lines) == 2  # the smallest fraction's sentences
    assert "raised accuracy by 0.290" in scarcity


def test_the_class_balanced_control_has_its_row_and_a_second_verdict_for_each_model():
    """With REAL_BALANCED in the rows: a row of its own, its verdict against real only, and each model's
    verdict against it (where the generated images alone differ)."""
    results = results_for([0.25, 1.0])
    for f, rows in results.items():
        rows_with = {"real": rows["real"], "real_balanced": fake_report([0.74, 0.77, 0.77], n_train=300)}
        results[f] = {**rows_with, **{k: v for k, v in rows.items() if k != "real"}}
    md = table2_markdown(results, [0, 1, 2], {"CN": 3, "MCI": 3, "AD": 3}, per_class=100)
    table2, scarcity = md.split("## Real-data scarcity")
    lines = table2.splitlines()
    assert [line.split(" |")[0] for line in lines if line.startswith("| Real")] == [
        "| Real only", "| Real only, class-balanced", "| Real + G2I", "| Real + CGAN"]
    assert "repeating its own real slices" in table2
    balanced = next(line for line in lines if line.startswith("- Real only, class-balanced:"))
    assert "class balancing raised accuracy by 0.140" in balanced and "vs 0.620 real only" in balanced
    against = lines[lines.index("Against real only, class-balanced (accuracy): the same size and class balance, so "
                                "a change here is the generated images' own:") + 2:]
    g2i = next(line for line in against if line.startswith("- Real + G2I:"))
    cgan = next(line for line in against if line.startswith("- Real + CGAN:"))
    assert "did not clearly change accuracy" in g2i and "vs 0.760 real only, class-balanced" in g2i
    assert "augmentation lowered accuracy by" in cgan
    assert "Against real only, class-balanced at f = 0.25 (accuracy)" in scarcity
    summary = classify.metrics_summary(results)
    assert summary["g2i"]["vs_balanced"]["accuracy"]["mean"] == pytest.approx(0.0)
    assert summary["real_balanced"]["vs_real"]["accuracy"]["mean"] == pytest.approx(0.14)
    assert "vs_balanced" not in summary["real"] and "vs_real" not in summary["real"]
    assert "vs_balanced" in summary["scarcity"]["0.25"]["cgan"]


def test_one_seed_gives_means_without_intervals():
    results = {1.0: {"real": fake_report([0.6]), "g2i": fake_report([0.7])}}
    md = table2_markdown(results, [0], {"CN": 3, "MCI": 3, "AD": 3})
    assert "| Real only | 30 | 0.600 | 0.600 |" in md
    assert "single seed: no interval" in md


def test_metrics_json_shape():
    plain = classify.metrics_summary(results_for([1.0]))
    assert set(plain) == {"real", "g2i", "cgan"}
    assert set(plain["real"]) == {"mean", "std", "ci95", "n_train"}
    assert set(plain["g2i"]) == {"mean", "std", "ci95", "n_train", "vs_real"}
    assert plain["g2i"]["vs_real"]["accuracy"]["mean"] == pytest.approx(0.14)
    assert plain["real"]["ci95"]["accuracy"] == pytest.approx(t_interval([0.60, 0.62, 0.64]))
    curve = classify.metrics_summary(results_for([0.25, 1.0]))
    assert set(curve) == {"real", "g2i", "cgan", "scarcity"}
    assert list(curve["scarcity"]) == ["0.25", "1.0"]
    assert set(curve["scarcity"]["0.25"]["real"]) == {"mean", "std", "ci95", "n_train", "n_real"}
    assert curve["scarcity"]["0.25"]["real"]["n_train"] == 22
    assert curve["scarcity"]["1.0"]["g2i"]["mean"] == curve["g2i"]["mean"]
    json.dumps(curve)


# -------------------------------------------------------------------------- the command, tiny project

SIZE = 16


def fake_project(tmp_path, fractions, per_class=12, generated_per_class=8):
    """data/processed (8 training and 3 test subjects per class, one 16 x 16 slice each), one model's
    augment set, and a params.yaml with a tiny classifier."""
    rng = np.random.default_rng(0)
    diag = ["CN", "MCI", "AD"]
    rows = [("train", c) for c in range(3) for _ in range(8)] + [("test", c) for c in range(3) for _ in range(3)]
    ptids = [f"P{i:03d}" for i in range(len(rows))]
    labels = np.array([c for _, c in rows])
    images = (np.where(rng.random((len(rows), SIZE, SIZE)) < 0.5, -0.5, 0.5) + labels[:, None, None] * 0.1)
    processed = tmp_path / "data/processed"
    (processed / "slices").mkdir(parents=True, exist_ok=True)
    np.save(processed / "slices/slices.npy", images.astype(np.float32))
    pd.DataFrame({"row": range(len(rows)), "PTID": ptids, "diagnosis": [diag[c] for c in labels]}).to_csv(
        processed / "slices/index.csv", index=False)
    pd.DataFrame({"PTID": ptids, "rs1": rng.integers(0, 3, len(rows)), "APOE4": rng.integers(0, 3, len(rows))}).to_csv(
        processed / "genotypes.csv", index=False)
    pd.DataFrame({"PTID": ptids, "split": [s for s, _ in rows]}).to_csv(processed / "split.csv", index=False)
    gen_labels = np.repeat(np.arange(3), generated_per_class)
    (tmp_path / "generated/m1").mkdir(parents=True, exist_ok=True)
    np.savez(tmp_path / "generated/m1/augment.npz", label=gen_labels,
             images=rng.uniform(-1, 1, (len(gen_labels), SIZE, SIZE)).astype(np.float16))
    # a tiny, fast classifier: learning rate 3e-3 and no floor on the updates, as the test was tuned with
    classifier = classifier_section(channels=[4], pool_size=2, hidden=8, epochs=1, batch_size=8, learning_rate=3e-3,
                                    min_steps=0)
    params = {"profile": "demo", "profiles": {"demo": {}}, "sample": sample_section(per_class=per_class),
              "classify": {"seeds": [0, 1], "real_fractions": fractions, "subsample_seed": 0, "n_jobs": 2,
                           "classifier": classifier}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return argparse.Namespace(params=tmp_path / "params.yaml", profile=None, models=["m1"],
                              generated=tmp_path / "generated", out=tmp_path / "reports")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Run in `tmp_path` with MLflow calls made no-ops."""
    import contextlib

    import mlflow

    from g2i import tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("G2I_ROOT", str(tmp_path))
    monkeypatch.setattr(tracking, "start_run", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(tracking, "run_tags", lambda *a, **k: {})
    monkeypatch.setattr(tracking, "log_new_params", lambda *a, **k: None)
    monkeypatch.setattr(mlflow, "log_metrics", lambda *a, **k: None)
    monkeypatch.setattr(mlflow, "log_artifact", lambda *a, **k: None)


def test_classify_command_writes_table_2_and_the_scarcity_curve(tmp_path, offline):
    args = fake_project(tmp_path, [0.5, 1.0])
    classify.run(args)
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert set(metrics) == {"real", "real_balanced", "m1", "scarcity"}
    assert metrics["real"]["n_train"] == 24 and metrics["m1"]["n_train"] == 36
    # the control: the augmented row's size and balance from repeated real slices; compared with real only,
    # and the model's row with it
    assert metrics["real_balanced"]["n_train"] == 36 and set(metrics["real_balanced"]) >= {"vs_real"}
    assert "vs_balanced" not in metrics["real_balanced"] and "vs_balanced" in metrics["m1"]
    assert set(metrics["real"]["ci95"]) == set(METRICS) and len(metrics["real"]["ci95"]["accuracy"]) == 2
    half = metrics["scarcity"]["0.5"]
    assert half["real"]["n_train"] == 12 and half["real"]["n_real"] == 12
    assert half["m1"]["n_train"] == 36 and half["m1"]["n_real"] == 12  # filled to 12 per class: more generated
    assert half["real_balanced"]["n_train"] == 36 and half["real_balanced"]["n_real"] == 12
    per_seed = json.loads((tmp_path / "reports/per_seed.json").read_text())
    assert set(per_seed) == {"real", "real_balanced", "m1", "real@0.5", "real_balanced@0.5", "m1@0.5"}
    assert per_seed["real_balanced"]["n_train"] == 36 and per_seed["real_balanced@0.5"]["n_real"] == 12
    md = (tmp_path / "reports/table2.md").read_text()
    assert "## Real-data scarcity" in md and "| Real subjects (CN / MCI / AD) | 4 / 4 / 4 | 8 / 8 / 8 |" in md
    assert "| Real only, class-balanced | 36 |" in md and "- Real only, class-balanced: class balancing" in md


def test_classify_command_stops_before_training_when_generated_images_cannot_fill_a_small_fraction(
        tmp_path, offline):
    args = fake_project(tmp_path, [0.25, 1.0], generated_per_class=4)  # f = 0.25 keeps 2 real: needs 10 each
    with pytest.raises(G2IError, match=r"classify\.real_fractions: at f = 0\.25.*m1: CN has 4, needs 10"):
        classify.run(args)
    assert not (tmp_path / "reports").exists()
    args = fake_project(tmp_path, [0.0, 1.0])
    with pytest.raises(G2IError, match=r"classify\.real_fractions"):
        classify.run(args)
