"""Does the genotype encoder's value embedding decide whether a model learns the APOE e4 effect?

An ablation on a study cohort (issue 11, deliverable 4: "when a goal is missed, find out why with
evidence"). The study runs measured G2I-l w/ Att's e4 dose sweep at 0.07 of the identifiability
ceiling (study_2000), and the conditioning probe found the encoder's output moving 5x less for
e4 0 -> 2 than for a swap of the other panel SNPs, with no extra attention on the APOE token. One
candidate cause: the value embedding was one 0/1/2/missing table for every SNP, so a change of APOE's
dose moved its token exactly as any other SNP's would.

Each arm trains G2I-l w/ Att on the same cached latents with the same settings but one
`model.genotype_encoder` override, then measures on the same subjects and noise:
  probe     the conditioning probe (g2i.evaluation.probes) on `probe.n_subjects` training subjects
  sweep     the APOE e4 dose sweep (0 / 1 / 2, same noise and label) of the sample stage's
            counterfactual training subjects, per guidance pair (w_dx, w_g): slope of log ventricle area
            per allele with a 95 % CI, and its ratio to the ceiling (Fieller CI)
  test      `sample.per_subject` images per TEST subject at the first guidance pair: conditional-mean r
            against the planted expectation (and the perfect-generator r at the same k), and the
            generated AD-CN and MCI-CN label effects over the real test slices'

Run it in a study clone whose data stages, autoencoder and latents are up to date, e.g.:

    make study STUDY_PROFILE=study_2000        # or, for the inputs only, in the clone:
    dvc repro encode_latents
    python benchmarks/genotype_conditioning_ablation.py --workdir .study_2000 \
        --arm shared:snp_value_embedding=shared --arm per_snp:snp_value_embedding=per_snp \
        --out docs/results/ablation_value_embedding

Arms train one after another with every core, or side by side with --parallel (each with its share of
the cores). Writes <out>/ablation.json and <out>/ablation.md; trained models stay under
<workdir>/ablation/<arm>/ (a second run measures them again without training). Not a test: it takes
tens of minutes per arm on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from g2i.config import load_params, resolve  # noqa: E402
from g2i.errors import G2IError  # noqa: E402
from g2i.machine import describe  # noqa: E402

VARIANT = "g2i_l_att"


def parse_arm(text: str) -> tuple[str, dict]:
    """'name:key=value,key=value' -> (name, {key: value}) for model.genotype_encoder."""
    name, _, settings = text.partition(":")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise G2IError(f"--arm {text}: expected name:key=value[,key=value]")
        overrides[key] = json.loads(value) if value[:1] in "0123456789-[{" else value
    if not name:
        raise G2IError(f"--arm {text}: the arm needs a name")
    return name, overrides


def arm_params(workdir: Path, overrides: dict, max_steps: int | None) -> dict:
    params = resolve(load_params(workdir / "params.yaml"))
    params["model"]["genotype_encoder"].update(overrides)
    if max_steps is not None:
        params["training"]["diffusion"]["max_steps"] = int(max_steps)
    return params


def train_arm(workdir: Path, name: str, overrides: dict, max_steps: int | None, threads: int | None) -> Path:
    """Train one arm into <workdir>/ablation/<name>/model (kept: a second run skips it)."""
    import torch

    from g2i.data.dataset import ProcessedPaths
    from g2i.models.autoencoder import load_autoencoder
    from g2i.training.diffusion import train_diffusion

    if threads:
        torch.set_num_threads(threads)
    out = workdir / "ablation" / name
    model = out / "model"
    if (model / "model_index.json").is_file():
        return model
    params = arm_params(workdir, overrides, max_steps)
    started = time.perf_counter()
    train_diffusion(params, ProcessedPaths(), model, out / "checkpoints", variant=VARIANT,
                    latents=Path("data/processed/latents/latents.npy"), vae=load_autoencoder(Path("models/autoencoder")),
                    progress=threads is None)
    (out / "train_seconds.json").write_text(json.dumps({"seconds": time.perf_counter() - started,
                                                        "machine": describe(), "overrides": overrides}))
    return model


def measure(workdir: Path, models: dict[str, Path], pairs: list[tuple[float, float]]) -> dict:
    import pandas as pd
    import torch

    from g2i.data.dataset import ProcessedPaths, SliceGenotypeDataset
    from g2i.data.raw import RawInputs
    from g2i.evaluation import fidelity, truth
    from g2i.evaluation.probes import probe_pipeline, probe_rows
    from g2i.evaluation.truth_fidelity import TruthReference
    from g2i.generation.loader import guided_generators
    from g2i.generation.sets import SampleConfig, counterfactual_set, test_set
    from g2i.imaging.slice_morphometry import lateral_ventricle_area
    from g2i.generation.diffusion import load_variant
    from g2i.vocabulary import DOSES

    params = resolve(load_params(workdir / "params.yaml"))
    paths = ProcessedPaths()
    paths.check()
    train, val, test = (SliceGenotypeDataset(paths, s) for s in ("train", "val", "test"))
    gt = pd.read_csv(RawInputs.from_params(params["data"], workdir).ground_truth)
    index = pd.read_csv(paths.slices_dir / "index.csv")
    slices = np.load(paths.slices_dir / "slices.npy").astype(np.float32)
    planted, _ = fidelity.planted_truth(fidelity.ground_truth_apoe_effect(
        params["synthesize"]["effects"], slices=slices, index=index, ground_truth=gt))
    ref = TruthReference(train, val, test, train.array(), test.array(), gt, params["synthesize"]["effects"],
                         planted["log_area_per_allele"], seed=int(params["evaluate"]["seed"]))
    cfg = SampleConfig.from_params(params["sample"])
    probe_cfg = params["probe"]
    rows = probe_rows(len(train), probe_cfg)
    x_probe = torch.from_numpy(train.array()[rows])[:, None]
    results = {"ceiling": ref.ceiling, "truth": ref.truth, "label_effects_real_test": ref.label_effects_real,
               "arms": {}}
    for name, model_dir in models.items():
        print(f"{name}: probe, dose sweeps at {pairs}, test set at {pairs[0]} ...", flush=True)
        pipe = load_variant(model_dir)
        torch.manual_seed(int(probe_cfg["seed"]))
        probe = probe_pipeline(pipe, train, rows, x_probe, probe_cfg)
        generate_at = guided_generators(model_dir, params)
        sweeps = {}
        for w, w_g in pairs:
            sets = counterfactual_set(generate_at(w, w_g), train, cfg)
            effect = fidelity.counterfactual_effect(
                {d: lateral_ventricle_area(sets[f"dose_{d}"].astype(np.float32)) for d in DOSES})
            sweeps[f"{w:g}/{w_g:g}"] = {"w": w, "w_g": w_g, "slope": effect["effect"], "ci95": effect["ci95"],
                                        "to_ceiling": truth.slope_ratio(effect, ref.ceiling)}
        generated = test_set(generate_at(*pairs[0]), test, cfg)
        images = generated["images"].astype(np.float32)
        label_effects = truth.label_effects(lateral_ventricle_area(images), generated["label"])
        results["arms"][name] = {
            "model": str(model_dir), "probe": probe, "sweeps": sweeps,
            "test": {"w": pairs[0][0], "w_g": pairs[0][1],
                     "conditional": ref.conditional("test", images, generated["row"]),
                     "label_effect_ratio": truth.label_effect_ratio(label_effects, ref.label_effects_real)}}
        seconds = model_dir.parent / "train_seconds.json"
        if seconds.is_file():
            results["arms"][name]["train"] = json.loads(seconds.read_text())
    return results


def _f(x, fmt: str = ".2f") -> str:
    return "n/c" if x is None or not np.isfinite(x) else format(x, fmt)


def _ci(pair) -> str:
    lo, hi = pair
    return "unbounded" if lo is None or hi is None or not np.isfinite([lo, hi]).all() else f"{lo:.2f} to {hi:.2f}"


def markdown(results: dict, command: str) -> str:
    c = results["ceiling"]
    lines = ["# Ablation: the genotype encoder's value embedding and the APOE e4 effect", "",
             f"Generated by `{command}` (benchmarks/genotype_conditioning_ablation.py) on {results['machine']}; "
             f"commit `{results['commit']}`, profile `{results['profile']}`. Model: G2I-l w/ Att, same latents, "
             "settings, seeds and subjects in every arm; only `model.genotype_encoder` differs.", "",
             f"Planted e4 effect on log ventricle area: {results['truth']:+.4f} per allele. Identifiability ceiling "
             f"(real training slices): {c['slope']:+.4f} (95 % CI {c['ci95'][0]:.4f} to {c['ci95'][1]:.4f}).", "",
             "| arm | overrides | train min | probe: encoder e4/swap | probe: eps e4/swap (t = 50 / 250 / 500 / 750) "
             "| attention on APOE / uniform |", "|---|---|---|---|---|---|"]
    for name, arm in results["arms"].items():
        p = arm["probe"]
        eps = " / ".join(_f(v.get("e4_over_swap")) for v in p["denoiser"].values())
        att = p.get("attention") or {}
        minutes = f"{arm['train']['seconds'] / 60:.1f}" if "train" in arm else ""
        overrides = ", ".join(f"{k}={v}" for k, v in arm.get("train", {}).get("overrides", {}).items())
        lines.append(f"| {name} | {overrides} | {minutes} | {_f(p['encoder']['e4_over_swap'])} | {eps} | "
                     f"{_f(att.get('over_uniform'))} |")
    lines += ["", "Dose sweep of the counterfactual training subjects (slope of log ventricle area per e4 allele):",
              "", "| arm | w_dx / w_g | slope (95 % CI) | / ceiling (95 % CI) |", "|---|---|---|---|"]
    for name, arm in results["arms"].items():
        for key, s in arm["sweeps"].items():
            ratio = s["to_ceiling"]
            lines.append(f"| {name} | {key} | {s['slope']:+.4f} ({s['ci95'][0]:.4f} to {s['ci95'][1]:.4f}) | "
                         f"{_f(ratio['ratio'])} ({_ci(ratio['ci95'])}) |")
    lines += ["", "Test subjects at the first guidance pair:", "",
              "| arm | conditional r (95 % CI) | perfect r, same k | r / perfect | AD-CN gen/real | MCI-CN gen/real |",
              "|---|---|---|---|---|---|"]
    for name, arm in results["arms"].items():
        t = arm["test"]
        cond, ler = t["conditional"], t["label_effect_ratio"]
        lines.append(f"| {name} | {cond['r']:.3f} ({cond['ci95'][0]:.3f} to {cond['ci95'][1]:.3f}) | "
                     f"{cond['ceiling']['r']:.3f} | {_f(cond['ratio_to_ceiling'])} | "
                     f"{_f(ler['AD-CN']['ratio'])} | {_f(ler['MCI-CN']['ratio'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True, help="a study clone with data stages and latents done")
    parser.add_argument("--arm", action="append", required=True,
                        help="name:key=value[,key=value]: model.genotype_encoder overrides of one arm (repeat)")
    parser.add_argument("--pairs", default="1.5/1.5,1.5/3",
                        help="guidance pairs w_dx/w_g for the dose sweeps; the first also for the test set")
    parser.add_argument("--max-steps", type=int, default=None, help="override training.diffusion.max_steps")
    parser.add_argument("--parallel", action="store_true", help="train the arms side by side, cores shared")
    parser.add_argument("--out", type=Path, required=True, help="folder for ablation.json and ablation.md")
    parser.add_argument("--train-only", metavar="ARM", help=argparse.SUPPRESS)   # a --parallel child
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    arms = dict(parse_arm(a) for a in args.arm)
    os.chdir(workdir)
    if args.train_only:
        train_arm(workdir, args.train_only, arms[args.train_only], args.max_steps,
                  threads=max(1, (os.cpu_count() or 1) // len(arms)))
        return
    if args.parallel:
        children = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--train-only", name]) for name in arms]
        if any(child.wait() for child in children):
            raise SystemExit("an arm failed to train")
    models = {name: train_arm(workdir, name, overrides, args.max_steps, None) for name, overrides in arms.items()}
    pairs = [tuple(float(x) for x in p.split("/")) for p in args.pairs.split(",")]
    results = measure(workdir, models, pairs)
    results.update(machine=describe(), profile=resolve(load_params(workdir / "params.yaml"))["profile"],
                   commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=workdir, capture_output=True,
                                         text=True).stdout.strip())
    from g2i.io.jsonable import json_safe

    out = args.out if args.out.is_absolute() else ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps(json_safe(results), indent=1))
    command = "python benchmarks/genotype_conditioning_ablation.py " + " ".join(sys.argv[1:])
    (out / "ablation.md").write_text(markdown(results, command))
    print(markdown(results, command))


if __name__ == "__main__":
    main()
