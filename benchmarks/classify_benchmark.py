"""Benchmark Table 2's classifier training: memory format, and (row, seed) classifiers in turn vs side by side.

First one training step (forward, backward, AdamW; batch classify.classifier.batch_size, one torch thread)
of the SliceCNN in NCHW against channels_last, the format it trains in: the ratio, measured in this run.

Trains the same classifiers (params.yaml `classify.classifier`, 64 x 64 slices, a study-sized training
set of 1500 images per row) twice in one run: in turn in this process with torch's default threads, and
with `evaluate_rows(n_jobs=cores)` (one worker process per core, one torch thread each). Prints both wall
times, classifiers per minute and their ratio, with the machine. Not a test: run it by hand, e.g.

    .venv/bin/python benchmarks/classify_benchmark.py --rows 4 --seeds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from g2i.config import load_params, resolve  # noqa: E402
from g2i.evaluation.classifier import ClassifierConfig, SliceCNN, evaluate_rows  # noqa: E402
from g2i.machine import cpu_model  # noqa: E402


def step_ms(cfg: ClassifierConfig, memory_format: torch.memory_format, steps: int = 40) -> float:
    """Median ms of one training step of the SliceCNN held in `memory_format`, on one thread."""
    import statistics

    import torch.nn.functional as F

    torch.manual_seed(0)
    model = SliceCNN(cfg.channels, cfg.dropout, pool_size=cfg.pool_size, hidden=cfg.hidden)
    model.memory_format = memory_format
    model.to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    x, y = torch.randn(cfg.batch_size, 1, 64, 64), torch.randint(0, 3, (cfg.batch_size,))
    times = []
    for i in range(steps + 5):
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 5:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4, help="training sets (default 4)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per training set (default 2)")
    parser.add_argument("--images", type=int, default=1500, help="images per training set (default 1500)")
    args = parser.parse_args()
    params = resolve(load_params(ROOT / "params.yaml"), "study")
    cfg = ClassifierConfig.from_params(params["classify"]["classifier"])
    rng = np.random.default_rng(0)
    rows = {f"row{i}": (rng.uniform(-1, 1, (args.images, 64, 64)).astype(np.float32),
                        rng.integers(0, 3, args.images)) for i in range(args.rows)}
    test = rng.uniform(-1, 1, (90, 64, 64)).astype(np.float32), rng.integers(0, 3, 90)
    seeds, cores, n = list(range(args.seeds)), os.cpu_count() or 1, args.rows * args.seeds
    print(f"{cpu_model()}, {cores} cores; {n} classifiers ({args.rows} rows x {args.seeds} seeds, "
          f"{args.images} images of 64 x 64 each)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    nchw, nhwc = step_ms(cfg, torch.contiguous_format), step_ms(cfg, torch.channels_last)
    torch.set_num_threads(threads)
    print(f"  one training step (batch {cfg.batch_size}, 1 thread): NCHW {nchw:.1f} ms, channels_last {nhwc:.1f} ms "
          f"(ratio {nchw / nhwc:.2f}x)")
    timings = {}
    for label, jobs in ((f"in turn, {torch.get_num_threads()} torch threads", 1),
                        (f"side by side, {cores} processes x 1 thread", cores)):
        start = time.perf_counter()
        evaluate_rows(rows, *test, cfg, seeds, n_jobs=jobs, progress=False)
        timings[label] = time.perf_counter() - start
        print(f"  {label}: {timings[label]:.1f} s ({60 * n / timings[label]:.1f} classifiers/min)")
    first, second = timings.values()
    print(f"  ratio (in turn / side by side): {first / second:.2f}x")


if __name__ == "__main__":
    main()
