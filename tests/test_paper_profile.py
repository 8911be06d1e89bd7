"""The `paper` profile's networks train on a CPU for a step: shapes, losses and memory are
known to work before anyone rents a GPU (one step at batch 1 or 2 here; the profile's GPU batches are 32 and 64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from g2i.config import load_params, resolve
from g2i.losses.autoencoder import AutoencoderLossWeights
from g2i.models import build_autoencoder, build_discriminator, build_denoiser, build_scheduler
from g2i.models.genotype_encoder import build_genotype_encoder
from g2i.training.autoencoder import make_loss_fn
from g2i.training.diffusion import diffusion_loss
from g2i.training.trainer import Trainer

from .conftest import ROOT, load_benchmark, train_config

PAPER = resolve(load_params(ROOT / "params.yaml"), "paper")
N_SNPS = 52


# A paper-size step at batch 1 or 2 must fit in half of the 24 GiB a CI machine has, the other half for the second
# pytest worker.
MAX_STEP_GIB = 12.0


class PeakMemory:
    """This test's own peak resident memory in GiB (Linux: the VmHWM high-water mark, reset on entry by writing 5
    to /proc/self/clear_refs), not the peak of whatever ran earlier in the same pytest worker."""

    @staticmethod
    def _status_gib(field: str) -> float:
        status = Path("/proc/self/status").read_text().splitlines()
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 2**20

    def __enter__(self) -> "PeakMemory":
        Path("/proc/self/clear_refs").write_text("5")
        # A kernel that ignores the reset would silently report the worker's old peak: say so instead.
        hwm, rss = self._status_gib("VmHWM"), self._status_gib("VmRSS")
        assert hwm < rss + 0.05, f"/proc/self/clear_refs did not reset VmHWM ({hwm:.2f} GiB against {rss:.2f} resident)"
        self.gib = float("nan")
        return self

    def __exit__(self, *exc) -> None:
        self.gib = self._status_gib("VmHWM")


def touch_fresh_pages(n_bytes: int) -> None:
    """Make `n_bytes` of new pages resident, then give them back to the kernel. An anonymous mmap, not numpy:
    an allocator can serve numpy from memory the process already holds (CI saw a 256 MiB array leave VmHWM
    unchanged after 400 tests in the same worker), and then nothing new would be counted."""
    import mmap

    block = mmap.mmap(-1, n_bytes)
    view = np.frombuffer(block, dtype=np.uint8)
    view[:] = 1
    del view
    block.close()


def test_peak_memory_counts_only_what_runs_inside():
    """An earlier 512 MiB peak in this process is forgotten; a 256 MiB one inside the block is counted."""
    import resource

    touch_fresh_pages(2**29)
    session_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    with PeakMemory() as idle:
        pass
    with PeakMemory() as busy:
        touch_fresh_pages(2**28)
    assert idle.gib < session_peak - 0.4
    assert busy.gib > idle.gib + 0.2


def train_steps(modules, loss_fn, data: dict, tmp_path, steps: int = 1, batch_size: int = 2) -> dict:
    cfg = train_config(max_steps=steps, batch_size=batch_size, checkpoint_every=steps, warmup_steps=1, learning_rate=1e-4,
                       ema_decay=0.999)
    trainer = Trainer(modules, loss_fn, len(next(iter(data.values()))), lambda i: {k: v[i] for k, v in data.items()},
                      cfg, tmp_path, progress=False)
    return trainer.fit()


def test_paper_autoencoder_trains_on_256_slices_into_64_latents(tmp_path):
    size = int(PAPER["slices"]["size"][0])
    assert size == 256
    torch.manual_seed(0)
    vae, disc = build_autoencoder(PAPER["model"]), build_discriminator(PAPER["model"])
    x = torch.rand(2, 1, size, size) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x[:1]).latent_dist.mean
    assert z.shape == (1, PAPER["model"]["autoencoder"]["latent_channels"], 64, 64)
    weights = AutoencoderLossWeights.from_config(PAPER["model"])
    step = {"n": 10**6}  # past the warm-up: the adversarial terms are on too
    # one step at batch 1 (9.7 s alone on 2 cores, 17.1 s at batch 2): shapes, every loss term and memory at 256 x 256
    with PeakMemory() as peak:
        metrics = train_steps({"vae": vae, "disc": disc}, make_loss_fn(weights, lambda: step["n"]), {"x_0": x},
                              tmp_path, batch_size=1)
    assert np.isfinite(metrics["loss"]) and "adversarial" in metrics
    assert peak.gib < MAX_STEP_GIB, f"a 256 x 256 autoencoder step at batch 1 peaked at {peak.gib:.1f} GiB"


def test_paper_denoiser_trains_on_64_latents_with_52_snp_tokens(tmp_path):
    model = PAPER["model"]
    torch.manual_seed(0)
    denoiser = build_denoiser("g2i_l_att", model)
    encoder = build_genotype_encoder(model, N_SNPS)
    assert denoiser.config.block_out_channels == [128, 256, 512] or list(denoiser.config.block_out_channels) == [128, 256, 512]
    c = int(model["autoencoder"]["latent_channels"])
    data = {"z_0": torch.randn(4, c, 64, 64), "label": torch.tensor([0, 1, 2, 0]),
            "genotype": torch.randint(0, 3, (4, N_SNPS))}
    loss_fn = diffusion_loss((True, True), build_scheduler(model), 0.1)
    with PeakMemory() as peak:
        metrics = train_steps({"denoiser": denoiser, "genotype_encoder": encoder}, loss_fn, data, tmp_path)
    assert np.isfinite(metrics["loss"]) and 0.1 < metrics["loss"] < 10  # an untrained eps-prediction: ~1
    assert peak.gib < MAX_STEP_GIB, f"a 64 x 64 denoiser step at batch 2 peaked at {peak.gib:.1f} GiB"
    tokens = encoder(data["genotype"][:2])
    assert tokens.shape == (2, N_SNPS, model["genotype_encoder"]["embed_dim"])


def test_paper_e2e_extrapolates_each_set_size_stage_along_its_own_axis():
    """benchmarks/paper_e2e.py's memory line: through two measured points, per stage kind in its own unit (generated
    images for sample / evaluate / classify, training subjects for the probe); fixed stages are not extrapolated."""
    paper_e2e = load_benchmark("paper_e2e")
    first = {"evaluate": {"peak_gib": 1.0}, "probe": {"peak_gib": 2.0}, "train@ldm": {"peak_gib": 3.0},
             "sample@g2i": {"peak_gib": 1.0}}
    second = {"evaluate": {"peak_gib": 2.0}, "probe": {"peak_gib": 2.4}, "train@ldm": {"peak_gib": 3.0},
              "sample@g2i": {"peak_gib": 0.9}}
    sizes = {kind: (100, 200, 1100) for kind in paper_e2e.SCALED} | {"probe": (2, 6, 64)}
    out = paper_e2e.extrapolate(first, second, sizes)
    assert set(out) == {"evaluate", "probe", "sample@g2i"}
    assert out["evaluate"]["peak_gib_full"] == 11.0 and out["evaluate"]["gib_per_1000"] == 10.0
    assert out["probe"]["peak_gib_full"] == pytest.approx(2.4 + 0.1 * 58) and out["probe"]["full"] == 64
    assert out["sample@g2i"]["peak_gib_full"] == 1.0   # memory that does not grow: the measured maximum


def test_paper_e2e_report_renders_from_a_run_record(tmp_path):
    """--render: the Markdown and JSON come from a run's measurements; a GAN sample stage is extrapolated to its
    16-slice batch at 256 x 256 (below the measured calls), a diffusion one to sampling.batch_size."""
    import json

    paper_e2e = load_benchmark("paper_e2e")
    record = {"machine": "a CPU", "subjects": 36, "slice_size": 256, "n_test": 9, "wall_seconds": 600.0,
              "stages": {"synthesize": {"wall_s": 300.0, "peak_gib": 0.9}, "sample@cgan": {"wall_s": 9.0, "peak_gib": 1.1},
                         "sample@ldm": {"wall_s": 50.0, "peak_gib": 2.3}},
              "second_point": {"sample@cgan": {"wall_s": 12.0, "peak_gib": 2.6}, "sample@ldm": {"wall_s": 90.0, "peak_gib": 2.3}},
              "served": {"status": 200, "height": 256, "width": 256, "seconds": 3.0, "register_and_serve_s": 40.0}}
    (tmp_path / "run.json").write_text(json.dumps(record))
    paper_e2e.write_report(json.loads((tmp_path / "run.json").read_text()), tmp_path / "out")
    result = json.loads((tmp_path / "out" / "paper_e2e.json").read_text())
    gan, ldm = result["extrapolated"]["sample@cgan"], result["extrapolated"]["sample@ldm"]
    assert gan["full"] == 16 and gan["points"] == [18, 54] and gan["peak_gib_full"] < 1.1
    assert ldm["full"] == PAPER["sampling"]["batch_size"] and ldm["peak_gib_full"] == 2.3
    text = (tmp_path / "out" / "paper_e2e.md").read_text()
    assert "| synthesize | 300.0 | 0.9 |" in text and "| sample@cgan | 18, 54 -> 16 |" in text
