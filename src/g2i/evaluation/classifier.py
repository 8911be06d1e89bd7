"""The downstream CN/MCI/AD classifier of the paper's Table 2, and the feature space it provides.

The paper classifies single axial slices with "a simple 2-layered Convolution Neural Network", trained
on the real training images alone and on real images filled up with generated ones to 500 per class,
and reports accuracy and macro precision / recall / F1 on 27 test images per class. It gives no further
architecture or training detail, so we keep the plainest reading: two conv blocks, cross-entropy,
Adam(W), no data augmentation (augmenting would blur what the generated images themselves add).
We add: several seeds with mean +- std and a 95 % t-interval (`evaluate_over_seeds`, `t_interval`), the
paired per-seed difference of an augmented row against real-only (`paired_difference`), a stratified
subsample of the real training subjects for the real-data-scarcity curve (`stratified_subject_subsample`),
the penultimate features as a feature space trained on real slices for Frechet distance / KID
(`extract_features`), and, by `predict` on generated images, a label-fidelity check (does a real-trained
classifier recover the conditioning label).

Images are N x H x W float arrays in [-1, 1]; labels are ints indexing `DIAGNOSES` (0=CN, 1=MCI, 2=AD).
Training is bit-reproducible on CPU for a given seed (and thread count); on a GPU cuDNN may differ.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..config import from_section
from ..errors import G2IError
from ..io.atomic import atomic_dir
from ..vocabulary import DIAGNOSES, N_CLASSES

if TYPE_CHECKING:
    from ..data.dataset import SliceGenotypeDataset

METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"
FORMAT = "g2i-slice-cnn/1"
CONFIDENCE = 0.95           # the two-sided level of every interval over seeds


class SliceCNN(nn.Module):
    """The paper's 2-layer CNN: [conv 3x3 -> BatchNorm -> ReLU -> 2x2 max-pool] x 2, then a dense head.

    Head: adaptive average pooling to `pool_size` x `pool_size` -> flatten -> linear -> ReLU, giving the
    `features` vector (dim `hidden`), then dropout -> linear to the classes. The adaptive pool keeps the
    network independent of the slice size (64 x 64 demo, 256 x 256 paper) while keeping WHERE things are:
    ventricle size is a spatial property, and a global average pool (pool_size 1) could not fit even the
    demo's training slices (training accuracy ~0.5 vs ~0.98 with an 8 x 8 pool, measured). The `hidden`-D
    features serve Frechet distance / KID in a feature space trained on real slices.
    """

    def __init__(self, channels: Sequence[int] = (16, 32), dropout: float = 0.2, n_classes: int = N_CLASSES,
                 pool_size: int = 8, hidden: int = 64):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) <= 0:
            raise ValueError(f"channels: need at least one positive channel count, got {channels}")
        if pool_size <= 0 or hidden <= 0:
            raise ValueError(f"pool_size and hidden: must be positive, got {pool_size} and {hidden}")
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            # No conv bias: BatchNorm's shift makes it redundant.
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.dense = nn.Sequential(nn.AdaptiveAvgPool2d(pool_size), nn.Flatten(),
                                   nn.Linear(c_in * pool_size * pool_size, hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)
        self.channels = channels
        # channels_last: oneDNN's CPU max-pool and these narrow convolutions run 2x faster per training step
        # in NHWC than in NCHW (benchmarks/classify_benchmark.py); load_state_dict copies into these strides.
        self.memory_format = torch.channels_last
        self.to(memory_format=self.memory_format)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """N x 1 x H x W -> the penultimate N x hidden vector."""
        return self.dense(self.blocks(x.contiguous(memory_format=self.memory_format)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x 1 x H x W -> N x n_classes logits."""
        return self.head(self.dropout(self.features(x)))


@dataclass(frozen=True)
class ClassifierConfig:
    """Training settings: params.yaml `classify.classifier`, every field stated there."""

    channels: tuple[int, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    dropout: float
    pool_size: int              # spatial grid kept before the dense layer
    hidden: int                 # width of the dense layer = the feature dimension
    min_steps: int              # at least this many updates: small training sets get more epochs

    def epochs_for(self, n_images: int) -> int:
        """Epochs for a training set of `n_images`: `epochs`, raised until `min_steps` updates are made.

        With the demo's 91 real training slices, 8 epochs are 24 updates, too few to learn anything;
        a fixed budget of updates keeps real-only and augmented training sets comparable in effort.
        """
        per_epoch = max(1, -(-n_images // self.batch_size))
        return max(self.epochs, -(-self.min_steps // per_epoch))

    def __post_init__(self) -> None:
        # YAML / JSON give lists; a tuple keeps the frozen config hashable and comparable.
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> "ClassifierConfig":
        """Build from a params.yaml section; unknown keys and out-of-range values are user errors."""
        cfg = from_section(cls, section, "classifier")
        problems = []
        if not cfg.channels or min(cfg.channels) <= 0:
            problems.append("channels must be a non-empty list of positive ints")
        if cfg.epochs <= 0 or cfg.batch_size < 2:
            problems.append("epochs must be positive and batch_size at least 2 (BatchNorm)")
        if cfg.min_steps < 0:
            problems.append("min_steps must be >= 0")
        if cfg.pool_size <= 0 or cfg.hidden <= 0:
            problems.append("pool_size and hidden must be positive")
        if cfg.learning_rate <= 0 or cfg.weight_decay < 0:
            problems.append("learning_rate must be positive and weight_decay non-negative")
        if not 0 <= cfg.dropout < 1:
            problems.append("dropout must be in [0, 1)")
        if problems:
            raise G2IError(f"params.yaml: classifier: {'; '.join(problems)}")
        return cfg


def _check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty N x H x W array, got shape {images.shape}")
    if min(images.shape[1:]) < 4:
        raise ValueError(f"{name}: slices must be at least 4 x 4 (two 2x2 poolings), got {images.shape[1:]}")
    return images


def _check_labels(labels: np.ndarray, n: int, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name}: expected {n} labels to match the images, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: expected integer class indices, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise ValueError(f"{name}: class indices must lie in 0..{N_CLASSES - 1} ({', '.join(DIAGNOSES)})")
    return labels.astype(np.int64)


def _batch(images: np.ndarray, index: np.ndarray | slice, device: torch.device) -> torch.Tensor:
    """Rows `index` as an N x 1 x H x W float32 tensor; indexing per batch keeps memmaps out of memory."""
    return torch.from_numpy(np.array(images[index], dtype=np.float32))[:, None].to(device)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_classifier(images: np.ndarray, labels: np.ndarray, cfg: ClassifierConfig, seed: int,
                     progress: bool = False, device: str | torch.device = "cpu") -> SliceCNN:
    """Train a SliceCNN with AdamW and cross-entropy on shuffled minibatches; returned in eval mode.

    The same `seed` gives bit-identical weights on CPU: initialisation and dropout draw from the global
    torch RNG seeded inside `torch.random.fork_rng` (so the caller's RNG state is left untouched), and
    the batch order from a separate generator. No augmentation, no class weighting: the paper's plain setup.
    """
    from tqdm import tqdm

    images = _check_images(images)
    labels = _check_labels(labels, len(images))
    if len(images) < 2:
        raise ValueError("images: need at least 2 training images (BatchNorm needs batches of 2 or more)")
    device = torch.device(device)
    targets = torch.from_numpy(labels)
    order_rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type != "cpu" else [], device_type=device.type):
        torch.manual_seed(seed)
        model = SliceCNN(cfg.channels, cfg.dropout, pool_size=cfg.pool_size, hidden=cfg.hidden).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        model.train()
        bar = tqdm(range(cfg.epochs_for(len(images))), desc=f"classifier seed {seed}", unit="epoch", disable=not progress, leave=False)
        for _ in bar:
            perm = torch.randperm(len(images), generator=order_rng).numpy()
            total, count = 0.0, 0
            for start in range(0, len(perm), cfg.batch_size):
                index = np.sort(perm[start:start + cfg.batch_size])  # sorted: contiguous-ish reads from memmaps
                if len(index) < 2:
                    continue  # a last batch of one breaks BatchNorm; that image is in other epochs' batches
                loss = F.cross_entropy(model(_batch(images, index, device)), targets[index].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, count = total + loss.item() * len(index), count + len(index)
            bar.set_postfix(loss=f"{total / max(count, 1):.3f}")
    return model.eval()


@torch.no_grad()
def _map_batches(model: SliceCNN, images: np.ndarray, batch_size: int, fn: str) -> np.ndarray:
    """Run `model.<fn>` over `images` in eval mode without gradients, restoring the model's mode after."""
    images = _check_images(images)
    if batch_size <= 0:
        raise ValueError(f"batch_size: must be positive, got {batch_size}")
    device, was_training = _device_of(model), model.training
    model.eval()
    try:
        out = [getattr(model, fn)(_batch(images, slice(s, s + batch_size), device)).float().cpu()
               for s in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def predict_proba(model: SliceCNN, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """N x 3 class probabilities (softmax of the logits)."""
    return torch.softmax(torch.from_numpy(_map_batches(model, images, batch_size, "forward")), dim=1).numpy()


def predict(model: SliceCNN, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted class index per image (int64). On generated images this is the label-fidelity check."""
    return _map_batches(model, images, batch_size, "forward").argmax(axis=1).astype(np.int64)


def extract_features(model: SliceCNN, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """N x channels[-1] penultimate features (float64), the feature space for Frechet distance / KID."""
    return _map_batches(model, images, batch_size, "features").astype(np.float64)


def feature_cnn(train: SliceGenotypeDataset, cfg: ClassifierConfig, seed: int):
    """FD_cnn's feature network, trained on the real training slices; returns (cnn, x_train, f_train).
    `sample` (to choose the guidance scale) and `evaluate` build it from the same data, config and seed."""
    x_train = train.array()
    cnn = train_classifier(x_train, train.labels, cfg, seed)
    return cnn, x_train, extract_features(cnn, x_train)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro precision / recall / F1 over all three classes, and the 3 x 3 confusion matrix.

    Macro averages always run over CN, MCI and AD (not only the classes present), with 0 where a class
    is never predicted (zero_division=0), so a classifier that ignores a class is not flattered.
    Confusion matrix rows are true classes, columns predicted, in `DIAGNOSES` order.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = _check_labels(y_true, len(np.asarray(y_true)), "y_true")
    y_pred = _check_labels(y_pred, len(y_true), "y_pred")
    if len(y_true) == 0:
        raise ValueError("y_true: no labels to score")
    classes = list(range(N_CLASSES))
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=classes, average="macro",
                                                               zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "macro_precision": float(precision),
            "macro_recall": float(recall), "macro_f1": float(f1),
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist()}


def fill_to_per_class(real_images: np.ndarray, real_labels: np.ndarray, generated_images: np.ndarray,
                      generated_labels: np.ndarray, per_class: int, seed: int,
                      replace: bool = False) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """All real images plus, per class, random generated images of that class up to `per_class` in total.

    A class whose real count already reaches `per_class` gets none (real images are never dropped).
    Returns float32 images (real first, then the generated fill in class order), int64 labels and the
    number of generated images used per diagnosis name. Raises ValueError when generated images run short.
    `replace`: draw the fill with replacement, so a pool smaller than the need suffices unless it is empty
    (Table 2's class-balanced control passes the real slices themselves as the pool).
    """
    real_images = _check_images(real_images, "real_images")
    real_labels = _check_labels(real_labels, len(real_images), "real_labels")
    if per_class <= 0:
        raise ValueError(f"per_class: must be positive, got {per_class}")
    generated_images = np.asarray(generated_images)
    if len(generated_images):  # no generated images at all is allowed when the real ones suffice
        generated_images = _check_images(generated_images, "generated_images")
        if generated_images.shape[1:] != real_images.shape[1:]:
            raise ValueError(f"generated_images: slices are {generated_images.shape[1:]}, "
                             f"real ones {real_images.shape[1:]}")
    generated_labels = np.asarray(generated_labels)
    if generated_labels.size == 0:
        generated_labels = generated_labels.astype(np.int64)  # np.asarray([]) is float64
    generated_labels = _check_labels(generated_labels, len(generated_images), "generated_labels")
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    used: dict[str, int] = {}
    short: list[str] = []
    for c, name in enumerate(DIAGNOSES):
        need = max(per_class - int((real_labels == c).sum()), 0)
        pool = np.flatnonzero(generated_labels == c)
        if need > len(pool) and not (replace and len(pool)):
            short.append(f"{name} needs {need} but only {len(pool)} exist")
            continue
        pick = np.sort(rng.choice(pool, size=need, replace=replace)) if need else pool[:0]
        chosen.append(pick)
        used[name] = int(need)
    if short:
        raise ValueError(f"generated_images: too few to fill every class to per_class={per_class}: {'; '.join(short)}")
    pick = np.concatenate(chosen)
    fill = generated_images[pick] if len(pick) else np.empty((0, *real_images.shape[1:]))
    images = np.concatenate([np.asarray(real_images, dtype=np.float32), np.asarray(fill, dtype=np.float32)])
    labels = np.concatenate([real_labels, generated_labels[pick]])
    return images, labels, used


def _summary(values: list[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1); std is 0 for a single seed, where it is undefined."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) >= 2 else 0.0


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> list[float] | None:
    """Two-sided t-interval for the mean of `values`: mean +- t(1 - (1 - confidence) / 2, n - 1) * s / sqrt(n).

    `s` is the sample std (ddof=1). Returns [lo, hi], or None for a single value, where the spread (and so
    the interval) is undefined. The seeds vary only the classifier's training (initialisation, batch order,
    dropout) on a fixed test set, so the interval says how stable a row is, not how accurate the classifier
    would be on other subjects.
    """
    from scipy import stats

    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError(f"values: expected a non-empty 1-D sequence, got shape {arr.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must lie in (0, 1), got {confidence}")
    if len(arr) < 2:
        return None
    half = float(stats.t.ppf(0.5 + confidence / 2, len(arr) - 1)) * float(arr.std(ddof=1)) / math.sqrt(len(arr))
    mean = float(arr.mean())
    return [mean - half, mean + half]


def paired_difference(report: Mapping[str, Any], baseline: Mapping[str, Any],
                      metrics: Sequence[str] = METRICS) -> dict[str, dict[str, Any]]:
    """Per metric, `report` minus `baseline` seed by seed: {metric: {"mean", "ci95", "n_seeds"}}.

    Both are `evaluate_over_seeds` results over the same seeds (a seed's two classifiers start from the
    same initial weights and share the fixed test set); pairing removes the variation the two rows share
    seed by seed, so this interval is the right test of a change, not whether the rows' intervals overlap.
    `ci95` is None with a single seed.
    """
    seeds, base_seeds = [r["seed"] for r in report["per_seed"]], [r["seed"] for r in baseline["per_seed"]]
    if seeds != base_seeds:
        raise ValueError(f"paired difference needs the same seeds in the same order: {seeds} vs {base_seeds}")
    out = {}
    for metric in metrics:
        diffs = [a[metric] - b[metric] for a, b in zip(report["per_seed"], baseline["per_seed"])]
        out[metric] = {"mean": float(np.mean(diffs)), "ci95": t_interval(diffs), "n_seeds": len(diffs)}
    return out


def intervals_overlap(a: Sequence[float] | None, b: Sequence[float] | None) -> bool | None:
    """Whether two closed intervals [lo, hi] share a point; None when either is undefined."""
    if a is None or b is None:
        return None
    return bool(a[0] <= b[1] and b[0] <= a[1])


def check_real_fractions(values: Any, name: str = "classify.real_fractions") -> list[float]:
    """The real-data fractions of params.yaml, ascending, with 1.0 (Table 2 itself) always included.

    Each must be a number in (0, 1]; the list must be non-empty and without repeats. Raises G2IError
    naming `name` otherwise.
    """
    if not isinstance(values, (list, tuple)) or not values:
        raise G2IError(f"params.yaml: {name} must be a non-empty list of fractions in (0, 1], got {values!r}")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1]
    if bad:
        raise G2IError(f"params.yaml: {name}: every fraction must be a number in (0, 1], got {bad} in {list(values)}")
    fractions = [float(v) for v in values]
    if len(set(fractions)) != len(fractions):
        raise G2IError(f"params.yaml: {name}: repeated fractions in {list(values)}")
    return sorted(set(fractions) | {1.0})


def fraction_key(fraction: float) -> str:
    """The text form of a fraction in row names ("real@0.25") and JSON keys: Python's shortest repr."""
    return repr(float(fraction))


def stratified_subject_subsample(subjects: Sequence[str], labels: np.ndarray, fraction: float,
                                 seed: int) -> np.ndarray:
    """Indices (ascending) of the slices of a stratified random `fraction` of the subjects.

    Per class, round(fraction x that class's subjects) subjects (halves rounded up), at least 1 when the
    class has any, drawn with a generator seeded by (`seed`, class): the same arguments give the same
    subsample on every call, and for one seed the subjects kept at a smaller fraction are a subset of
    those kept at a larger one (a prefix of one permutation per class), so a scarcity curve is nested.
    `fraction` 1.0 keeps every slice. Each subject must carry one label on all its slices.
    """
    subjects = np.asarray(subjects).astype(str)
    labels = _check_labels(labels, len(subjects))
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction: must lie in (0, 1], got {fraction}")
    label_of: dict[str, int] = {}
    for subject, label in zip(subjects, labels):
        if label_of.setdefault(subject, int(label)) != label:
            raise ValueError(f"subject {subject}: slices carry different labels; cannot stratify by subject")
    kept: list[str] = []
    for c in range(N_CLASSES):
        members = sorted(s for s, label in label_of.items() if label == c)
        if not members:
            continue
        n_keep = min(len(members), max(1, math.floor(fraction * len(members) + 0.5)))
        order = np.random.default_rng([seed, c]).permutation(len(members))
        kept += [members[i] for i in order[:n_keep]]
    return np.flatnonzero(np.isin(subjects, kept))


def scarcity_subsamples(subjects: Sequence[str], labels: np.ndarray, section: Mapping[str, Any]) -> dict[float, np.ndarray]:
    """{fraction: slice indices kept} for params.yaml `classify` (real_fractions, subsample_seed).

    One function for `classify` and for `sample`, which must generate enough augmentation images to fill
    the smallest fraction's training set."""
    fractions = check_real_fractions(section["real_fractions"])
    seed = section["subsample_seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise G2IError(f"params.yaml: classify.subsample_seed must be a non-negative int, got {seed!r}")
    return {f: stratified_subject_subsample(subjects, labels, f, seed) for f in fractions}


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: need at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: repeated seeds would understate the spread: {seeds}")
    return seeds


def _seed_result(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                 test_labels: np.ndarray, cfg: ClassifierConfig, seed: int, device: str | torch.device = "cpu") -> dict:
    model = train_classifier(train_images, train_labels, cfg, seed, device=device)
    return {"seed": seed, **classification_metrics(test_labels, predict(model, test_images))}


def _over_seeds(per_seed: list[dict], seeds: list[int], n_train: int, n_test: int) -> dict[str, Any]:
    mean, std, ci95 = {}, {}, {}
    for metric in METRICS:
        values = [row[metric] for row in per_seed]
        mean[metric], std[metric] = _summary(values)
        ci95[metric] = t_interval(values)
    return {"seeds": seeds, "per_seed": per_seed, "mean": mean, "std": std, "ci95": ci95,
            "n_train": int(n_train), "n_test": int(n_test)}


def evaluate_over_seeds(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                        test_labels: np.ndarray, cfg: ClassifierConfig, seeds: Iterable[int],
                        progress: bool = True, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Train one classifier per seed, score it on the test set; per-seed metrics plus mean / std of each.

    Returns {"seeds", "per_seed": [{"seed", <METRICS>, "confusion_matrix"}], "mean": {metric},
    "std": {metric}, "ci95": {metric: [lo, hi] or None for one seed}, "n_train", "n_test"}.
    """
    from tqdm import tqdm

    seeds = _check_seeds(seeds)
    test_images = _check_images(test_images, "test_images")
    test_labels = _check_labels(test_labels, len(test_images), "test_labels")
    per_seed = [_seed_result(train_images, train_labels, test_images, test_labels, cfg, seed, device)
                for seed in tqdm(seeds, desc="classifier seeds", unit="seed", disable=not progress)]
    return _over_seeds(per_seed, seeds, len(train_labels), len(test_labels))


def _one_thread() -> None:
    torch.set_num_threads(1)


def evaluate_rows(rows: Mapping[str, tuple[np.ndarray, np.ndarray]], test_images: np.ndarray,
                  test_labels: np.ndarray, cfg: ClassifierConfig, seeds: Iterable[int], n_jobs: int = 1,
                  progress: bool = True) -> dict[str, dict[str, Any]]:
    """`evaluate_over_seeds` for several training sets ({row: (images, labels)}), on a CPU.

    n_jobs = 1 trains every (row, seed) classifier in this process. n_jobs > 1 trains them in that many
    worker processes with one torch thread each: these small convolutions scale poorly over threads, so
    two single-thread classifiers side by side finish sooner than two in turn on two threads
    (benchmarks/classify_benchmark.py). Each seed's classifier is the same function of its data and seed
    either way; only the thread count (and so the last bits of float sums) differs. At most n_jobs
    training sets are in flight at a time (each is copied to its worker).
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm import tqdm

    seeds = _check_seeds(seeds)
    test_images = _check_images(test_images, "test_images")
    test_labels = _check_labels(test_labels, len(test_images), "test_labels")
    for name, (images, labels) in rows.items():
        _check_labels(labels, len(_check_images(images, f"{name} images")), f"{name} labels")
    tasks = [(name, seed) for name in rows for seed in seeds]
    done: dict[tuple[str, int], dict] = {}
    bar = tqdm(total=len(tasks), desc="classifiers", unit="classifier", disable=not progress)
    if n_jobs <= 1:
        for name, seed in tasks:
            done[name, seed] = _seed_result(*rows[name], test_images, test_labels, cfg, seed)
            bar.update()
    else:
        with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_one_thread) as pool:
            queue, running = iter(tasks), {}
            while True:
                while len(running) < n_jobs and (task := next(queue, None)) is not None:
                    running[pool.submit(_seed_result, *rows[task[0]], test_images, test_labels, cfg, task[1])] = task
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    done[running.pop(future)] = future.result()
                    bar.update()
    bar.close()
    return {name: _over_seeds([done[name, seed] for seed in seeds], seeds, len(rows[name][1]), len(test_labels))
            for name in rows}


def save_classifier(model: SliceCNN, cfg: ClassifierConfig, path: str | Path, overwrite: bool = False) -> Path:
    """Write `path`/model.pt (state_dict) and `path`/config.json; the folder appears only when complete."""
    path = Path(path)
    if tuple(model.channels) != cfg.channels:
        raise ValueError(f"cfg: channels {cfg.channels} do not match the model's {model.channels}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_dir(path, overwrite=overwrite) as tmp:
        torch.save(state, tmp / WEIGHTS_FILE)
        payload = {"format": FORMAT, "classes": list(DIAGNOSES), "config": asdict(cfg)}
        (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[SliceCNN, ClassifierConfig]:
    """Read a folder written by `save_classifier`: the model (eval mode) and its config."""
    path = Path(path)
    weights, config = path / WEIGHTS_FILE, path / CONFIG_FILE
    if not weights.is_file() or not config.is_file():
        raise G2IError(f"{path}: not a saved classifier (needs {WEIGHTS_FILE} and {CONFIG_FILE})")
    payload = json.loads(config.read_text())
    if payload.get("format") != FORMAT or payload.get("classes") != list(DIAGNOSES):
        raise G2IError(f"{config}: written by another format or class list ({payload.get('format')}, "
                       f"{payload.get('classes')}); expected {FORMAT} with {list(DIAGNOSES)}")
    cfg = ClassifierConfig.from_params(payload["config"])
    model = SliceCNN(cfg.channels, cfg.dropout, pool_size=cfg.pool_size, hidden=cfg.hidden)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.to(device).eval(), cfg
