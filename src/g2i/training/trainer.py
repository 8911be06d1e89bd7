"""A training loop that can be killed at any moment and resumed to the same result.

Exact resume without saving data-loader or sampler state: every step draws its batch indices and its
noise from a generator seeded by (seed, step, process), so step k does the same work whether or not the
run was interrupted before it. Checkpoints (Accelerate's save_state: weights, optimizer, LR scheduler,
EMA, RNG, plus the step) are written to a temporary folder and renamed, so a kill -9 mid-save leaves the
previous checkpoint intact. A non-finite loss stops the run before the bad update, keeping the last good
checkpoint. Data-parallel on several GPUs or processes via `accelerate launch --num_processes N`.

Also what the trainers share: TrainResult (what each returns), checkpoint fingerprints and removal, and
`frozen_call` / `Conditioned` (a network run with detached parameters, so one optimizer can train rivals).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ..config import from_section
from ..errors import G2IError

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
FINGERPRINT = "fingerprint.json"


def settings_fingerprint(settings: Mapping[str, Any], data: torch.Tensor) -> str:
    """A hash of the settings and the training data a checkpoint was made with."""
    import hashlib

    payload = {"settings": settings, "data": hashlib.md5(data.numpy().tobytes()).hexdigest()}
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class TrainResult:
    """What every trainer (train_autoencoder, train_diffusion, train_gan) returns; the commands log and report it.

    steps: training steps done; final: the last step's losses (also when a rerun found the checkpoint
    complete); parameters: of the saved, sampling-time networks; precision: the Trainer's (no = float32, or
    bf16); metrics: the trainer's further numbers (the autoencoder's validation PSNR / SSIM, ...); preview:
    what a figure of the trained model is drawn from, where the trainer makes one (else None).
    """

    steps: int
    final: dict[str, float]
    parameters: int
    precision: str
    metrics: dict[str, Any] = field(default_factory=dict)
    preview: Any = None

    @property
    def final_loss(self) -> float:
        """The last step's total loss (nan when no step was logged)."""
        return self.final.get("loss", math.nan)


def remove_checkpoints(checkpoint_dir: Path) -> None:
    """Checkpoints are for resuming an interrupted run; once the model is saved they are not needed."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def frozen_call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) with detached parameters: gradients reach x (the decoder), never the module's weights."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, {**params, **dict(module.named_buffers())}, (x,))


class Conditioned(nn.Module):
    """disc(x, *condition) as a one-argument module, so `frozen_call` can run a conditional discriminator."""

    def __init__(self, disc: nn.Module, *condition: torch.Tensor):
        super().__init__()
        self.disc, self.condition = disc, condition

    def forward(self, x: torch.Tensor):
        return self.disc(x, *self.condition)


def prepare_checkpoints(folder: Path, stamp: str) -> None:
    """Keep checkpoints only when they come from the same settings and data; else start afresh.

    Resuming a checkpoint made with other params would silently train a model nobody asked for.
    """
    from ..io.atomic import write_json

    folder = Path(folder)
    marker = folder / FINGERPRINT
    if folder.exists() and (not marker.is_file() or json.loads(marker.read_text()).get("fingerprint") != stamp):
        shutil.rmtree(folder)
    if not marker.is_file():
        write_json(marker, {"fingerprint": stamp})


class TrainingDiverged(G2IError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


CPU_PRECISIONS = ("no", "bf16", "auto")


def cpu_precision(setting: str) -> str:
    """Accelerate's mixed_precision on CPU for a `cpu_mixed_precision` setting.

    `auto` trains in bf16 autocast only where the CPU multiplies bf16 in hardware (AMX or AVX-512 BF16):
    there oneDNN's bf16 convolutions made the demo autoencoder step faster (544 -> 270 ms on an Intel Xeon
    with AMX, 0.70 -> 0.48 s on an AMD EPYC Zen 4; docs/performance.md); elsewhere bf16 is emulated
    and loses, so float32. Results differ between the two paths, as they
    already do between CPU types.
    """
    from ..machine import has_native_bf16

    if setting == "auto":
        return "bf16" if has_native_bf16() else "no"
    return setting


@dataclass(frozen=True)
class TrainConfig:
    """One training loop's settings: a params.yaml `training.<model>` section, every field stated there."""

    max_steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    betas: tuple[float, float]     # AdamW's (0.9, 0.999); the GANs train with (0.5, 0.999)
    warmup_steps: int
    grad_clip: float
    ema_decay: float
    checkpoint_every: int
    keep_checkpoints: int
    log_every: int
    seed: int
    mixed_precision: str           # on GPU
    cpu_mixed_precision: str       # on CPU: no, bf16, or auto (bf16 where the CPU has hardware bf16: see cpu_precision)

    @classmethod
    def from_params(cls, section: Mapping[str, Any]) -> "TrainConfig":
        converted = {}
        if "betas" in section:       # else from_section reports it missing
            betas = section["betas"]
            if not (isinstance(betas, (list, tuple)) and len(betas) == 2
                    and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)):
                raise G2IError(f"params.yaml: training betas must be two numbers in [0, 1), got {betas!r}")
            converted["betas"] = (float(betas[0]), float(betas[1]))
        cfg = from_section(cls, section, "training", **converted)
        if cfg.max_steps <= 0 or cfg.batch_size <= 0 or cfg.checkpoint_every <= 0:
            raise G2IError("params.yaml: max_steps, batch_size and checkpoint_every must be positive")
        if cfg.cpu_mixed_precision not in CPU_PRECISIONS:
            raise G2IError(f"params.yaml: cpu_mixed_precision is '{cfg.cpu_mixed_precision}'; "
                           f"expected one of {list(CPU_PRECISIONS)}")
        return cfg


def make_optimizer(parameters, learning_rate: float, weight_decay: float,
                   betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW with the fused kernel where torch has one (CPU and CUDA): one kernel per parameter tensor
    instead of ~10 small ops each. Same update rule; on the study's G2I-l w/ Att (355 tensors) it cut the
    optimizer step from 16 to 4 ms of a ~300 ms CPU step (`benchmarks/train_benchmark.py`)."""
    parameters = list(parameters)
    fused = all(p.device.type in ("cpu", "cuda") for p in parameters)
    return torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay, betas=betas, fused=fused)


def step_generator(seed: int, step: int, process: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """The random stream of one step on one process (batch choice, noise, timesteps, condition dropout)."""
    entropy = np.random.SeedSequence([seed, step, process]).generate_state(2, dtype=np.uint64)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(entropy[0] % (2**63 - 1)))
    return generator


def batch_indices(n_items: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """A batch drawn without replacement (with replacement when the set is smaller than the batch)."""
    if n_items >= batch_size:
        return torch.randperm(n_items, generator=generator)[:batch_size]
    return torch.randint(n_items, (batch_size,), generator=generator)


class _StepCounter:
    """The step and the last step's metrics, saved and restored with the Accelerate state."""

    def __init__(self) -> None:
        self.step = 0
        self.metrics: dict[str, float] = {}

    def state_dict(self) -> dict:
        return {"step": self.step, "metrics": dict(self.metrics)}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.metrics = {k: float(v) for k, v in state.get("metrics", {}).items()}


LossFn = Callable[[nn.ModuleDict, dict, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


class Trainer:
    """Trains `modules` (jointly, one optimizer) to minimise `loss_fn(modules, batch, generator)`.

    `get_batch(indices)` returns a dict of tensors for dataset items `indices`; `log(metrics, step)` is
    called on the main process every `log_every` steps (MLflow, for instance); `on_checkpoint(trainer)`
    after every checkpoint, on the main process.
    """

    def __init__(self, modules: Mapping[str, nn.Module], loss_fn: LossFn, n_items: int,
                 get_batch: Callable[[torch.Tensor], dict], cfg: TrainConfig, out_dir: str | Path,
                 log: Callable[[dict, int], None] | None = None, progress: bool = True,
                 on_checkpoint: Callable[["Trainer"], None] | None = None):
        from accelerate import Accelerator
        from diffusers.optimization import get_cosine_schedule_with_warmup
        from diffusers.training_utils import EMAModel

        self.cfg, self.loss_fn, self.n_items, self.get_batch = cfg, loss_fn, n_items, get_batch
        self.out_dir, self.log, self.progress = Path(out_dir), log, progress
        self.on_checkpoint = on_checkpoint  # e.g. a sample grid from the EMA weights, main process only
        use_gpu = torch.cuda.is_available()
        self.precision = cfg.mixed_precision if use_gpu else cpu_precision(cfg.cpu_mixed_precision)
        # CPU autocast is ours (see autocast): Accelerate's precision is process-global and cannot change
        # between two Trainers of one process (the autoencoder's bf16, then a float32 denoiser).
        self.accelerator = Accelerator(mixed_precision=self.precision if use_gpu else "no", cpu=not use_gpu)
        model = nn.ModuleDict(dict(modules))
        optimizer = make_optimizer(model.parameters(), cfg.learning_rate, cfg.weight_decay, cfg.betas)
        schedule = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps, cfg.max_steps)
        self.model, self.optimizer, self.schedule = self.accelerator.prepare(model, optimizer, schedule)
        self.ema = EMAModel(self.unwrapped.parameters(), decay=cfg.ema_decay, foreach=True)  # one op for all tensors
        self.counter = _StepCounter()
        self.accelerator.register_for_checkpointing(self.ema, self.counter)

    def autocast(self):
        """The forward pass's precision: Accelerate's on GPU, bf16 autocast on CPU where configured."""
        if self.accelerator.device.type != "cpu":
            return self.accelerator.autocast()
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @property
    def unwrapped(self) -> nn.ModuleDict:
        return self.accelerator.unwrap_model(self.model)

    @property
    def step(self) -> int:
        return self.counter.step

    # ---- checkpoints --------------------------------------------------------------------------------

    def latest_checkpoint(self) -> Path | None:
        pointer = self.out_dir / CHECKPOINTS / LATEST
        if not pointer.is_file():
            return None
        path = self.out_dir / CHECKPOINTS / json.loads(pointer.read_text())["checkpoint"]
        return path if path.is_dir() else None

    def save_checkpoint(self) -> Path:
        root = self.out_dir / CHECKPOINTS
        final = root / f"step-{self.step:08d}"
        tmp = root / f".tmp-step-{self.step:08d}"
        if self.accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            pointer = root / f".{LATEST}.tmp"
            pointer.write_text(json.dumps({"checkpoint": final.name, "step": self.step}))
            os.replace(pointer, root / LATEST)  # the pointer moves only once the checkpoint is whole
            for old in sorted(root.glob("step-*"))[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return final

    def resume(self) -> bool:
        """Load the latest checkpoint if there is one; return whether training resumed."""
        latest = self.latest_checkpoint()
        if latest is None:
            return False
        self.accelerator.load_state(str(latest))
        return True

    # ---- the loop -----------------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        from tqdm import tqdm

        self.resume()
        cfg, acc = self.cfg, self.accelerator
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="training", unit="step",
                   disable=not (self.progress and acc.is_local_main_process))
        while self.step < cfg.max_steps:
            generator = step_generator(cfg.seed, self.step, acc.process_index)
            shared = step_generator(cfg.seed, self.step)  # same on every process: one global batch
            indices = batch_indices(self.n_items, cfg.batch_size * acc.num_processes, shared)
            indices = indices[acc.process_index :: acc.num_processes]
            batch = {k: v.to(acc.device) for k, v in self.get_batch(indices).items()}
            self.model.train()
            with self.autocast():
                loss, metrics = self.loss_fn(self.model, batch, generator)
            value = float(loss.detach())
            if not math.isfinite(value):
                latest = self.latest_checkpoint()
                raise TrainingDiverged(
                    f"loss is {value} at step {self.step}; stopped before the update. Last good checkpoint: "
                    f"{latest or 'none yet'}. Lower training.learning_rate or check the inputs.")
            acc.backward(loss)
            if cfg.grad_clip and acc.sync_gradients:
                acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.schedule.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.ema.step(self.unwrapped.parameters())
            self.counter.step += 1
            metrics = {"loss": value, **metrics, "lr": self.schedule.get_last_lr()[0]}
            self.counter.metrics = metrics
            bar.update()
            bar.set_postfix(loss=f"{value:.4f}")
            if self.log and acc.is_main_process and (self.step % cfg.log_every == 0 or self.step == cfg.max_steps):
                self.log(metrics, self.step)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                self.save_checkpoint()
                if self.on_checkpoint and acc.is_main_process:
                    self.on_checkpoint(self)
        bar.close()
        return dict(self.counter.metrics)  # also after a rerun that found training complete

    def ema_modules(self) -> nn.ModuleDict:
        """A copy of the modules holding the EMA weights (what sampling and evaluation use)."""
        import copy

        copied = copy.deepcopy(self.unwrapped)
        self.ema.copy_to(copied.parameters())
        return copied
