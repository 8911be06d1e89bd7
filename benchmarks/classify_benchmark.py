"""Benchmark Table 2's classifier training: (row, seed) classifiers in turn vs side by side.

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
from g2i.evaluation.classifier import ClassifierConfig, evaluate_rows  # noqa: E402
from g2i.machine import cpu_model  # noqa: E402


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
