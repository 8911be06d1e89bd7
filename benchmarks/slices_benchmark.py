"""Benchmark the slices step: volumes per second and peak memory of g2i.data.slices.build_slices.

Generates synthetic cohorts of a few sizes into a temporary folder (not timed), then runs build_slices
on each in a fresh process, so the peak resident memory it reports (getrusage: the process itself and
its largest pool worker) belongs to build_slices alone. Flat memory across cohort sizes is the point of
writing through a memory-mapped .npy. Not a test: run it by hand, e.g.

    .venv/bin/python benchmarks/slices_benchmark.py --sizes 16 64 --jobs 1 0
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from g2i.machine import describe

ROOT = Path(__file__).resolve().parents[1]


def _generate(n_subjects: int, profile: str, raw: str, queue) -> None:
    """In a separate process (its memory must not count below): a cohort and its subjects.csv."""
    import pandas as pd

    from g2i.config import load_params, resolve
    from g2i.synthetic.generate import GROUND_TRUTH, MRI_PATTERN, generate_cohort
    from g2i.synthetic.spec import CohortSpec

    # Few background SNPs: the genotypes are not what is measured here.
    spec = CohortSpec.from_params(resolve(load_params(ROOT / "params.yaml"), profile), n_subjects=n_subjects,
                                  n_background_snps=50)
    raw = Path(raw)
    generate_cohort(spec, raw, progress=False)
    truth = pd.read_csv(raw / GROUND_TRUTH)
    truth = truth[truth["has_mri"]]
    pd.DataFrame({"PTID": truth["PTID"], "diagnosis": truth["DX"],
                  "t1_path": [str(raw / MRI_PATTERN.format(ptid=p)) for p in truth["PTID"]]}).to_csv(
        raw / "subjects.csv", index=False)
    queue.put({})


def _measure(subjects_csv: str, knobs: dict, out_dir: str, n_jobs: int, queue) -> None:
    """In a fresh process: time one build_slices and report peak memory of self and children."""
    import pandas as pd

    from g2i.data.slices import build_slices

    subjects = pd.read_csv(subjects_csv, dtype=str)
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    build_slices(subjects, out_dir=out_dir, n_jobs=n_jobs, progress=False, **knobs)
    seconds = time.perf_counter() - start
    queue.put({"n_subjects": len(subjects), "seconds": seconds, "baseline_mib": baseline_kib / 1024,
               "self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})


def in_fresh_process(target, *args) -> dict:
    # Spawned, not forked, from a parent that stays small: Linux carries a process's peak RSS across
    # fork + exec, so a big parent would set a floor under every measurement.
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode:
        raise SystemExit(f"{target.__name__} failed (exit status {process.exitcode})")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Cohort generation is not timed; each timing runs in a fresh process.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64], help="cohort sizes (default: 16 64)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 0],
                        help="worker counts to time, 0 = all cores (default: 1 0)")
    parser.add_argument("--profile", default="demo", choices=["demo", "paper"],
                        help="grid and slice size of this profile (demo: 2 mm slab, 64 x 64; paper: 1 mm, 256 x 256)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per setting; the median is reported")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    from g2i.config import load_params, resolve

    knobs_params = resolve(load_params(ROOT / "params.yaml"), args.profile)["slices"]
    knobs = {"z_mm": knobs_params["z_mm"], "size": knobs_params["size"],
             "lower": knobs_params["lower_percentile"], "upper": knobs_params["upper_percentile"]}
    print(f"machine: {describe()}")
    print(f"profile {args.profile}: slices at z = {knobs['z_mm']} mm, {knobs['size'][0]} x {knobs['size'][1]}; "
          f"median of {args.repeat} runs, each in a fresh process")
    print(f"{'volumes':>8} {'jobs':>5} {'seconds':>8} {'volumes/s':>10} {'peak RSS main':>14} "
          f"{'peak RSS worker':>16} {'RSS after imports':>18}")
    with tempfile.TemporaryDirectory(prefix="g2i-slices-bench-") as tmp:
        tmp = Path(tmp)
        for n_subjects in args.sizes:
            raw = tmp / f"{args.profile}_{n_subjects}"
            in_fresh_process(_generate, n_subjects, args.profile, str(raw))
            for n_jobs in args.jobs:
                runs = [in_fresh_process(_measure, str(raw / "subjects.csv"), knobs, str(tmp / f"out_{n_jobs}_{i}"),
                                         n_jobs) for i in range(args.repeat)]
                volumes = runs[0]["n_subjects"]
                seconds = statistics.median(r["seconds"] for r in runs)
                jobs = min(n_jobs or os.cpu_count(), volumes)
                print(f"{volumes:>8} {jobs:>5} {seconds:>8.3f} {volumes / seconds:>10.1f} "
                      f"{max(r['self_mib'] for r in runs):>11.0f} MiB {max(r['worker_mib'] for r in runs):>13.0f} MiB"
                      f" {max(r['baseline_mib'] for r in runs):>15.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
