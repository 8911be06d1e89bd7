"""Is the planted e4 effect identifiable from a cohort's real slices? The data side of issue 11's ceiling,
measured right after the data stages, without training any model.

For each split it reports, within diagnosis and with 95 % intervals:
  - `ceiling`: the e4 slope of measured log ventricle area on the real slices (what `evaluate` reports as the
    identifiability ceiling; the same library calls);
  - `drawn`: the same slope on the planted ventricle-volume multiplier of these very subjects (no image):
    what the cohort's draw holds before any imaging or measurement, against the planted parameter;
  - `truth`: the planted effect converted to log slice area (evaluate's conversion, measured on these slices).

Run it in a project checkout (or a `g2i study` clone) whose data stages have run, e.g.

    .venv/bin/dvc repro split slices            # then
    .venv/bin/python benchmarks/identifiability.py --profile study_2000 --out identifiability.json

Not a test: a measurement. It prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def measure(params: dict, root: Path) -> dict:
    """The real-slice side of evaluate's truth measures (g2i.evaluation.truth_fidelity.TruthReference), without
    the autoencoder's reconstructions: the ceiling and the drawn slope per split."""
    import numpy as np
    import pandas as pd

    from g2i.data.dataset import ProcessedPaths, SliceGenotypeDataset
    from g2i.data.raw import RawInputs
    from g2i.evaluation import fidelity
    from g2i.evaluation.truth_fidelity import TruthReference

    paths = ProcessedPaths()
    paths.check()
    gt = pd.read_csv(RawInputs.from_params(params["data"], root).ground_truth)
    index = pd.read_csv(paths.slices_dir / "index.csv")
    slices = np.load(paths.slices_dir / "slices.npy", mmap_mode="r")
    effects = params["synthesize"]["effects"]
    implied = fidelity.ground_truth_apoe_effect(effects, slices=np.asarray(slices, np.float32), index=index,
                                                ground_truth=gt)
    # evaluate's conversion: measured on these slices when the cohort allows
    per_allele = fidelity.planted_truth(implied)[0]["log_area_per_allele"]
    train, val, test = (SliceGenotypeDataset(paths, s) for s in ("train", "val", "test"))
    ref = TruthReference(train, val, test, train.array(), test.array(), gt, effects, per_allele,
                         seed=int(params["evaluate"]["seed"]))
    out = {"truth_log_area_per_allele": float(per_allele),
           "planted_log_volume_per_allele": float(ref.planted_log_volume)}
    for split, ceiling in (("train", ref.ceiling), ("test", ref.ceiling_test)):
        out[split] = {name: {"slope": r["slope"], "ci95": list(r["ci95"]), "n": r["n"]}
                      for name, r in (("ceiling", ceiling), ("drawn", ref.drawn[split]))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=None, help="params.yaml profile (default: its `profile` key)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default: print only)")
    args = parser.parse_args()

    from g2i.config import load_params, repo_root, resolve
    from g2i.errors import G2IError
    from g2i.machine import describe

    started = time.perf_counter()
    try:
        params = resolve(load_params(None), args.profile)
        result = {"profile": params["profile"], "machine": describe(), **measure(params, repo_root())}
    except G2IError as exc:   # no processed data, no params.yaml: say so in one line
        raise SystemExit(f"identifiability: error: {exc}") from None
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(f"profile {result['profile']}: planted {result['truth_log_area_per_allele']:+.4f} log area per allele "
          f"({result['planted_log_volume_per_allele']:+.3f} log volume)")
    print("| split | measure | n | slope | 95 % CI |\n|---|---|---|---|---|")
    for split in ("train", "test"):
        for name in ("ceiling", "drawn"):
            r = result[split][name]
            print(f"| {split} | {name} | {r['n']} | {r['slope']:+.4f} | {r['ci95'][0]:+.4f} to {r['ci95'][1]:+.4f} |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
