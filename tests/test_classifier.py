"""The Table 2 slice classifier: learning, reproducibility, metrics, real + generated fill, save / load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from g2i.errors import G2IError
from g2i.evaluation.classifier import (METRICS, ClassifierConfig, SliceCNN, classification_metrics,
                                       evaluate_over_seeds, extract_features, fill_to_per_class, load_classifier,
                                       predict, predict_proba, save_classifier, t_interval, train_classifier)

from .conftest import classifier_config, classifier_section


def config(**overrides) -> ClassifierConfig:
    """The demo's classify.classifier with the settings these tests were tuned with (learning rate 3e-3, no floor
    on the updates) and `overrides`."""
    return classifier_config(**{"learning_rate": 3e-3, "min_steps": 0, **overrides})


FAST = config(epochs=10, batch_size=32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, 2 OpenMP threads run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def disc_slices(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy slices with a dark central disc (a 'ventricle') whose radius grows CN < MCI < AD."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    radius = np.hypot(yy, xx)[None] / size
    images = np.where(radius < (0.12 + 0.08 * labels)[:, None, None], -0.6, 0.5) + rng.normal(0, 0.3, (n, size, size))
    return np.clip(images, -1, 1).astype(np.float32), labels


@pytest.fixture(scope="module")
def data():
    return disc_slices(240, 32, 0), disc_slices(90, 32, 1)


@pytest.fixture(scope="module")
def trained(data):
    (x, y), _ = data
    return train_classifier(x, y, FAST, seed=0)


def test_learns_the_synthetic_classes_well_above_chance(data, trained):
    _, (x_test, y_test) = data
    metrics = classification_metrics(y_test, predict(trained, x_test))
    assert metrics["accuracy"] > 0.8
    proba = predict_proba(trained, x_test)
    assert proba.shape == (90, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(proba.argmax(axis=1), predict(trained, x_test))


def test_same_seed_gives_identical_weights_and_predictions_other_seed_differs(data, trained):
    (x, y), (x_test, _) = data
    again = train_classifier(x, y, FAST, seed=0)
    other = train_classifier(x, y, FAST, seed=1)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert np.array_equal(predict(trained, x_test), predict(again, x_test))
    assert not torch.equal(trained.head.weight, other.head.weight)


def test_training_leaves_the_callers_torch_rng_alone(data):
    (x, y), _ = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_classifier(x[:40], y[:40], config(epochs=1), seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_metrics_match_hand_computed_values():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(y_true, y_pred)
    # per class precision 1/2, 2/3, 1; recall 1/2, 1, 1/2; F1 1/2, 4/5, 2/3
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["macro_recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert m["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    json.dumps(m)  # plain Python types, ready for MLflow / DVC metrics


def test_metrics_count_a_never_predicted_class_as_zero():
    m = classification_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]))
    assert m["macro_precision"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert m["macro_recall"] == pytest.approx(2 / 3)


def test_fill_to_per_class_counts_keeps_real_and_fills_by_class():
    real = np.full((9, 8, 8), 0.25, np.float32)
    real_labels = np.array([0] * 2 + [1] * 5 + [2] * 2)
    generated_labels = np.array([0, 1, 2] * 4)  # four generated images per class
    generated = np.stack([np.full((8, 8), -(i + 1) / 20, np.float32) for i in range(12)])  # each image unique
    images, labels, used = fill_to_per_class(real, real_labels, generated, generated_labels, per_class=4, seed=0)
    assert used == {"CN": 2, "MCI": 0, "AD": 2}  # MCI already has 5 >= 4 real images: none added, none dropped
    assert np.bincount(labels).tolist() == [4, 5, 4]
    assert np.array_equal(images[:9], real) and np.array_equal(labels[:9], real_labels)
    for image, label in zip(images[9:], labels[9:]):
        source = int(round(-image[0, 0] * 20)) - 1  # which generated image this is
        assert generated_labels[source] == label  # filled only from generated images of its own class
    assert len({float(i[0, 0]) for i in images[9:]}) == 4  # no generated image used twice
    again = fill_to_per_class(real, real_labels, generated, generated_labels, per_class=4, seed=0)
    assert np.array_equal(again[0], images)


def test_fill_to_per_class_says_which_class_lacks_generated_images():
    real, real_labels = np.zeros((3, 8, 8)), np.array([0, 1, 2])
    generated, generated_labels = np.zeros((7, 8, 8)), np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(ValueError, match=r"AD needs 3 but only 1 exist"):
        fill_to_per_class(real, real_labels, generated, generated_labels, per_class=4, seed=0)
    images, labels, used = fill_to_per_class(real, real_labels, np.zeros((0, 8, 8)), [], per_class=1, seed=0)
    assert len(images) == 3 and used == {"CN": 0, "MCI": 0, "AD": 0}


def test_fill_with_replacement_balances_classes_from_their_own_slices():
    """Table 2's class-balanced control: each class topped up to per_class from its own real slices, repeats
    allowed; a class with no slice at all still cannot be filled."""
    real_labels = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    real = np.stack([np.full((8, 8), i / 10, dtype=np.float32) for i in range(len(real_labels))])
    images, labels, used = fill_to_per_class(real, real_labels, real, real_labels, per_class=6, seed=0, replace=True)
    assert np.bincount(labels).tolist() == [6, 6, 6] and used == {"CN": 1, "MCI": 4, "AD": 5}
    np.testing.assert_array_equal(images[:8], real)
    for image, label in zip(images[8:], labels[8:]):   # every repeat is a real slice of its own class
        assert any(np.array_equal(image, r) and label == c for r, c in zip(real, real_labels))
    with pytest.raises(ValueError, match="MCI needs 4 but only 2 exist"):
        fill_to_per_class(real, real_labels, real, real_labels, per_class=6, seed=0)
    with pytest.raises(ValueError, match="AD needs 6 but only 0 exist"):
        fill_to_per_class(real[:7], real_labels[:7], real[:7], real_labels[:7], per_class=6, seed=0, replace=True)


def test_evaluate_over_seeds_reports_mean_and_std(data):
    (x, y), (x_test, y_test) = data
    cfg = config(epochs=2, batch_size=32)
    report = evaluate_over_seeds(x[:120], y[:120], x_test, y_test, cfg, seeds=[0, 1, 2], progress=False)
    assert report["seeds"] == [0, 1, 2] and [r["seed"] for r in report["per_seed"]] == [0, 1, 2]
    assert set(report["mean"]) == set(report["std"]) == set(report["ci95"]) == set(METRICS)
    for metric in METRICS:
        values = [r[metric] for r in report["per_seed"]]
        assert report["mean"][metric] == pytest.approx(np.mean(values))
        assert report["std"][metric] == pytest.approx(np.std(values, ddof=1))
        assert report["ci95"][metric] == pytest.approx(t_interval(values))  # the 95 % t-interval over seeds
    assert report["n_train"] == 120 and report["n_test"] == 90
    json.dumps(report)
    with pytest.raises(ValueError, match="seeds"):
        evaluate_over_seeds(x, y, x_test, y_test, cfg, seeds=[])


def test_rows_trained_side_by_side_equal_rows_trained_in_turn(data):
    """evaluate_rows with 2 worker processes (one torch thread each) gives, per row and seed, the very
    classifier that one thread in this process gives: parallelism changes the speed, not the result."""
    import torch

    from g2i.evaluation.classifier import evaluate_rows

    (x, y), (x_test, y_test) = data
    cfg = config(epochs=1, batch_size=32)
    rows = {"real": (x[:60], y[:60]), "real + more": (x[:120], y[:120])}
    parallel = evaluate_rows(rows, x_test, y_test, cfg, seeds=[0, 1], n_jobs=2, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        in_turn = evaluate_rows(rows, x_test, y_test, cfg, seeds=[0, 1], n_jobs=1, progress=False)
        alone = evaluate_over_seeds(x[:60], y[:60], x_test, y_test, cfg, seeds=[0, 1], progress=False)
    finally:
        torch.set_num_threads(threads)
    assert parallel == in_turn and in_turn["real"] == alone
    assert parallel["real + more"]["n_train"] == 120 and [r["seed"] for r in parallel["real"]["per_seed"]] == [0, 1]
    with pytest.raises(ValueError, match="bad images"):
        evaluate_rows({"bad": (np.zeros((3, 8)), np.zeros(3, int))}, x_test, y_test, cfg, seeds=[0])


def test_features_have_one_value_per_hidden_unit(data, trained):
    _, (x_test, _) = data
    features = extract_features(trained, x_test, batch_size=16)
    assert features.shape == (90, FAST.hidden) and np.isfinite(features).all()
    # batch size does not change eval-mode features beyond float32 rounding: oneDNN picks kernels by batch shape,
    # so post-ReLU values near 0 differ by ~1e-7 on some CPUs (an absolute tolerance, relative to the feature scale)
    np.testing.assert_allclose(features, extract_features(trained, x_test), rtol=1e-4,
                               atol=1e-5 * float(np.abs(features).max()))


def test_save_load_round_trip_gives_identical_predictions(data, trained, tmp_path):
    _, (x_test, _) = data
    save_classifier(trained, FAST, tmp_path / "clf")
    model, cfg = load_classifier(tmp_path / "clf")
    assert cfg == FAST
    assert np.array_equal(predict(model, x_test), predict(trained, x_test))
    assert np.array_equal(extract_features(model, x_test), extract_features(trained, x_test))
    with pytest.raises(G2IError, match="already exists"):
        save_classifier(trained, FAST, tmp_path / "clf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]  # no temporary folder left behind


def test_channels_last_computes_what_nchw_computes_and_survives_loading(data, trained, tmp_path):
    """The network runs NHWC for speed (benchmarks/classify_benchmark.py); the same weights in NCHW give the
    same logits up to float32 rounding, and a loaded classifier keeps the format."""
    import copy

    _, (x_test, _) = data
    def nhwc(model):   # the 16 -> 32 convolution (a 1-channel weight is contiguous in both formats)
        return model.blocks[4].weight.stride(1) == 1

    assert nhwc(trained)
    nchw = copy.deepcopy(trained).to(memory_format=torch.contiguous_format)
    nchw.memory_format = torch.contiguous_format
    x = torch.from_numpy(x_test[:, None])
    with torch.no_grad():
        assert not nhwc(nchw)
        torch.testing.assert_close(nchw(x), trained(x), rtol=1e-4, atol=1e-4)
    save_classifier(trained, FAST, tmp_path / "clf")
    model, _ = load_classifier(tmp_path / "clf")
    assert nhwc(model)


def test_failed_save_leaves_no_folder(trained, tmp_path):
    with pytest.raises(ValueError, match="channels"):
        save_classifier(trained, config(channels=(8, 8)), tmp_path / "clf")
    assert list(tmp_path.iterdir()) == []


def test_from_params_rejects_unknown_keys_and_bad_values():
    section = classifier_section(channels=[8, 16], epochs=3)
    cfg = ClassifierConfig.from_params(section)
    assert cfg == ClassifierConfig(**{**section, "channels": (8, 16)}) and cfg.channels == (8, 16)   # a tuple
    with pytest.raises(G2IError, match=r"unknown classifier key\(s\) \['epoch'\].*known"):
        ClassifierConfig.from_params(classifier_section(epoch=3))
    with pytest.raises(G2IError, match="dropout"):
        ClassifierConfig.from_params(classifier_section(dropout=1.5))


def test_works_on_64_by_64_slices_and_rejects_bad_shapes():
    x, y = disc_slices(60, 64, 2)
    model = train_classifier(x, y, config(epochs=1, channels=(4, 8)), seed=0)
    assert isinstance(model, SliceCNN)
    assert predict(model, x).shape == (60,) and extract_features(model, x).shape == (60, 64)
    with pytest.raises(ValueError, match="images"):
        predict(model, x[:, None])
    with pytest.raises(ValueError, match="labels"):
        train_classifier(x, y[:-1], FAST, seed=0)


def test_min_steps_raises_the_epochs_of_small_training_sets():
    cfg = config(epochs=8, batch_size=32, min_steps=400)
    assert cfg.epochs_for(91) == 134      # 3 batches per epoch
    assert cfg.epochs_for(3200) == 8      # 100 batches per epoch: the epoch count already gives 800 updates
    assert config(epochs=8, batch_size=32, min_steps=0).epochs_for(91) == 8
    with pytest.raises(G2IError, match="min_steps"):
        ClassifierConfig.from_params(classifier_section(min_steps=-1))
