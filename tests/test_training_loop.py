"""The training loop: exact resume (also after kill -9), NaN handling, EMA, 2-process Accelerate."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from g2i.training.trainer import TrainConfig, TrainingDiverged, cpu_precision
from g2i.errors import G2IError

from . import toy_train
from .conftest import train_config, train_section

SCRIPT = Path(__file__).parent / "toy_train.py"
BIN = Path(sys.executable).parent


def final_state(trainer):
    return {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}, trainer.ema_modules().state_dict()


def assert_same(a, b):
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = toy_train.build(tmp_path / "a", 20)
    straight.fit()
    crashed = toy_train.build(tmp_path / "b", 20, fail_at=13)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit()
    assert json.loads((tmp_path / "b/checkpoints/latest.json").read_text())["step"] == 10
    resumed = toy_train.build(tmp_path / "b", 20)
    resumed.fit()
    assert resumed.step == 20
    (w_a, ema_a), (w_b, ema_b) = final_state(straight), final_state(resumed)
    assert_same(w_a, w_b)
    assert_same(ema_a, ema_b)
    assert not torch.equal(w_a["net.weight"], ema_a["net.weight"])  # EMA weights are their own thing
    assert len(list((tmp_path / "b/checkpoints").glob("step-*"))) == 2  # keep_checkpoints


def test_nan_loss_stops_before_the_update_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = toy_train.build(tmp_path, 20, nan_at=7)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 7.*step-00000005"):
        trainer.fit()
    assert json.loads((tmp_path / "checkpoints/latest.json").read_text())["step"] == 5


def test_kill_9_mid_training_then_rerun_finishes_with_the_same_result(tmp_path):
    reference = tmp_path / "reference"
    assert toy_train.main([str(reference), "30"]) == 0      # uninterrupted, in this process (same code, same seeds)
    run_dir = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), "30", "--sleep", "0.1"])
    deadline = time.time() + 60
    pointer = run_dir / "checkpoints/latest.json"
    while time.time() < deadline and not (pointer.is_file() and json.loads(pointer.read_text())["step"] >= 10):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (run_dir / "final.pt").exists()
    rerun = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), "30"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    a, b = torch.load(reference / "final.pt"), torch.load(run_dir / "final.pt")
    assert a["step"] == b["step"] == 30
    assert_same(a["weights"], b["weights"])
    assert_same(a["ema"], b["ema"])


def test_two_process_accelerate_run(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(BIN / "accelerate"), "launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
                             "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT), str(tmp_path), "12"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    state = torch.load(tmp_path / "final.pt")
    assert state["step"] == 12 and torch.isfinite(state["weights"]["net.weight"]).all()


def test_config_rejects_unknown_and_bad_keys():
    with pytest.raises(G2IError, match="unknown training key"):
        TrainConfig.from_params(train_section(max_steps=5, batch_size=2, lerning_rate=1))
    with pytest.raises(G2IError, match="positive"):
        TrainConfig.from_params(train_section(max_steps=0, batch_size=2))
    with pytest.raises(G2IError, match="cpu_mixed_precision"):
        TrainConfig.from_params(train_section(max_steps=5, batch_size=2, cpu_mixed_precision="fp16"))


def test_cpu_precision_auto_follows_the_cpu(monkeypatch):
    import g2i.machine

    assert cpu_precision("no") == "no" and cpu_precision("bf16") == "bf16"
    monkeypatch.setattr(g2i.machine, "has_native_bf16", lambda: True)
    assert cpu_precision("auto") == "bf16"
    monkeypatch.setattr(g2i.machine, "has_native_bf16", lambda: False)
    assert cpu_precision("auto") == "no"


def test_native_bf16_means_amx_or_avx512_bf16(monkeypatch):
    """Zen 4's AVX-512 BF16 counts like Intel's AMX (the autoencoder step 1.4x faster there); AVX-512
    without BF16 (Zen 3 has none, Skylake has no BF16) does not."""
    import g2i.machine

    def cpu_with(*flags):
        monkeypatch.setattr(torch.cpu, "get_capabilities",
                            lambda: {"avx512_f": True, "avx512_bf16": False, "amx_bf16": False,
                                     **{f: True for f in flags}})

    cpu_with("avx512_bf16")
    assert g2i.machine.has_native_bf16()
    cpu_with("amx_bf16")
    assert g2i.machine.has_native_bf16()
    cpu_with()
    assert not g2i.machine.has_native_bf16()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU autocast path")
def test_cpu_bf16_trainer_runs_the_networks_in_bf16_and_keeps_float32_weights(tmp_path):
    from g2i.training.trainer import Trainer

    seen = []
    net = torch.nn.Linear(4, 1)

    def loss_fn(model, batch, generator):
        y = model["net"](batch["x"])
        seen.append(y.dtype)
        return ((y.float() - batch["y"]) ** 2).mean(), {}

    x, y = torch.randn(32, 4), torch.randn(32, 1)
    cfg = train_config(max_steps=3, batch_size=8, checkpoint_every=3, cpu_mixed_precision="bf16",
                       learning_rate=1e-4, warmup_steps=0, ema_decay=0.999)
    trainer = Trainer({"net": net}, loss_fn, 32, lambda i: {"x": x[i], "y": y[i]}, cfg, tmp_path, progress=False)
    trainer.fit()
    assert trainer.precision == "bf16" and seen == [torch.bfloat16] * 3
    assert all(p.dtype == torch.float32 for p in trainer.unwrapped.parameters())


def test_the_three_trainers_have_one_shape():
    """train_autoencoder, train_diffusion and train_gan: (params, paths, out_dir, checkpoint_dir, log) first, then
    their own keywords, max_steps and progress keyword-only; each returns a TrainResult."""
    import inspect
    import math

    from g2i.training.autoencoder import train_autoencoder
    from g2i.training.diffusion import train_diffusion
    from g2i.training.gan import train_gan
    from g2i.training.trainer import TrainResult

    leading = ["params", "paths", "out_dir", "checkpoint_dir", "log"]
    for trainer in (train_autoencoder, train_diffusion, train_gan):
        parameters = inspect.signature(trainer).parameters
        positional = [name for name, p in parameters.items() if p.kind == p.POSITIONAL_OR_KEYWORD]
        assert positional == leading, trainer.__name__
        assert parameters["log"].default is None, trainer.__name__
        for name in ("max_steps", "progress"):
            assert parameters[name].kind == inspect.Parameter.KEYWORD_ONLY, (trainer.__name__, name)
        assert inspect.signature(trainer).return_annotation in (TrainResult, "TrainResult"), trainer.__name__

    result = TrainResult(steps=3, final={"loss": 0.25, "mse": 0.2}, parameters=10, precision="no")
    assert result.final_loss == 0.25 and result.metrics == {} and result.preview is None
    assert math.isnan(TrainResult(steps=0, final={}, parameters=0, precision="no").final_loss)


def test_the_trainers_fused_adamw_makes_the_per_tensor_loops_update():
    """make_optimizer's fused kernel (CPU) is a speed-up only: the same AdamW steps as torch's per-tensor loop."""
    from g2i.training.trainer import make_optimizer

    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GroupNorm(4, 16), torch.nn.Linear(16, 2))
    fused_model, initial = copy.deepcopy(reference), copy.deepcopy(reference)
    loop = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=0.01, betas=(0.5, 0.999), foreach=False)
    fused = make_optimizer(fused_model.parameters(), 1e-2, 0.01, (0.5, 0.999))
    assert fused.defaults["fused"] is True
    x = torch.randn(32, 8)
    for _ in range(5):
        for model, optimizer in ((reference, loop), (fused_model, fused)):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
    for a, b, start in zip(reference.parameters(), fused_model.parameters(), initial.parameters()):
        assert (a - start).abs().max() > 1e-3          # every tensor moved: the comparison is not of untouched weights
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
