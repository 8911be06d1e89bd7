"""The README's GPU column in one run (at most ~8 minutes on one CUDA GPU): the `paper` profile's sizes.

    python benchmarks/gpu_check.py --out reports/gpu_check      # on a machine with one CUDA GPU
    python benchmarks/gpu_check.py --dry-run --out /tmp/gc      # any CPU, tiny networks: checks the script

Measures, on randomly initialised networks of the paper profile (speed does not depend on the weights):
  training   the denoiser (G2I-l w/ Att) through the project's Trainer: images/s, MFU against the matmul
             peak measured here in bf16 (g2i's GPU training dtype); the autoencoder step (every loss term)
  sampling   256 x 256 images/s of G2IPipeline with params.yaml's default sampler, steps and guidance
  serving    p50 of one served request (the pyfunc model, in-process, one row, the served defaults)
Writes gpu_check.json and gpu_check.md (a table to paste into the README) to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "src"))

from g2i.config import load_params, resolve  # noqa: E402
from g2i.machine import describe  # noqa: E402

VARIANT = "g2i_l_att"


def dry_run_sizes(params: dict) -> dict:
    """Tiny networks on 32 x 32 slices with the paper profile's structure: seconds on any CPU."""
    model = params["model"]
    model["autoencoder"].update({"block_out_channels": [8, 8, 8], "norm_num_groups": 4, "sample_size": 32})
    model["discriminator"].update({"channels": 8, "norm_num_groups": 4})
    model["genotype_encoder"].update({"embed_dim": 16, "num_layers": 1, "num_heads": 2, "ff_dim": 16})
    model["unet"].update({"block_out_channels": [16, 16, 32], "attention_head_dim": 8, "norm_num_groups": 4,
                          "sample_size": 8})
    params["slices"]["size"] = [32, 32]
    params["training"]["diffusion"]["batch_size"] = 4
    params["training"]["autoencoder"]["batch_size"] = 2
    params["sampling"]["num_inference_steps"] = 3
    params["serving"]["num_inference_steps"] = 3
    return params


# train_benchmark (the training measurement, shared with benchmarks/train_benchmark.py) is imported where it is
# used: its imports (diffusers, MLflow) take seconds, and a machine without a GPU is told so at once.


def pipeline(params: dict, device: torch.device):
    import train_benchmark
    from g2i.models import build_autoencoder, build_denoiser, build_genotype_encoder, build_scheduler
    from g2i.generation.diffusion import G2IPipeline

    torch.manual_seed(0)
    snps = [f"rs{i}" for i in range(train_benchmark.N_SNPS - 1)] + ["APOE4"]
    denoiser = build_denoiser(VARIANT, params["model"])
    encoder = build_genotype_encoder(params["model"], len(snps))
    pipe = G2IPipeline(vae=build_autoencoder(params["model"]).eval(), unet=denoiser.eval(),
                       scheduler=build_scheduler(params["model"]), genotype_encoder=encoder.eval(), snps=snps, z_mm=16.0)
    return pipe.to(device), snps


def sampling(pipe, snps, params: dict, n: int, device: torch.device) -> dict:
    import train_benchmark

    cfg = params["sampling"]
    codes = torch.randint(0, 3, (n, len(snps)), generator=torch.Generator().manual_seed(0)).numpy()
    kwargs = dict(diagnosis=[i % 3 for i in range(n)], num_inference_steps=int(cfg["num_inference_steps"]),
                  sampler=cfg["sampler"], guidance_scale=float(cfg["guidance_scale"]), batch_size=n, output_type="np")
    pipe(genotypes=codes[:1], **{**kwargs, "diagnosis": [0], "batch_size": 1})      # warm-up
    train_benchmark.sync(device)
    start = time.perf_counter()
    images = pipe(genotypes=codes, seed=list(range(n)), **kwargs).images
    train_benchmark.sync(device)
    seconds = time.perf_counter() - start
    return {"sampler": f"{cfg['sampler']}-{cfg['num_inference_steps']}", "guidance_scale": float(cfg["guidance_scale"]),
            "image_size": int(images.shape[-1]), "batch": n, "images_per_s": n / seconds,
            "finite": bool(torch.isfinite(torch.from_numpy(images)).all())}


def serving(pipe, snps, params: dict, requests: int) -> dict:
    """p50 of one served row: the registered pyfunc model's own code, loaded from a saved pipeline."""
    from types import SimpleNamespace

    import pandas as pd

    from g2i.serving.pyfunc_model import G2IPyfunc

    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(Path(tmp) / "pipeline")
        model = G2IPyfunc()
        model.load_context(SimpleNamespace(artifacts={"pipeline": str(Path(tmp) / "pipeline")},
                                           model_config=dict(params["serving"])))
        row = pd.DataFrame([{**{snp: 1.0 for snp in snps}, "diagnosis": "AD", "seed": 0}])
        model.predict(None, row)                                                         # warm-up
        times = []
        for i in range(requests):
            start = time.perf_counter()
            out = model.predict(None, row.assign(seed=i))
            times.append(time.perf_counter() - start)
    return {"requests": requests, "p50_s": statistics.median(times), "image_height": int(out["height"][0]),
            "steps": int(params["serving"]["num_inference_steps"])}


def markdown(result: dict) -> str:
    t, s, v = result["training"], result["sampling"], result["serving"]
    rows = [("machine", result["machine"]),
            ("denoiser training (G2I-l w/ Att)", f"{t['images_per_s']:.1f} images/s at batch {t['batch_size']} "
                                                 f"({t['full_step_s'] * 1e3:.1f} ms/step), MFU {t['mfu']:.1%} of "
                                                 f"{t['peak_tflops']:.3g} TFLOP/s measured matmul peak"),
            ("autoencoder step", f"{t['ae_step_s'] * 1e3:.1f} ms at batch {t['ae_batch_size']} "
                                 f"({t['ae_images_per_s']:.1f} images/s)"),
            (f"sampling {s['image_size']} x {s['image_size']} ({s['sampler']}, w = {s['guidance_scale']:g})",
             f"{s['images_per_s']:.2f} images/s (batch {s['batch']})"),
            ("served request (one row, in-process pyfunc)", f"p50 {v['p50_s'] * 1e3:.0f} ms ({v['steps']} steps)")]
    head = ["# GPU check (`benchmarks/gpu_check.py`)", "",
            f"Profile `{result['profile']}`{' (DRY RUN: tiny networks, not a measurement)' if result['dry_run'] else ''}; "
            f"{result['seconds']:.0f} s in all.", "", "| What | Measured |", "|---|---|"]
    return "\n".join(head + [f"| {a} | {b} |" for a, b in rows]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/gpu_check"), help="gpu_check.json and .md go here")
    parser.add_argument("--dry-run", action="store_true", help="tiny networks on CPU: checks the script, measures nothing")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--images", type=int, default=32, help="images sampled in one batch")
    parser.add_argument("--requests", type=int, default=10, help="served requests for the p50")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.dry_run:
        parser.error("no CUDA GPU here; use --dry-run to check the script on a CPU")
    import train_benchmark

    params = resolve(load_params(ROOT.parent / "params.yaml"), "paper")
    steps, warmup, images, requests = args.steps, 3, args.images, args.requests
    if args.dry_run:
        params, steps, warmup, images, requests = dry_run_sizes(params), 2, 1, 2, 2
    started = time.perf_counter()
    training = train_benchmark.bench_params(params, VARIANT, steps, warmup, None, device,
                                            peak_size=256 if args.dry_run else 8192)
    pipe, snps = pipeline(params, device)
    result = {"machine": describe(), "profile": "paper", "dry_run": args.dry_run, "training": training,
              "sampling": sampling(pipe, snps, params, images, device), "serving": serving(pipe, snps, params, requests)}
    result["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
