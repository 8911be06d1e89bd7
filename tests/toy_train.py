"""A toy regression trained with g2i.training.Trainer; run by the resume and multi-process tests.

Usage: python tests/toy_train.py OUT_DIR MAX_STEPS [--sleep S] [--nan-at STEP] [--fail-at STEP]
Writes OUT_DIR/final.pt (weights and EMA weights) when training completes.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from g2i.errors import G2IError
from g2i.training.trainer import TrainConfig, Trainer

N_ITEMS = 64


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_ITEMS, 4, generator=g)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(N_ITEMS, 1, generator=g)


def build(out_dir, max_steps, sleep=0.0, nan_at=None, fail_at=None, checkpoint_every=5):
    torch.manual_seed(0)
    x, y = data()

    def loss_fn(model, batch, generator):
        if fail_at is not None and trainer.step == fail_at:
            raise RuntimeError("simulated crash")
        time.sleep(sleep)
        noise = torch.randn(batch["x"].shape, generator=generator) * 0.01  # uses the step's stream
        loss = ((model["net"](batch["x"] + noise) - batch["y"]) ** 2).mean()
        if nan_at is not None and trainer.step == nan_at:
            loss = loss * float("nan")
        return loss, {"mse": float(loss.detach())}

    # every field stated (the script also runs alone, under `accelerate launch`): the toy's own settings
    cfg = TrainConfig(max_steps=max_steps, batch_size=8, learning_rate=0.05, weight_decay=0.01, betas=(0.9, 0.999),
                      warmup_steps=3, grad_clip=1.0, ema_decay=0.9, checkpoint_every=checkpoint_every,
                      keep_checkpoints=2, log_every=10, seed=1, mixed_precision="bf16", cpu_mixed_precision="no")
    trainer = Trainer({"net": nn.Linear(4, 1)}, loss_fn, N_ITEMS, lambda i: {"x": x[i], "y": y[i]}, cfg, out_dir,
                      progress=False)
    return trainer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("max_steps", type=int)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--nan-at", type=int, default=None)
    args = parser.parse_args(argv)
    trainer = build(args.out_dir, args.max_steps, args.sleep, args.nan_at)
    try:
        trainer.fit()
    except G2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if trainer.accelerator.is_main_process:
        torch.save({"weights": trainer.unwrapped.state_dict(), "ema": trainer.ema_modules().state_dict(),
                    "step": trainer.step}, f"{args.out_dir}/final.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
