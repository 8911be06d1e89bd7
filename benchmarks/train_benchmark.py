"""Training throughput of the diffusion model (T_theta + eps_theta) and the autoencoder step, for the demo
and paper model sizes.

Prints, per profile, measured in one run on this machine:
  images/s            of the real training loop (g2i.training.trainer.Trainer: batch drawing, step RNG,
                      forward, backward, clipping, AdamW, LR schedule, EMA)
  overhead ratio      full Trainer step time / model-only step time (forward + backward + AdamW on a
                      batch already in memory); target <= 1.05
  optimizer + EMA     one AdamW step and one EMA update over the model's parameters, per-tensor loops (torch's
                      CPU default, diffusers' default EMA) against the fused AdamW and foreach EMA the Trainer uses
  MFU                 model FLOPs per step (torch FlopCounterMode, forward + backward) / step time /
                      the matmul peak measured here (a large square matmul in the training dtype).
                      The FLOPs are NOMINAL: on CPU, oneDNN runs 3x3 convolutions with Winograd-style
                      algorithms that need fewer multiplications, so a conv-heavy step can exceed 100 %.
  autoencoder step    forward + backward + AdamW of the KL autoencoder with every loss term (L1, SSIM,
                      KL, PatchGAN generator and discriminator terms, past the adversarial warm-up), on
                      the profile's slice size and autoencoder batch: the stage that ran 4x slower on an
                      Intel Xeon than on an AMD EPYC (issue 13), next to the denoiser step; in float32 and,
                      where the CPU has hardware bf16 (AMX or AVX-512 BF16; cpu_mixed_precision: auto), in bf16 autocast, with the ratio

    python benchmarks/train_benchmark.py                   # both profiles, sizes from params.yaml
    python benchmarks/train_benchmark.py --profile paper --batch-size 4 --steps 3   # CPU-friendly

Not a test: numbers depend on the machine, which is printed with them.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from g2i.config import load_params, resolve  # noqa: E402
from g2i.losses.autoencoder import AutoencoderLossWeights  # noqa: E402
from g2i.models import (build_autoencoder, build_denoiser, build_discriminator,  # noqa: E402
                        build_genotype_encoder, build_scheduler)
from g2i.training.autoencoder import make_loss_fn as autoencoder_loss_fn  # noqa: E402
from g2i.training.diffusion import diffusion_loss  # noqa: E402
from g2i.training.trainer import TrainConfig, Trainer, cpu_precision, make_optimizer, step_generator  # noqa: E402
from g2i.machine import describe  # noqa: E402

N_SNPS = 52  # the AlzGene panel + APOE4 tokens


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Achieved FLOP/s of an n x n matmul: the ceiling MFU is measured against."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def latent_hw(params: dict) -> int:
    ae = params["model"]["autoencoder"]
    return int(params["slices"]["size"][0]) // 2 ** (len(ae["block_out_channels"]) - 1)


def build(params: dict, variant: str, device: torch.device):
    torch.manual_seed(0)
    modules = {"denoiser": build_denoiser(variant, params["model"]).to(device)}
    if modules["denoiser"].uses_genotype:
        modules["genotype_encoder"] = build_genotype_encoder(params["model"], N_SNPS).to(device)
    return modules


def fake_data(n: int, params: dict, device: torch.device) -> dict[str, torch.Tensor]:
    c, hw = int(params["model"]["autoencoder"]["latent_channels"]), latent_hw(params)
    g = torch.Generator().manual_seed(0)
    return {"z_0": torch.randn(n, c, hw, hw, generator=g), "label": torch.randint(0, 3, (n,), generator=g),
            "genotype": torch.randint(0, 3, (n, N_SNPS), generator=g)}


def model_only(modules, loss_fn, batch, steps: int, warmup: int, device, bf16: bool = False) -> tuple[float, float]:
    """(seconds per step, FLOPs per step) of forward + backward + AdamW on one in-memory batch; `bf16`: the
    forward pass under bf16 autocast, as the Trainer runs it on CPU with cpu_mixed_precision bf16."""
    from torch.utils.flop_counter import FlopCounterMode

    model = torch.nn.ModuleDict(modules).train()
    optimizer = make_optimizer(model.parameters(), 1e-4, 0.01, (0.9, 0.999))
    batch = {k: v.to(device) for k, v in batch.items()}

    def step(i: int) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = loss_fn(model, batch, step_generator(0, i))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        step(0)
    flops = counter.get_total_flops()
    for i in range(warmup):
        step(i)
    times = []
    for i in range(steps):
        sync(device)
        start = time.perf_counter()
        step(i)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), flops


def optimizer_and_ema(modules, repeats: int = 20) -> tuple[float, float]:
    """(loop, Trainer's) median seconds of one AdamW step plus one EMA update over the modules' parameters."""
    from diffusers.training_utils import EMAModel

    params = [p for m in modules.values() for p in m.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3

    def timed(optimizer, ema) -> float:
        times = []
        for i in range(repeats + 3):
            start = time.perf_counter()
            optimizer.step()
            ema.step(params)
            times.append(time.perf_counter() - start)
        return statistics.median(times[3:])

    loop = timed(torch.optim.AdamW(params, lr=1e-6, weight_decay=0.01, foreach=False), EMAModel(params, foreach=False))
    ours = timed(make_optimizer(params, 1e-6, 0.01, (0.9, 0.999)), EMAModel(params, foreach=True))
    for p in params:
        p.grad = None
    return loop, ours


def full_trainer(modules, loss_fn, data, cfg_params: dict, steps: int, warmup: int) -> float:
    """Median seconds per step of the project's Trainer (logging every step records the times)."""
    stamps: list[float] = []
    cfg = TrainConfig.from_params({**cfg_params, "max_steps": warmup + steps, "checkpoint_every": 10**9,
                                   "log_every": 1})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(modules, loss_fn, len(data["z_0"]), lambda idx: {k: v[idx] for k, v in data.items()}, cfg,
                          tmp, log=lambda m, s: stamps.append(time.perf_counter()), progress=False)
        trainer.save_checkpoint = lambda: None  # the final checkpoint is I/O, not the step being measured
        trainer.fit()
    gaps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]
    return statistics.median(gaps)


def autoencoder_step(params: dict, batch_size: int | None, steps: int, warmup: int, device) -> dict:
    """Median seconds per autoencoder training step with every loss term active, in float32 and, on a CPU
    where `training.autoencoder.cpu_mixed_precision` resolves to bf16 (AMX or AVX-512 BF16), also as the Trainer runs it."""
    model_cfg = params["model"]
    train = params["training"]["autoencoder"]
    bs = int(batch_size or train["batch_size"])
    size = [int(s) for s in params["slices"]["size"]]
    weights = AutoencoderLossWeights.from_config(model_cfg)
    after_warmup = int(weights.adversarial_warmup_steps) + 1
    loss_fn = autoencoder_loss_fn(weights, lambda: after_warmup)
    batch = {"x_0": (torch.rand(bs, 1, *size, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)}

    def timed(bf16: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        modules = {"vae": build_autoencoder(model_cfg).to(device), "disc": build_discriminator(model_cfg).to(device)}
        return model_only(modules, loss_fn, batch, steps, warmup, device, bf16=bf16)

    t_fp32, flops = timed(False)
    precision = cpu_precision(train["cpu_mixed_precision"]) if device.type == "cpu" else "no"
    t_step = timed(True)[0] if precision == "bf16" else t_fp32
    return {"ae_batch_size": bs, "ae_precision": "bf16" if precision == "bf16" else "float32", "ae_step_s": t_step,
            "ae_step_fp32_s": t_fp32, "ae_speedup": t_fp32 / t_step, "ae_images_per_s": bs / t_step,
            "ae_gflop_per_step": flops / 1e9}


def bench(profile: str, variant: str, steps: int, warmup: int, batch_size: int | None, device) -> dict:
    return bench_params(resolve(load_params(ROOT / "params.yaml"), profile), variant, steps, warmup, batch_size, device)


def bench_params(params: dict, variant: str, steps: int, warmup: int, batch_size: int | None, device,
                 peak_size: int = 2048) -> dict:
    """Denoiser and autoencoder step measurements at the sizes of resolved `params` (a profile)."""
    profile = params["profile"]
    train = dict(params["training"]["diffusion"])
    if batch_size:
        train["batch_size"] = batch_size
    bs = int(train["batch_size"])
    data = fake_data(max(4 * bs, 64), params, device)
    modules = build(params, variant, device)
    denoiser = modules["denoiser"]
    loss_fn = diffusion_loss((denoiser.uses_label, denoiser.uses_genotype), build_scheduler(params["model"]), 0.1)
    batch = {k: v[:bs] for k, v in data.items()}
    t_model, flops = model_only(modules, loss_fn, batch, steps, warmup, device)
    t_opt_loop, t_opt = optimizer_and_ema(build(params, variant, device))
    modules = build(params, variant, device)
    t_full = full_trainer(modules, loss_fn, data, train, steps, warmup)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = matmul_peak(device, dtype, n=peak_size)
    n_params = sum(p.numel() for m in modules.values() for p in m.parameters())
    ae = autoencoder_step(params, batch_size, steps, warmup, device)
    return {**ae, "profile": profile, "variant": variant, "batch_size": bs, "latent": latent_hw(params),
            "parameters_M": round(n_params / 1e6, 2), "model_step_s": t_model, "full_step_s": t_full,
            "images_per_s": bs / t_full, "optimizer_ema_loop_s": t_opt_loop, "optimizer_ema_s": t_opt, "overhead_ratio": t_full / t_model, "gflop_per_step": flops / 1e9,
            "achieved_tflops": flops / t_full / 1e12, "peak_tflops": peak / 1e12, "mfu": flops / t_full / peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="both", help="a params.yaml profile, or both (demo and paper)")
    parser.add_argument("--variant", default="g2i_l_att")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="override the profile's batch size")
    parser.add_argument("--paper-cpu-batch", type=int, default=4,
                        help="paper profile batch size on CPU (the GPU batch of 64 takes minutes per step)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    profiles = ("demo", "paper") if args.profile == "both" else (args.profile,)
    print(f"machine: {describe()}")
    results = []
    for profile in profiles:
        batch = args.batch_size
        steps, warmup = args.steps, args.warmup
        if profile == "paper" and device.type == "cpu":
            batch = batch or args.paper_cpu_batch
            steps, warmup = min(steps, 3), min(warmup, 1)
        result = bench(profile, args.variant, steps, warmup, batch, device)
        results.append(result)
        print(f"{profile:5s} {args.variant} batch {result['batch_size']:3d} latent {result['latent']}x{result['latent']} "
              f"({result['parameters_M']} M params): {result['images_per_s']:.1f} images/s | full step "
              f"{result['full_step_s'] * 1e3:.1f} ms / model-only {result['model_step_s'] * 1e3:.1f} ms = overhead "
              f"{result['overhead_ratio']:.3f} | AdamW + EMA {result['optimizer_ema_s'] * 1e3:.1f} ms (per-tensor loops "
              f"{result['optimizer_ema_loop_s'] * 1e3:.1f} ms, x{result['optimizer_ema_loop_s'] / result['optimizer_ema_s']:.1f}) | "
              f"{result['gflop_per_step']:.1f} GFLOP/step, "
              f"{result['achieved_tflops'] * 1e3:.1f} GFLOP/s of {result['peak_tflops'] * 1e3:.0f} GFLOP/s matmul peak "
              f"= MFU {result['mfu']:.1%} | autoencoder step {result['ae_step_s'] * 1e3:.0f} ms at batch "
              f"{result['ae_batch_size']} ({result['ae_images_per_s']:.1f} images/s, {result['ae_precision']}; "
              f"float32 {result['ae_step_fp32_s'] * 1e3:.0f} ms, x{result['ae_speedup']:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"machine": describe(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
