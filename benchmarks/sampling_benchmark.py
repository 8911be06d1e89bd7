"""Speed / quality trade of the samplers: images/s, Frechet distance and the e4 dose-sweep slope per sampler.

Where a trained pipeline exists (models/<variant>/ under --root: `make demo`'s in the checkout, `make
study`'s in .study/) it uses it, at the guidance scales --guidance / --genotype-guidance, and scores each
sampler's images against the real training slices with the Frechet distance in the feature space of
the CNN trained on real slices (the FD_cnn of Table 1), and measures the e4 counterfactual slope (log
ventricle area per allele, the same subjects and noise at doses 0 / 1 / 2, with its 95 % CI) so a fast
sampler can be held to the reference's fidelity too. For the paper profile's model size (no trained
paper model here) it times an untrained pipeline of that size: speed only, FD not computed.

    python benchmarks/sampling_benchmark.py                                  # demo model, default samplers
    python benchmarks/sampling_benchmark.py --samplers ddpm:1000 ddpm:50 ddim:50 dpm++:10 dpm++:20 dpm++:25
    python benchmarks/sampling_benchmark.py --profile study --root .study --guidance 1.5 --genotype-guidance 3
    python benchmarks/sampling_benchmark.py --profile paper --n 4 --samplers ddim:50

Not a test: the numbers depend on the machine, printed with them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from g2i.config import load_params, resolve  # noqa: E402
from g2i.machine import describe  # noqa: E402

N_SNPS = 52


def untrained_pipeline(params: dict, variant: str):
    from g2i.models import build_autoencoder, build_denoiser, build_genotype_encoder, build_scheduler
    from g2i.generation.diffusion import G2IPipeline

    torch.manual_seed(0)
    model = params["model"]
    denoiser = build_denoiser(variant, model)
    encoder = build_genotype_encoder(model, N_SNPS) if denoiser.uses_genotype else None
    return G2IPipeline(vae=build_autoencoder(model).eval(), unet=denoiser.eval(), scheduler=build_scheduler(model),
                       genotype_encoder=encoder.eval() if encoder else None, snps=[f"rs{i}" for i in range(N_SNPS)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="demo", help="params.yaml profile (default: demo)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="workspace with models/ and data/processed/ (default: this checkout; .study for make study)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="guidance scale w (w_dx with --genotype-guidance; default: params.yaml sampling)")
    parser.add_argument("--genotype-guidance", type=float, default=None, help="w_g (default: params.yaml sampling)")
    parser.add_argument("--variant", default="g2i_l_att")
    parser.add_argument("--samplers", nargs="+", default=["ddim:50", "ddpm:50", "ddpm:1000"],
                        help="sampler:steps pairs")
    parser.add_argument("--n", type=int, default=96, help="images per sampler (the FD needs dozens)")
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--sweep", type=int, default=32, help="subjects in the e4 dose sweep (0: no sweep)")
    args = parser.parse_args()
    params = resolve(load_params(ROOT / "params.yaml"), args.profile)
    root = args.root.resolve()
    w = params["sampling"]["guidance_scale"] if args.guidance is None else args.guidance
    w_g = params["sampling"]["genotype_guidance_scale"] if args.genotype_guidance is None else args.genotype_guidance
    guidance = {"guidance_scale": float(w), "genotype_guidance_scale": None if w_g is None else float(w_g)}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    reference = None
    if args.profile != "paper" and (root / "models" / args.variant / "model_index.json").is_file():
        from g2i.data.dataset import ProcessedPaths, SliceGenotypeDataset
        from g2i.vocabulary import codes_with_nan
        from g2i.evaluation.classifier import ClassifierConfig, extract_features, train_classifier
        from g2i.evaluation.image_metrics import frechet_distance
        from g2i.generation.diffusion import G2IPipeline

        pipe = G2IPipeline.from_pretrained(root / "models" / args.variant)
        paths = ProcessedPaths(root / "data/processed/slices", root / "data/processed/genotypes.csv",
                               root / "data/processed/split.csv")
        train = SliceGenotypeDataset(paths, "train")
        x_train = train.array()
        cnn = train_classifier(x_train, train.labels, ClassifierConfig.from_params(params["classify"]["classifier"]),
                               seed=0)
        reference = extract_features(cnn, x_train)
        rows = np.arange(args.n) % len(train)
        genotypes, labels = codes_with_nan(train.codes[rows]), train.labels[rows]
        source = f"trained {args.variant} ({root / 'models' / args.variant})"
    else:
        pipe = untrained_pipeline(params, args.variant)
        rng = np.random.default_rng(0)
        genotypes, labels = rng.integers(0, 3, (args.n, N_SNPS)).astype(float), rng.integers(0, 3, args.n)
        source = f"UNTRAINED {args.variant} at the {args.profile} profile's size (speed only)"
    pipe.to(device)
    print(f"machine: {describe()}\nmodel: {source}; guidance w {w}, w_g {w_g}; {args.n} images per sampler, "
          f"batch {args.batch_size}")
    print(f"{'sampler':12s} {'images/s':>9s} {'s/image':>8s} {'FD_cnn':>8s}  {'e4 slope (95 % CI)':28s} image mean")
    for spec in args.samplers:
        sampler, steps = spec.split(":")
        start = time.perf_counter()
        out = pipe(genotypes=genotypes, diagnosis=[int(x) for x in labels], num_inference_steps=int(steps),
                   sampler=sampler, seed=0, batch_size=args.batch_size, output_type="np", **guidance)
        seconds = time.perf_counter() - start
        fd, slope = "n/c", "n/c"
        if reference is not None:
            fd = f"{frechet_distance(extract_features(cnn, out.images), reference):8.3f}"
            if args.sweep:
                slope = e4_slope(pipe, train, args.sweep, sampler, int(steps), args.batch_size, guidance)
        print(f"{sampler.upper() + '-' + steps:12s} {args.n / seconds:9.2f} {seconds / args.n:8.3f} {fd:>8s}  "
              f"{slope:28s} {out.images.mean():+.3f}")


def e4_slope(pipe, train, n: int, sampler: str, steps: int, batch_size: int, guidance: dict) -> str:
    """The counterfactual e4 slope of `sample`'s dose sweep: n training subjects, own label and panel,
    APOE4 set to 0 / 1 / 2 on the same noise (one seed per subject)."""
    from g2i.vocabulary import codes_with_nan
    from g2i.evaluation.fidelity import counterfactual_effect
    from g2i.imaging.slice_morphometry import lateral_ventricle_area

    rows = np.random.default_rng(0).choice(len(train), min(n, len(train)), replace=False)
    codes, labels = codes_with_nan(train.codes[rows]), [int(x) for x in train.labels[rows]]
    apoe = train.snps.index("APOE4")
    areas = {}
    for dose in (0, 1, 2):
        swept = codes.copy()
        swept[:, apoe] = dose
        images = pipe(genotypes=swept, diagnosis=labels, num_inference_steps=steps, sampler=sampler,
                      seed=[int(r) for r in rows], batch_size=batch_size, output_type="np", **guidance).images
        areas[dose] = lateral_ventricle_area(images)
    effect = counterfactual_effect(areas)
    return f"{effect['effect']:+.4f} ({effect['ci95'][0]:+.4f}, {effect['ci95'][1]:+.4f})"


if __name__ == "__main__":
    main()
