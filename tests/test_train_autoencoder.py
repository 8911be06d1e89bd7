"""The train_autoencoder step on a tiny cohort: saved model, metrics, MLflow run, clean GAN gradients."""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pytest
import torch
import yaml
from diffusers import AutoencoderKL

from g2i.cli import main
from g2i.config import load_params
from g2i.losses.autoencoder import AutoencoderLossWeights, discriminator_loss, generator_adversarial_loss
from g2i.models import autoencode, build_autoencoder, build_discriminator
from g2i.training.autoencoder import make_loss_fn
from g2i.training.trainer import cpu_precision, frozen_call, step_generator

from .conftest import ROOT, train_section, write_processed

SIZE = 16
TINY_MODEL = {
    "autoencoder": {"block_out_channels": [8, 16, 16], "latent_channels": 3, "layers_per_block": 1,
                    "norm_num_groups": 4, "mid_block_attention": False, "sample_size": SIZE},
    "discriminator": {"channels": 8, "n_layers": 2, "norm_num_groups": 4},
    "autoencoder_loss": {"l1": 1.0, "ssim": 0.25, "kl": 1.0e-6, "adversarial": 0.1, "adversarial_warmup_steps": 8},
}
TINY_TRAINING = train_section(max_steps=20, batch_size=4, learning_rate=1.0e-3, warmup_steps=2, checkpoint_every=10,
                              ema_decay=0.9, log_every=5, seed=0, cpu_mixed_precision="auto")


@pytest.fixture
def processed(tmp_path):
    """Processed tables for 12 subjects with smooth 16 x 16 'slices' in [-1, 1]."""
    rng = np.random.default_rng(0)
    n = 12
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    images = [np.tanh(2 * np.sin(2 * np.pi * (a * xx + b * yy) + c)) for a, b, c in rng.uniform(0.5, 1.5, (n, 3))]
    snps = {"rs1": rng.integers(0, 3, n).astype(float), "APOE4": 0}
    folder = tmp_path / "processed"
    write_processed(folder, np.stack(images), ["CN", "MCI", "AD"] * (n // 3),
                    ["train"] * 8 + ["val"] * 2 + ["test"] * 2, snps)
    return folder


@pytest.fixture
def params_file(tmp_path):
    params = load_params(ROOT / "params.yaml")
    params["profile"] = "demo"
    params["model"].update(TINY_MODEL)
    params["model"]["unet"]["sample_size"] = SIZE // 4                       # the tiny autoencoder's latents
    params["profiles"]["demo"].setdefault("slices", {})["size"] = [SIZE, SIZE]
    params["training"]["autoencoder"] = TINY_TRAINING
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def train(tmp_path, processed, params_file) -> dict:
    argv = ["train-autoencoder", "--params", str(params_file), "--out", str(tmp_path / "models"),
            "--reports", str(tmp_path / "reports"), "--slices-dir", str(processed / "slices"),
            "--genotypes", str(processed / "genotypes.csv"), "--split", str(processed / "split.csv")]
    assert main(argv) == 0
    return json.loads((tmp_path / "reports" / "metrics.json").read_text())


def test_tiny_run_saves_model_metrics_and_mlflow_run(tmp_path, processed, params_file, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    metrics = train(tmp_path, processed, params_file)

    vae = AutoencoderKL.from_pretrained(tmp_path / "models" / "autoencoder")
    factor = vae.config.scaling_factor
    assert math.isfinite(factor) and factor > 0 and factor == pytest.approx(metrics["scaling_factor"])
    assert math.isfinite(metrics["val_psnr"]) and math.isfinite(metrics["val_ssim"])
    assert metrics["steps"] == 20 and {"l1", "kl", "ssim", "adversarial", "discriminator"} <= set(metrics["final"])
    assert (tmp_path / "reports" / "reconstructions.png").stat().st_size > 0

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    client = mlflow.MlflowClient()
    [run] = mlflow.search_runs(experiment_names=["g2i"], output_format="list")
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [5, 10, 15, 20]
    assert run.data.params["training.autoencoder.max_steps"] == "20"
    assert run.data.tags["g2i.stage"] == "train_autoencoder"
    assert run.data.tags["precision"] == cpu_precision("auto")  # bf16 on a CPU with AMX or AVX-512 BF16
    assert run.data.metrics["val_psnr"] == pytest.approx(metrics["val_psnr"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "autoencoder")}
    assert {"autoencoder/reconstructions.png", "autoencoder/metrics.json", "autoencoder/model"} <= artifacts
    saved = {a.path for a in client.list_artifacts(run.info.run_id, "autoencoder/model")}
    assert "autoencoder/model/config.json" in saved

    # a rerun finds the finished checkpoint: no training, same model and the same final losses
    again = train(tmp_path, processed, params_file)
    assert again["final"] == metrics["final"] and again["val_psnr"] == pytest.approx(metrics["val_psnr"])


def test_each_network_gets_only_its_own_gradients():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"vae": build_autoencoder(TINY_MODEL), "disc": build_discriminator(TINY_MODEL)})
    weights = AutoencoderLossWeights.from_config(TINY_MODEL)
    x = torch.rand(4, 1, SIZE, SIZE) * 2 - 1
    loss_fn = make_loss_fn(weights, lambda: 100)  # past the warm-up: adversarial terms on

    # the generator's adversarial term alone: gradients reach the decoder, never the discriminator
    x_hat = model["vae"].decode(model["vae"].encode(x).latent_dist.mean).sample
    generator_adversarial_loss(frozen_call(model["disc"], x_hat)).backward()
    assert all(p.grad is None for p in model["disc"].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model["vae"].decoder.parameters())
    model.zero_grad(set_to_none=True)

    # the full loss gives the discriminator exactly the gradient of its own loss
    total, parts = loss_fn(model, {"x_0": x}, step_generator(0, 100))
    assert "adversarial" in parts and "discriminator" in parts
    total.backward()
    full = [p.grad.clone() for p in model["disc"].parameters()]
    model.zero_grad(set_to_none=True)
    x_hat, _ = autoencode(model["vae"], x, step_generator(0, 100))  # the same draw as inside loss_fn
    discriminator_loss(model["disc"](x), model["disc"](x_hat.detach())).backward()
    for mine, own in zip(full, (p.grad for p in model["disc"].parameters())):
        assert torch.allclose(mine, own, atol=1e-7)



def test_losses_stay_float32_when_the_networks_run_in_bf16():
    """Under bf16 autocast (the CPU path with hardware bf16) every loss is computed in float32: SSIM's variances in bf16
    would be mostly rounding error. The bf16 loss then stays close to the float32 one."""
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"vae": build_autoencoder(TINY_MODEL), "disc": build_discriminator(TINY_MODEL)})
    weights = AutoencoderLossWeights.from_config(TINY_MODEL)
    x = torch.rand(4, 1, SIZE, SIZE) * 2 - 1
    loss_fn = make_loss_fn(weights, lambda: 100)
    reference, parts32 = loss_fn(model, {"x_0": x}, step_generator(0, 100))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, parts = loss_fn(model, {"x_0": x}, step_generator(0, 100))
    assert total.dtype == torch.float32 and set(parts) == set(parts32)
    for name in ("l1", "ssim", "adversarial", "discriminator"):
        assert parts[name] == pytest.approx(parts32[name], rel=0.05), name
    total.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
