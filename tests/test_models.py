"""The model family (g2i.models) on tiny configs: shapes, what each variant listens to, save/load, losses."""

from __future__ import annotations

import copy

import pytest
import torch
from diffusers.models.attention_processor import Attention

from g2i.errors import G2IError
from g2i.losses.autoencoder import AutoencoderLossWeights, autoencoder_loss, discriminator_loss
from g2i.models import (MISSING, VARIANTS, GenotypeEncoder, G2IDenoiser, autoencode, build_autoencoder,
                        build_ddim_scheduler, build_denoiser, build_discriminator, build_genotype_encoder,
                        build_scheduler, diagnosis_onehot, encode_mean, genotype_codes, latent_scaling_factor,
                        set_scaling_factor, ssim)

F_G, F_E, B = 7, 16, 2
TINY = {
    "autoencoder": {"block_out_channels": [8, 16, 16], "latent_channels": 3, "layers_per_block": 1,
                    "norm_num_groups": 8, "mid_block_attention": True, "sample_size": 16},
    "discriminator": {"channels": 8, "n_layers": 2, "norm_num_groups": 4},
    "autoencoder_loss": {"l1": 1.0, "ssim": 0.5, "kl": 1.0e-6, "adversarial": 0.01, "adversarial_warmup_steps": 5},
    "genotype_encoder": {"embed_dim": F_E, "num_layers": 1, "num_heads": 2, "ff_dim": None, "dropout": 0.0,
                         "snp_value_embedding": "shared"},
    "unet": {"block_out_channels": [16, 32], "layers_per_block": 1, "attention_levels": [False, True],
             "attention_head_dim": 8, "transformer_layers": 1, "norm_num_groups": 8, "sample_size": 4},
    "scheduler": {"num_train_timesteps": 100, "beta_schedule": "scaled_linear", "beta_start": 0.0015, "beta_end": 0.0195},
}
# The widths proposed for the paper profile (params.yaml `model:` under profiles.paper).
PAPER = {
    "autoencoder": {"block_out_channels": [128, 128, 256], "latent_channels": 3, "layers_per_block": 2,
                    "norm_num_groups": 32, "mid_block_attention": False, "sample_size": 256},
    "genotype_encoder": {"embed_dim": 256, "num_layers": 4, "num_heads": 8, "ff_dim": 1024, "dropout": 0.1,
                         "snp_value_embedding": "shared"},
    "unet": {"block_out_channels": [128, 256, 512], "layers_per_block": 2, "attention_levels": [False, True, True],
             "attention_head_dim": 64, "transformer_layers": 1, "norm_num_groups": 32, "sample_size": 64},
}


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z_t = torch.randn(B, 3, 4, 4, generator=g)
    t = torch.tensor([3, 60])
    genotypes = torch.randint(0, 3, (B, F_G), generator=g)
    return z_t, t, genotypes


@pytest.fixture(scope="module")
def encoder() -> GenotypeEncoder:
    torch.manual_seed(0)
    return build_genotype_encoder(TINY, F_G).eval()


def denoiser(variant: str) -> G2IDenoiser:
    torch.manual_seed(1)
    return build_denoiser(variant, TINY).eval()


def attention_modules(model: torch.nn.Module) -> list[str]:
    """Attention by type, and by class name in case diffusers adds attention classes of its own."""
    return [name for name, m in model.named_modules() if isinstance(m, (torch.nn.MultiheadAttention, Attention))
            or any(word in type(m).__name__ for word in ("Attn", "Attention", "Transformer"))]


@pytest.mark.parametrize("variant", VARIANTS)
def test_denoiser_shapes(variant, encoder):
    z_t, t, genotypes = inputs()
    model = denoiser(variant)
    with torch.no_grad():
        eps = model(z_t, t, diagnosis_onehot(torch.tensor([0, 2])), encoder(genotypes))
    assert eps.shape == z_t.shape
    expected_in = 3 + (3 if variant != "g2i" else 0)  # latent channels + label maps
    assert model.unet.config.in_channels == expected_in


def _eps(model, encoder, label, genotypes, seed=0):
    z_t, t, _ = inputs(seed)
    with torch.no_grad():
        return model(z_t, t, diagnosis_onehot(torch.tensor(label)), encoder(genotypes))


def test_g2i_ignores_diagnosis_and_ldm_ignores_genotype(encoder):
    _, _, genotypes = inputs()
    other = (genotypes + 1) % 3
    g2i = denoiser("g2i")
    assert torch.equal(_eps(g2i, encoder, [0, 0], genotypes), _eps(g2i, encoder, [2, 1], genotypes))
    assert not torch.allclose(_eps(g2i, encoder, [0, 0], genotypes), _eps(g2i, encoder, [0, 0], other))
    ldm = denoiser("ldm")
    assert torch.equal(_eps(ldm, encoder, [0, 1], genotypes), _eps(ldm, encoder, [0, 1], other))
    assert not torch.allclose(_eps(ldm, encoder, [0, 1], genotypes), _eps(ldm, encoder, [2, 2], genotypes))
    z_t, t, _ = inputs()
    with torch.no_grad():  # ldm needs no tokens at all
        assert torch.equal(ldm(z_t, t, diagnosis_onehot(torch.tensor([0, 1]))), _eps(ldm, encoder, [0, 1], genotypes))


def test_noatt_has_no_attention_but_listens_to_genotype(encoder):
    _, _, genotypes = inputs()
    model = denoiser("g2i_l_noatt")
    assert attention_modules(model) == []
    assert not torch.allclose(_eps(model, encoder, [1, 1], genotypes), _eps(model, encoder, [1, 1], (genotypes + 1) % 3))
    assert not torch.allclose(_eps(model, encoder, [1, 1], genotypes), _eps(model, encoder, [0, 2], genotypes))
    assert attention_modules(denoiser("g2i_l_att"))  # the contrast: the paper's model has cross-attention


def test_g2i_l_att_listens_to_both(encoder):
    _, _, genotypes = inputs()
    model = denoiser("g2i_l_att")
    base = _eps(model, encoder, [1, 1], genotypes)
    assert not torch.allclose(base, _eps(model, encoder, [1, 1], (genotypes + 1) % 3))
    assert not torch.allclose(base, _eps(model, encoder, [0, 2], genotypes))


def test_unknown_variant_lists_valid_ones():
    with pytest.raises(G2IError, match="ldm, g2i, g2i_l_noatt, g2i_l_att"):
        build_denoiser("g2i_plus", TINY)


def test_missing_condition_is_a_clear_error(encoder):
    z_t, t, _ = inputs()
    with pytest.raises(G2IError, match="genotype tokens"):
        denoiser("g2i")(z_t, t)
    with pytest.raises(G2IError, match="diagnosis_onehot"):
        denoiser("ldm")(z_t, t)


def test_genotype_encoder_tokens_null_and_pooling(encoder):
    _, _, genotypes = inputs()
    tokens = encoder(genotypes)
    assert tokens.shape == (B, F_G, F_E)
    assert encoder.pooled(tokens).shape == (B, F_E)
    dropped = encoder(genotypes, drop=torch.tensor([True, False]))
    assert torch.equal(dropped[0], encoder.null_tokens)
    assert torch.allclose(dropped[1], tokens[1])
    assert torch.equal(encoder.null(3)[2], encoder.null_tokens)


def test_genotype_codes_map_missing():
    codes = genotype_codes([[0, 1, 2, float("nan"), -1, 3]])
    assert codes.tolist() == [[0, 1, 2, MISSING, MISSING, MISSING]]
    assert codes.dtype == torch.long
    assert genotype_codes(torch.tensor([[-1, 2]])).tolist() == [[MISSING, 2]]  # long input too
    with pytest.raises(G2IError, match="expected 0, 1, 2"):
        genotype_codes([[0, 4]])
    # float input with NaN goes straight into the encoder
    enc = build_genotype_encoder(TINY, 3).eval()
    assert enc(torch.tensor([[0.0, float("nan"), 2.0]])).shape == (1, 3, F_E)


def _encoder_inputs(enc: GenotypeEncoder, genotypes) -> torch.Tensor:
    """The tokens entering the transformer (identity + value embeddings)."""
    seen = []
    handle = enc.transformer.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    with torch.no_grad():
        enc(genotypes)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("value_embedding", ["shared", "per_snp"])
def test_value_embedding_gives_each_snp_its_own_dose_direction_only_per_snp(value_embedding):
    """per_snp: SNP 0 and SNP 1 going 0 -> 2 move their tokens in different directions, so a pooled
    readout can tell which SNP carries the alleles; shared: the same move for every SNP."""
    torch.manual_seed(0)
    enc = build_genotype_encoder({"genotype_encoder": {**TINY["genotype_encoder"], "snp_value_embedding": value_embedding}},
                                 F_G).eval()
    base = torch.zeros(1, F_G, dtype=torch.long)
    x0 = _encoder_inputs(enc, base)
    moves = []
    for snp in (0, 1):
        g = base.clone()
        g[0, snp] = 2
        delta = _encoder_inputs(enc, g) - x0
        assert torch.count_nonzero(delta.abs().sum(-1)) == 1   # only that SNP's token moves
        moves.append(delta[0, snp])
    assert torch.allclose(moves[0], moves[1]) == (value_embedding == "shared")
    assert enc.value_embedding.num_embeddings == (4 * F_G if value_embedding == "per_snp" else 4)


def test_value_embedding_is_checked_and_old_saved_encoders_load_as_shared(tmp_path):
    import json

    with pytest.raises(G2IError, match="snp_value_embedding is 'per_gene'"):
        build_genotype_encoder({"genotype_encoder": {**TINY["genotype_encoder"], "snp_value_embedding": "per_gene"}}, F_G)
    with pytest.raises(G2IError, match="snp_value_embedding"):
        build_genotype_encoder({"genotype_encoder": {k: v for k, v in TINY["genotype_encoder"].items()
                                                     if k != "snp_value_embedding"}}, F_G)
    torch.manual_seed(0)
    enc = build_genotype_encoder(TINY, F_G).eval()
    enc.save_pretrained(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["snp_value_embedding"]                       # as saved before the option existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    loaded = GenotypeEncoder.from_pretrained(tmp_path / "old").eval()
    assert loaded.config.snp_value_embedding == "shared"
    _, _, genotypes = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(genotypes), enc(genotypes))


def test_save_and_load_roundtrip(tmp_path, encoder):
    z_t, t, genotypes = inputs()
    encoder.save_pretrained(tmp_path / "encoder")
    loaded_encoder = GenotypeEncoder.from_pretrained(tmp_path / "encoder").eval()
    with torch.no_grad():
        assert torch.equal(loaded_encoder(genotypes), encoder(genotypes))
    for variant in ("g2i_l_att", "g2i_l_noatt"):
        model = denoiser(variant)
        model.save_pretrained(tmp_path / variant)
        loaded = G2IDenoiser.from_pretrained(tmp_path / variant).eval()
        assert loaded.config.variant == variant
        assert torch.equal(_eps(loaded, encoder, [0, 2], genotypes), _eps(model, encoder, [0, 2], genotypes))


def test_autoencoder_downsamples_4x_and_losses_backprop():
    torch.manual_seed(0)
    vae, disc = build_autoencoder(TINY), build_discriminator(TINY)
    x = torch.rand(B, 1, 16, 16) * 2 - 1
    assert encode_mean(vae, x).shape == (B, 3, 4, 4)
    x_hat, posterior = autoencode(vae, x)
    assert x_hat.shape == x.shape
    weights = AutoencoderLossWeights.from_config(TINY)
    _, before = autoencoder_loss(x, x_hat, posterior, weights, step=0, discriminator=disc)
    assert "adversarial" not in before  # still warming up
    total, parts = autoencoder_loss(x, x_hat, posterior, weights, step=5, discriminator=disc)
    assert set(parts) == {"l1", "kl", "ssim", "adversarial"}
    d_loss = discriminator_loss(disc(x), disc(x_hat.detach()))
    assert torch.isfinite(total) and torch.isfinite(d_loss)
    (total + d_loss).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.decoder.parameters() if p.requires_grad)
    assert all(p.grad is not None for p in disc.parameters())
    with pytest.raises(G2IError, match="unknown model.autoencoder_loss key"):
        AutoencoderLossWeights.from_config({"autoencoder_loss": {"perceptual": 1.0}})


def test_paper_widths_give_256_to_64():
    cfg = copy.deepcopy(PAPER)
    vae = build_autoencoder(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        z = encode_mean(vae, torch.zeros(1, 1, 256, 256))
        assert z.shape == (1, 3, 64, 64)
        assert vae.decode(z).sample.shape == (1, 1, 256, 256)


def test_paper_denoiser_runs_once():
    """The paper-size g2i_l_att at batch 1 on a 64 x 64 latent: builds and runs one forward pass."""
    torch.manual_seed(0)
    encoder = build_genotype_encoder(PAPER, 51).eval()
    model = build_denoiser("g2i_l_att", PAPER).eval()
    with torch.no_grad():
        eps = model(torch.randn(1, 3, 64, 64), torch.tensor([500]), diagnosis_onehot(torch.tensor([2])),
                    encoder(torch.randint(0, 3, (1, 51))))
    assert eps.shape == (1, 3, 64, 64) and torch.isfinite(eps).all()


def test_ssim_is_one_for_identical_and_drops_with_noise():
    x = torch.rand(2, 1, 16, 16)
    assert torch.allclose(ssim(x, x, data_range=1.0), torch.tensor(1.0))
    assert ssim(x, x + 0.3 * torch.randn_like(x), data_range=1.0) < 0.9


def test_latent_scaling_factor_stored_in_config():
    vae = build_autoencoder(TINY)
    latents = 4.0 * torch.randn(64, 3, 4, 4)
    assert latent_scaling_factor(latents) == pytest.approx(0.25, rel=0.05)
    set_scaling_factor(vae, latents)
    assert vae.config.scaling_factor == pytest.approx(0.25, rel=0.05)
    with pytest.raises(G2IError):
        latent_scaling_factor(torch.zeros(4, 3))


def test_schedulers_do_not_clip():
    ddpm, ddim = build_scheduler(TINY), build_ddim_scheduler(TINY)
    assert ddpm.config.clip_sample is False and ddim.config.clip_sample is False
    assert ddpm.config.num_train_timesteps == ddim.config.num_train_timesteps == 100
    assert ddim.config.beta_schedule == "scaled_linear"
    with pytest.raises(G2IError, match="beta_schedule"):
        build_scheduler({"scheduler": {"beta_schedule": "cosine"}})


def _leaf_paths(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaf_paths(value, prefix + (key,))
        else:
            yield prefix + (key,)


def _builders(model: dict, section: str, variant: str | None = None) -> None:
    """Build what reads `model.<section>` (GANs: `model.gan.<variant>`) when a stage trains."""
    from g2i.models.autoencoder import build_discriminator
    from g2i.models.gans import build_gan
    from g2i.models.genotype_encoder import build_genotype_encoder
    from g2i.models.scheduler import build_scheduler
    from g2i.training.gan import DamsmConfig, gan_terms

    if section == "gan":
        build_gan(variant, model, 16, embed_dim=model["genotype_encoder"]["embed_dim"])
        gan_terms(variant, model["gan"][variant])
        if variant == "attngan":
            DamsmConfig.from_params(model["gan"]["attngan"]["damsm"])
        return
    {"autoencoder": build_autoencoder, "discriminator": build_discriminator,
     "autoencoder_loss": AutoencoderLossWeights.from_config, "scheduler": build_scheduler,
     "genotype_encoder": lambda m: build_genotype_encoder(m, num_snps=F_G),
     "unet": lambda m: None}[section](model)
    if section in ("autoencoder", "genotype_encoder", "unet"):   # the denoiser reads all three
        for name in VARIANTS:
            build_denoiser(name, model)


def test_deleting_any_model_key_is_an_error_naming_it_never_another_model():
    """Issue 14: params.yaml is the one source of every model knob. Delete any key of the demo's `model:` section
    and building the networks stops with an error that names that key, instead of quietly using a code default
    (several of which once contradicted params.yaml: norm_num_groups 32 vs 8, n_layers 3 vs 2, ...)."""
    from g2i.config import load_params, resolve

    model = resolve(load_params(None), "demo")["model"]
    paths = list(_leaf_paths(model))
    assert len(paths) > 60 and {p[0] for p in paths} == {"autoencoder", "discriminator", "autoencoder_loss",
                                                         "genotype_encoder", "unet", "scheduler", "gan"}
    for section, variant in {(p[0], p[1] if p[0] == "gan" else None) for p in paths}:
        _builders(model, section, variant)                                  # the full sections build
    for path in paths:
        cut = copy.deepcopy(model)
        parent = cut
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        with pytest.raises(G2IError) as caught:
            _builders(cut, path[0], path[1] if path[0] == "gan" else None)
        assert path[-1] in str(caught.value) and "params.yaml" in str(caught.value), (path, str(caught.value))
