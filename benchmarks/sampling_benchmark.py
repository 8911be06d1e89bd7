"""Speed / quality trade of the samplers: images/s and Frechet distance for DDIM-50 vs DDPM-1000 (and more).

For the demo profile it uses the trained pipeline (models/<variant>/, after `make demo`) and scores each
sampler's images against the real training slices with the Frechet distance in the feature space of
the CNN trained on real slices (the FD_cnn of Table 1). For the paper profile's model size (no trained
paper model here) it times an untrained pipeline of that size: speed only, FD not computed.

    python benchmarks/sampling_benchmark.py                                  # demo model, default samplers
    python benchmarks/sampling_benchmark.py --samplers ddim:50 ddpm:50 ddpm:1000 --n 128
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
    from g2i.pipeline import G2IPipeline

    torch.manual_seed(0)
    model = params["model"]
    denoiser = build_denoiser(variant, model)
    encoder = build_genotype_encoder(model, N_SNPS) if denoiser.uses_genotype else None
    return G2IPipeline(vae=build_autoencoder(model).eval(), unet=denoiser.eval(), scheduler=build_scheduler(model),
                       genotype_encoder=encoder.eval() if encoder else None, snps=[f"rs{i}" for i in range(N_SNPS)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("demo", "paper"), default="demo")
    parser.add_argument("--variant", default="g2i_l_att")
    parser.add_argument("--samplers", nargs="+", default=["ddim:50", "ddpm:50", "ddpm:1000"],
                        help="sampler:steps pairs")
    parser.add_argument("--n", type=int, default=96, help="images per sampler (the FD needs dozens)")
    parser.add_argument("--batch-size", type=int, default=96)
    args = parser.parse_args()
    params = resolve(load_params(ROOT / "params.yaml"), args.profile)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    reference = None
    if args.profile == "demo" and (ROOT / "models" / args.variant / "model_index.json").is_file():
        from g2i.data.dataset import ProcessedPaths, SliceGenotypeDataset, codes_with_nan
        from g2i.evaluation.classifier import ClassifierConfig, extract_features, train_classifier
        from g2i.evaluation.evaluate import real_images
        from g2i.evaluation.image_metrics import frechet_distance
        from g2i.pipeline import G2IPipeline

        pipe = G2IPipeline.from_pretrained(ROOT / "models" / args.variant)
        paths = ProcessedPaths(ROOT / "data/processed/slices", ROOT / "data/processed/genotypes.csv",
                               ROOT / "data/processed/split.csv")
        train = SliceGenotypeDataset(paths, "train")
        x_train = real_images(train)
        cnn = train_classifier(x_train, train.labels, ClassifierConfig.from_params(params["classify"]["classifier"]),
                               seed=0)
        reference = extract_features(cnn, x_train)
        rows = np.arange(args.n) % len(train)
        genotypes, labels = codes_with_nan(train.codes[rows]), train.labels[rows]
        source = f"trained {args.variant} ({ROOT / 'models' / args.variant})"
    else:
        pipe = untrained_pipeline(params, args.variant)
        rng = np.random.default_rng(0)
        genotypes, labels = rng.integers(0, 3, (args.n, N_SNPS)).astype(float), rng.integers(0, 3, args.n)
        source = f"UNTRAINED {args.variant} at the {args.profile} profile's size (speed only)"
    pipe.to(device)
    print(f"machine: {describe()}\nmodel: {source}; {args.n} images per sampler, batch {args.batch_size}")
    print(f"{'sampler':12s} {'images/s':>9s} {'s/image':>8s} {'FD_cnn':>8s}  image mean")
    for spec in args.samplers:
        sampler, steps = spec.split(":")
        start = time.perf_counter()
        out = pipe(genotypes=genotypes, diagnosis=[int(x) for x in labels], num_inference_steps=int(steps),
                   sampler=sampler, seed=0, batch_size=args.batch_size, output_type="np")
        seconds = time.perf_counter() - start
        fd = "n/c"
        if reference is not None:
            fd = f"{frechet_distance(extract_features(cnn, out.images), reference):8.3f}"
        print(f"{sampler.upper() + '-' + steps:12s} {args.n / seconds:9.2f} {seconds / args.n:8.3f} {fd:>8s}  "
              f"{out.images.mean():+.3f}")


if __name__ == "__main__":
    main()
