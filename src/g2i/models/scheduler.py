"""Noise schedules: DDPM for training (and ancestral sampling), DDIM for fast sampling.

Both with clip_sample=False: diffusers clips predicted x_0 to [-1, 1] by default, which is right for
pixels but wrong for scaled latents, whose values run past 1.
"""

from __future__ import annotations

from typing import Any, Mapping

from diffusers import DDIMScheduler, DDPMScheduler

from ..errors import G2IError
from .settings import require, section

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def build_scheduler(cfg: Mapping[str, Any]) -> DDPMScheduler:
    """DDPMScheduler from `model.scheduler` (num_train_timesteps, beta_schedule, beta_start, beta_end)."""
    sched = section(cfg, "scheduler")
    schedule = require(sched, "beta_schedule", "scheduler")
    if schedule not in BETA_SCHEDULES:
        raise G2IError(f"params.yaml: model.scheduler.beta_schedule '{schedule}'; valid: {', '.join(BETA_SCHEDULES)}")
    return DDPMScheduler(num_train_timesteps=int(require(sched, "num_train_timesteps", "scheduler")),
                         beta_schedule=schedule, beta_start=float(require(sched, "beta_start", "scheduler")),
                         beta_end=float(require(sched, "beta_end", "scheduler")),
                         prediction_type="epsilon", clip_sample=False)


def build_ddim_scheduler(cfg: Mapping[str, Any]) -> DDIMScheduler:
    """DDIM with the same betas as training; call set_timesteps(model.scheduler.num_inference_steps)."""
    return DDIMScheduler.from_config(build_scheduler(cfg).config, clip_sample=False)
