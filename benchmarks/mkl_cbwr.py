"""Benchmark what `import g2i`'s MKL_CBWR=AUTO,STRICT (alignment-independent GEMM, for byte reproducibility)
costs: torch matrix products of the shapes the models use, in fresh processes with MKL's default and with
STRICT (MKL reads the setting once, so each kind needs its own process), alternating. Prints both medians,
their ratio and the machine. Not a test: run it by hand, e.g.

    .venv/bin/python benchmarks/mkl_cbwr.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from g2i.machine import cpu_model  # noqa: E402

SHAPES = ((256, 512, 512), (4096, 320, 320), (64, 3000, 1024))   # attention / conv-as-GEMM / genotype tokens
TIME_GEMMS = """
import json, sys, time, torch
torch.manual_seed(0)
out = {}
for n, k, m in %r:
    a, b = torch.randn(n, k), torch.randn(k, m)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(%d):
        a @ b
    out[f"{n}x{k}x{m}"] = (time.perf_counter() - start) / %d
print(json.dumps(out))
"""


def gemm_seconds(strict: bool, reps: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if strict:
        env["MKL_CBWR"] = "AUTO,STRICT"
    code = TIME_GEMMS % (SHAPES, reps, reps)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="processes of each kind")
    parser.add_argument("--reps", type=int, default=200, help="products per shape in one process")
    args = parser.parse_args()
    default, strict = [], []
    for _ in range(args.repeats):                       # alternating: a passing load falls on both
        default.append(gemm_seconds(False, args.reps))
        strict.append(gemm_seconds(True, args.reps))
    print(f"machine: {cpu_model()}; median of {args.repeats} processes x {args.reps} products")
    for shape in default[0]:
        d, s = statistics.median(r[shape] for r in default), statistics.median(r[shape] for r in strict)
        print(f"{shape}: MKL default {d * 1e3:.3f} ms, STRICT {s * 1e3:.3f} ms: x{s / d:.3f}")


if __name__ == "__main__":
    main()
