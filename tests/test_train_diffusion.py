"""encode_latents + train on tiny data: latents are means, every variant trains, saves, loads and samples."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from g2i.data.dataset import SliceGenotypeDataset
from g2i.errors import G2IError
from g2i.models import VARIANTS, build_autoencoder, load_autoencoder
from g2i.generation.diffusion import load_variant
from g2i.generation.preview import sample_grid
from g2i.training.diffusion import diffusion_loss, train_diffusion
from g2i.training.latents import encode_latents
from g2i.models import build_scheduler

from .conftest import train_section, write_processed

TINY_MODEL = {
    "autoencoder": {"block_out_channels": [8, 8, 8], "latent_channels": 2, "layers_per_block": 1, "norm_num_groups": 4,
                    "mid_block_attention": False, "sample_size": 16},
    "genotype_encoder": {"embed_dim": 16, "num_layers": 1, "num_heads": 2, "ff_dim": 16, "dropout": 0.0,
                         "snp_value_embedding": "shared"},
    "unet": {"block_out_channels": [16, 16, 32], "layers_per_block": 1, "attention_levels": [False, True, True],
             "attention_head_dim": 8, "transformer_layers": 1, "norm_num_groups": 4, "sample_size": 4},
    "scheduler": {"num_train_timesteps": 100, "beta_schedule": "scaled_linear", "beta_start": 0.0015,
                  "beta_end": 0.0195},
}
SAMPLING = {"sampler": "ddpm", "num_inference_steps": 3, "eta": 0.0, "guidance_scale": 1.0, "seed": 0}
TRAIN = train_section(max_steps=6, batch_size=4, learning_rate=1e-3, warmup_steps=1, checkpoint_every=3, seed=0,
                      ema_decay=0.999)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion")
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (12, 16, 16))
    snps = {"rs1": rng.integers(0, 3, 12), "rs2": rng.integers(0, 3, 12), "APOE4": rng.integers(0, 3, 12)}
    paths = write_processed(root, images, ["CN", "MCI", "AD"] * 4, ["train"] * 9 + ["val"] * 3, snps)
    vae = build_autoencoder(TINY_MODEL)
    vae.register_to_config(scaling_factor=0.5)
    vae.save_pretrained(str(root / "autoencoder"))
    summary = encode_latents(root / "autoencoder", root / "slices/slices.npy", root / "latents", root / "latents.json")
    return root, paths, summary


def test_latents_are_the_encoder_means(tiny):
    root, _, summary = tiny
    latents = np.load(root / "latents/latents.npy")
    assert latents.shape == (12, 2, 4, 4) and summary["shape"] == [2, 4, 4] and summary["scaling_factor"] == 0.5
    vae = load_autoencoder(root / "autoencoder")
    x = torch.from_numpy(np.load(root / "slices/slices.npy")[:2].astype(np.float32))[:, None]
    with torch.no_grad():
        np.testing.assert_allclose(latents[:2], vae.encode(x).latent_dist.mean.numpy(), atol=1e-5)


def params_for(steps: int = 6, **training) -> dict:
    return {"model": TINY_MODEL, "training": {"diffusion": {**TRAIN, "max_steps": steps, **training},
                                              "condition_dropout": 0.25, "genotype_dropout": 0.0}}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_trains_saves_loads_and_samples(tiny, tmp_path, variant):
    root, paths, _ = tiny
    logged, grids = [], []
    vae = load_autoencoder(root / "autoencoder")
    result = train_diffusion(params_for(), paths, tmp_path / variant, tmp_path / "ckpt", lambda m, s: logged.append(s),
                             variant=variant, latents=root / "latents/latents.npy", vae=vae,
                             on_checkpoint=lambda pipe, step: grids.append((step, pipe.config.variant)))
    assert result.steps == 6 and np.isfinite(result.final_loss)
    assert grids == [(3, variant), (6, variant)]  # a sample grid can be drawn at every checkpoint
    pipe = load_variant(tmp_path / variant)
    assert (pipe.genotype_encoder is None) == (variant == "ldm") and pipe.unet.config.variant == variant
    assert pipe.scheduler.config.clip_sample is False and pipe.config.snps == ["rs1", "rs2", "APOE4"]
    sampling = {**SAMPLING, "sampler": "ddim" if variant != "ldm" else "ddpm"}
    images = sample_grid(pipe, SliceGenotypeDataset(paths, "val"), tmp_path / "grid.png", sampling)
    assert images.shape == (3, 16, 16) and np.abs(images).max() <= 1 and (tmp_path / "grid.png").is_file()


def _weights(model_dir):
    pipe = load_variant(model_dir)
    return {k: v.clone() for k, v in pipe.unet.state_dict().items()}


def test_same_params_train_the_same_model(tiny, tmp_path):
    """Initial weights are seeded too: two runs give bit-identical models (dvc.lock stays clean)."""
    root, paths, _ = tiny
    vae = load_autoencoder(root / "autoencoder")
    for name in ("a", "b"):
        train_diffusion(params_for(), paths, tmp_path / name, tmp_path / f"ckpt-{name}", variant="g2i_l_att",
                        latents=root / "latents/latents.npy", vae=vae, progress=False)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_from_other_params_are_not_resumed(tiny, tmp_path):
    root, paths, _ = tiny
    vae = load_autoencoder(root / "autoencoder")
    latents = root / "latents/latents.npy"
    first = train_diffusion(params_for(6), paths, tmp_path / "a", tmp_path / "ckpt", variant="g2i", latents=latents,
                            vae=vae, progress=False)
    # same settings: the complete checkpoint is found, nothing is trained, the final loss is remembered
    again = train_diffusion(params_for(6), paths, tmp_path / "a2", tmp_path / "ckpt", variant="g2i", latents=latents,
                            vae=vae, progress=False)
    assert again == first
    assert all(torch.equal(x, y) for x, y in zip(_weights(tmp_path / "a").values(), _weights(tmp_path / "a2").values()))
    # another learning rate: the old checkpoint (already at the last step) must not be taken as the result
    changed = params_for(6, learning_rate=5e-3)
    train_diffusion(changed, paths, tmp_path / "b", tmp_path / "ckpt", variant="g2i", latents=latents, vae=vae,
                    progress=False)
    train_diffusion(changed, paths, tmp_path / "fresh", tmp_path / "ckpt-fresh", variant="g2i", latents=latents, vae=vae,
                    progress=False)
    a, b, fresh = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "fresh")
    assert all(torch.equal(b[k], fresh[k]) for k in b) and not all(torch.equal(a[k], b[k]) for k in a)


def test_condition_dropout_uses_the_null_condition(tiny):
    _, paths, _ = tiny
    from g2i.models import build_denoiser, build_genotype_encoder

    calls = {}

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, genotypes, drop=None):
            calls["drop"] = drop
            return self.inner(genotypes, drop=drop)

    denoiser = build_denoiser("g2i_l_att", TINY_MODEL)
    modules = {"denoiser": denoiser, "genotype_encoder": Spy(build_genotype_encoder(TINY_MODEL, 3))}
    loss_fn = diffusion_loss((True, True), build_scheduler(TINY_MODEL), condition_dropout=0.999)
    batch = {"z_0": torch.randn(4, 2, 4, 4), "label": torch.tensor([0, 1, 2, 0]), "genotype": torch.zeros(4, 3, dtype=torch.long)}
    loss, _ = loss_fn(modules, batch, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and calls["drop"].all()


def test_genotype_dropout_adds_a_diagnosis_only_share(tiny):
    """u < p_c drops both conditions, p_c <= u < p_c + p_g only the genotype; p_g = 0 draws the same stream."""
    from g2i.models import build_denoiser, build_genotype_encoder

    seen = {}

    class SpyEncoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, genotypes, drop=None):
            seen["genotype_dropped"] = drop.clone()
            return self.inner(genotypes, drop=drop)

    class SpyDenoiser(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, z_t, t, onehot, tokens):
            seen["label_dropped"] = onehot.sum(1) == 0
            return self.inner(z_t, t, onehot, tokens)

    modules = {"denoiser": SpyDenoiser(build_denoiser("g2i_l_att", TINY_MODEL)),
               "genotype_encoder": SpyEncoder(build_genotype_encoder(TINY_MODEL, 3))}
    n = 4000
    batch = {"z_0": torch.randn(n, 2, 4, 4), "label": torch.randint(0, 3, (n,)), "genotype": torch.zeros(n, 3, dtype=torch.long)}
    scheduler = build_scheduler(TINY_MODEL)
    diffusion_loss((True, True), scheduler, 0.2, 0.3)(modules, batch, torch.Generator().manual_seed(0))
    label, genotype = seen["label_dropped"], seen["genotype_dropped"]
    assert abs(label.float().mean() - 0.2) < 0.03 and abs(genotype.float().mean() - 0.5) < 0.03
    assert genotype[label].all()                       # a dropped diagnosis always comes with the null genotype
    plain = diffusion_loss((True, True), scheduler, 0.2, 0.0)(modules, batch, torch.Generator().manual_seed(0))[0]
    before = seen["genotype_dropped"]
    assert torch.equal(before, seen["label_dropped"])  # p_g = 0: the joint null only, as before the knob existed
    again = diffusion_loss((True, True), scheduler, 0.2, 0.0)(modules, batch, torch.Generator().manual_seed(0))[0]
    assert torch.equal(plain, again)


def test_dropout_shares_are_checked():
    from g2i.training.diffusion import condition_dropouts

    assert condition_dropouts({"condition_dropout": 0.1, "genotype_dropout": 0.1}) == (0.1, 0.1)
    with pytest.raises(G2IError, match="genotype_dropout is missing"):
        condition_dropouts({"condition_dropout": 0.1})
    with pytest.raises(G2IError, match="below 1"):
        condition_dropouts({"condition_dropout": 0.6, "genotype_dropout": 0.5})
    with pytest.raises(G2IError, match=r"within \[0, 1\)"):
        condition_dropouts({"condition_dropout": -0.1, "genotype_dropout": 0.1})


def test_unknown_variant_lists_the_valid_ones(tiny, tmp_path):
    root, paths, _ = tiny
    with pytest.raises(G2IError, match="g2i_l_att"):
        train_diffusion({"model": TINY_MODEL, "training": {"diffusion": TRAIN}}, paths, tmp_path / "x", tmp_path / "c",
                        variant="g2i_xl", latents=root / "latents/latents.npy",
                        vae=load_autoencoder(root / "autoencoder"))


def test_train_command_logs_params_losses_grids_and_the_model_to_mlflow(tiny, tmp_path, monkeypatch, capsys):
    """`g2i train` as DVC and MLproject run it, in a tiny project folder: what lands in MLflow and reports/."""
    import shutil

    import mlflow
    import yaml

    from g2i.cli import main
    from .conftest import ROOT

    root, _, _ = tiny
    project = tmp_path / "project"
    processed = project / "data/processed"
    (processed / "latents").mkdir(parents=True)
    shutil.copytree(root / "slices", processed / "slices")
    for name in ("genotypes.csv", "split.csv"):
        shutil.copy(root / name, processed / name)
    shutil.copy(root / "latents/latents.npy", processed / "latents/latents.npy")
    shutil.copytree(root / "autoencoder", project / "models/autoencoder")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(TINY_MODEL)
    params["profiles"]["demo"].setdefault("slices", {})["size"] = [16, 16]   # the tiny slices, as the models say
    params["training"]["diffusion"] = dict(TRAIN)
    params["sampling"].update({"num_inference_steps": 2})
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)

    assert main(["train", "--variant", "g2i_l_att"]) == 0
    assert (project / "models/g2i_l_att/model_index.json").is_file()
    assert not (project / "models/.checkpoints/g2i_l_att").exists()  # removed once the model is saved
    assert (project / "reports/train/g2i_l_att_samples.png").stat().st_size > 0

    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")  # the default store: the project root
    client = mlflow.MlflowClient()
    [run] = mlflow.search_runs(experiment_names=["g2i"], output_format="list")
    assert run.data.tags["g2i.variant"] == "g2i_l_att" and run.data.params["training.diffusion.max_steps"] == "6"
    assert run.data.params["sampling.sampler"] == "ddpm"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [6]  # log_every 10 > 6
    samples = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert {"samples/step-00000003.png", "samples/step-00000006.png", "samples/g2i_l_att_samples.png"} <= samples
    assert "model/model_index.json" in {a.path for a in client.list_artifacts(run.info.run_id, "model")}

    capsys.readouterr()
    assert main(["train", "--variant", "g2i_xl"]) == 2  # a clear error, listing every valid variant
    err = capsys.readouterr().err
    assert "g2i_l_att" in err and "attngan" in err
