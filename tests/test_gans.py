"""GAN baselines (CGAN, StackGAN, AttnGAN): conditioning, matching-aware and DAMSM losses, clean gradients,
training through the Trainer, save / load / generate, exact resume. Tiny networks on 32 x 32 slices."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from g2i.errors import G2IError
from g2i.models import diagnosis_onehot
from g2i.models.gans import build_gan
from g2i.generation.gan import GANPipeline
from g2i.losses.gan import damsm_loss, damsm_scores, matching_d_loss, mismatched
from g2i.training.gan import build_gan_modules, gan_terms, train_config, train_gan
from g2i.vocabulary import GAN_VARIANTS
from g2i.training.trainer import step_generator

from .conftest import train_section, write_processed

SIZE, N_SNPS = 32, 6
TINY_MODEL = {
    "genotype_encoder": {"embed_dim": 8, "num_layers": 1, "num_heads": 2, "ff_dim": 16, "dropout": 0.1,
                         "snp_value_embedding": "shared"},
    "gan": {
        "cgan": {"z_dim": 8, "channels": 4, "max_channels": 16, "d_channels": 4, "d_max_channels": 16,
                 "spectral_norm": True},
        "stackgan": {"z_dim": 8, "ca_dim": 4, "stage1_factor": 4, "hidden_factor": 8, "stage1_channels": 4,
                     "stage2_channels": 4, "max_channels": 16, "residual_blocks": 1, "d_channels": 4,
                     "d_max_channels": 16, "projected_dim": 4, "kl_weight": 2.0},
        "attngan": {"z_dim": 8, "ca_dim": 4, "num_stages": 3, "channels": 4, "max_channels": 16,
                    "residual_blocks": 1, "d_channels": 4, "d_max_channels": 16, "projected_dim": 4,
                    "kl_weight": 1.0, "damsm_weight": 5.0,
                    "damsm": {"channels": 4, "max_channels": 16, "region_size": 8, "gamma1": 4.0, "gamma2": 5.0,
                              "gamma3": 10.0, "pretrain_steps": 3,
                              "batch_size": 4, "learning_rate": 1.0e-3}},
    },
}
TRAIN = train_section(max_steps=4, batch_size=4, learning_rate=1.0e-3, weight_decay=0.0, betas=[0.5, 0.999],
                      grad_clip=0.0, warmup_steps=1, checkpoint_every=2, ema_decay=0.9, log_every=1, seed=0)
PARAMS = {"model": TINY_MODEL, "training": {"gan": TRAIN}}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second intra-op thread only adds synchronisation (10-100x slower on a busy CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("gans")
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (12, SIZE, SIZE))
    snps = {f"rs{i}": rng.integers(0, 3, 12) for i in range(N_SNPS - 1)}
    snps["APOE4"] = rng.integers(0, 3, 12)
    return write_processed(root, images, ["CN", "MCI", "AD"] * 4, ["train"] * 9 + ["val"] * 3, snps)


def modules_of(variant: str) -> torch.nn.ModuleDict:
    torch.manual_seed(0)
    return torch.nn.ModuleDict(build_gan_modules(variant, TINY_MODEL, SIZE, N_SNPS))


def batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"x_0": torch.rand(n, 1, SIZE, SIZE, generator=g) * 2 - 1, "label": torch.arange(n) % 3,
            "genotype": torch.randint(0, 3, (n, N_SNPS), generator=g)}


def two_genotypes() -> torch.Tensor:
    a = torch.tensor([[0, 1, 2, 0, 1, 2]])
    return torch.cat([a, (a + 1) % 3])  # every SNP differs


# ---- conditioning ---------------------------------------------------------------------------------------

def test_cgan_is_conditioned_on_the_label():
    m = modules_of("cgan").eval()
    z = torch.randn(1, 8).expand(3, -1)
    onehot = diagnosis_onehot(torch.arange(3))
    with torch.no_grad():
        images = m["generator"](z, onehot)
        scores = m["disc"](images[:1].expand(3, -1, -1, -1), onehot)
    assert images.shape == (3, 1, SIZE, SIZE)
    assert (images[0] - images[1]).abs().max() > 1e-4 and (images[1] - images[2]).abs().max() > 1e-4
    assert len(set(scores.tolist())) == 3  # same image, three labels, three logits


def test_stackgan_is_conditioned_on_the_genotype_and_stage_two_consumes_stage_one():
    m = modules_of("stackgan").eval()
    gen, enc = m["generator"], m["genotype_encoder"]
    z, n1, n2 = torch.randn(1, 8).expand(2, -1), torch.randn(1, 4).expand(2, -1), torch.randn(1, 4).expand(2, -1)
    with torch.no_grad():
        out = gen(enc.pooled(enc(two_genotypes())), z, n1, n2)
        assert out["stage1"].shape == (2, 1, SIZE // 4, SIZE // 4) and out["image"].shape == (2, 1, SIZE, SIZE)
        assert (out["image"][0] - out["image"][1]).abs().max() > 1e-4
        assert (out["stage1"][0] - out["stage1"][1]).abs().max() > 1e-4
        c2 = torch.randn(1, 4).expand(2, -1)
        low = torch.stack([out["stage1"][0], -out["stage1"][0]])  # same condition, different Stage-I image
        refined = gen.stage_two(low, c2)
    assert (refined[0] - refined[1]).abs().max() > 1e-4


def test_attngan_is_conditioned_on_the_genotype_and_its_attention_sums_to_one_over_snps():
    m = modules_of("attngan").eval()
    gen, enc = m["generator"], m["genotype_encoder"]
    with torch.no_grad():
        words = enc(two_genotypes())
        out = gen(words, enc.pooled(words), torch.randn(1, 8).expand(2, -1), torch.randn(1, 4).expand(2, -1))
    assert [im.shape[-1] for im in out["images"]] == [SIZE // 4, SIZE // 2, SIZE]
    assert (out["images"][-1][0] - out["images"][-1][1]).abs().max() > 1e-4
    assert len(out["attention"]) == 2
    for attention, size in zip(out["attention"], (SIZE // 4, SIZE // 2)):
        assert attention.shape == (2, N_SNPS, size, size)
        torch.testing.assert_close(attention.sum(dim=1), torch.ones(2, size, size))


# ---- matching-aware and DAMSM losses ---------------------------------------------------------------------

def test_wrong_conditions_are_other_samples_of_the_batch():
    condition = torch.arange(5.0)[:, None].expand(-1, 3)
    for seed in range(5):
        wrong = mismatched(condition, torch.Generator().manual_seed(seed))
        assert sorted(wrong[:, 0].tolist()) == list(range(5)) and (wrong[:, 0] != condition[:, 0]).all()
    with pytest.raises(G2IError, match="batch_size >= 2"):
        mismatched(condition[:1], torch.Generator())


def test_matching_aware_loss_counts_real_images_with_wrong_conditions_as_fake():
    real = {"cond": torch.full((4,), 3.0), "wrong": torch.full((4,), -3.0)}
    fake = {"cond": torch.full((4,), -3.0)}
    fooled = {**real, "wrong": torch.full((4,), 3.0)}  # D accepts a real image with the wrong genotype
    assert matching_d_loss(fooled, fake) > matching_d_loss(real, fake) + 1.0
    with_uncond = {**real, "uncond": torch.full((4,), 3.0)}
    assert matching_d_loss({**with_uncond, "wrong": torch.full((4,), 3.0)}, {**fake, "uncond": fake["cond"]}) > \
        matching_d_loss(with_uncond, {**fake, "uncond": fake["cond"]}) + 0.5


@pytest.mark.parametrize("variant", ["stackgan", "attngan"])
def test_discriminators_see_real_images_with_rolled_genotype_conditions(variant):
    m = modules_of(variant)
    calls = []
    for name in [k for k in m if k.startswith("disc")]:
        m[name].register_forward_pre_hook(lambda module, args: calls.append(args))
    gan_terms(variant, TINY_MODEL["gan"][variant])(m, batch(), step_generator(0, 0))
    with_wrong = [args for args in calls if len(args) == 3 and args[2] is not None]
    assert len(with_wrong) == len([k for k in m if k.startswith("disc")])  # one per stage
    for image, condition, wrong in with_wrong:
        shifts = [s for s in range(1, 4) if torch.equal(wrong, condition.roll(s, 0))]
        assert shifts and not torch.equal(wrong, condition)


def test_damsm_loss_prefers_matching_pairs():
    torch.manual_seed(0)
    words = torch.randn(4, N_SNPS, 8)
    sentence = words.mean(1)
    regions = torch.randn(4, 8, 4, 4)
    word_scores, sentence_scores = damsm_scores(regions, sentence, words, sentence, 5.0, 5.0)
    assert word_scores.shape == sentence_scores.shape == (4, 4)
    torch.testing.assert_close(sentence_scores.diagonal(), torch.ones(4))  # global feature == sentence
    matched = damsm_loss(regions, sentence, words, sentence)[1]
    shuffled = damsm_loss(regions, sentence.roll(1, 0), words, sentence)[1]
    assert matched < shuffled


# ---- gradients: each network only from its own terms ---------------------------------------------------

@pytest.mark.parametrize("variant", GAN_VARIANTS)
def test_each_network_gets_only_its_own_gradients(variant):
    m = modules_of(variant)
    g_total, d_total, _ = gan_terms(variant, TINY_MODEL["gan"][variant])(m, batch(), step_generator(0, 0))
    discs = [p for k in m if k.startswith("disc") for p in m[k].parameters()]
    gens = [p for k in ("generator", "genotype_encoder") if k in m for p in m[k].parameters() if p.requires_grad]
    frozen = [p for p in m.parameters() if not p.requires_grad]
    assert bool(frozen) == (variant == "attngan")  # AttnGAN's pre-trained DAMSM stays fixed

    g_grads = torch.autograd.grad(g_total, gens + discs, retain_graph=True, allow_unused=True)
    assert all(g is None or not g.any() for g in g_grads[len(gens):])  # G's terms never move D
    assert any(g is not None and g.abs().sum() > 0 for g in g_grads[:len(gens)])
    if variant == "stackgan":  # the genotype encoder is trained through the generator's path
        encoder = list(m["genotype_encoder"].parameters())
        assert any(g is not None and g.abs().sum() > 0 for g in g_grads[len(gens) - len(encoder):len(gens)])

    d_grads = torch.autograd.grad(d_total, gens + discs, allow_unused=True)
    assert all(g is None or not g.any() for g in d_grads[:len(gens)])  # D's terms never move G or T_theta
    assert all(g is not None and g.abs().sum() > 0 for g in d_grads[len(gens):] if g is not None)
    assert any(g is not None for g in d_grads[len(gens):])


# ---- training, saving, loading, generating ----------------------------------------------------------------

@pytest.mark.parametrize("variant", GAN_VARIANTS)
def test_each_variant_trains_saves_loads_and_generates(tiny, tmp_path, variant):
    logged = []
    result = train_gan(PARAMS, tiny, tmp_path / "model", tmp_path / "ckpt",
                       lambda metrics, step: logged.append((step, metrics)), variant=variant)
    assert result.steps == 4 and np.isfinite(result.final_loss) and result.parameters > 0
    # a rerun finds the checkpoint complete: nothing trains, the same losses come back from the checkpoint
    again = train_gan(PARAMS, tiny, tmp_path / "model", tmp_path / "ckpt", logged.append, variant=variant)
    assert again == result
    assert [s for s, metrics in logged if "d" in metrics] == [1, 2, 3, 4]
    if variant == "attngan":
        assert any("damsm_loss" in metrics for _, metrics in logged)  # the DAMSM was pre-trained first
    loaded = GANPipeline.from_pretrained(tmp_path / "model")
    assert loaded.variant == variant and loaded.image_size == SIZE
    assert loaded.info == {"variant": variant, "snps": [f"rs{i}" for i in range(N_SNPS - 1)] + ["APOE4"],
                           "steps": 4, "image_size": SIZE}
    assert (loaded.genotype_encoder is None) == (variant == "cgan")
    labels, genotypes = torch.tensor([0, 1, 2, 2]), torch.randint(0, 4, (4, N_SNPS))
    images = GANPipeline.from_pretrained(tmp_path / "model").generate(labels, genotypes, torch.Generator().manual_seed(7))
    again = loaded.generate(labels, genotypes, torch.Generator().manual_seed(7))
    other = loaded.generate(labels, genotypes, torch.Generator().manual_seed(8))
    assert images.shape == (4, 1, SIZE, SIZE) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1 and torch.isfinite(images).all()
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert not loaded.generator.training
    # the front door: NaN-coded genotypes and a seed, B x H x W; saved again, the same folder comes back
    called = loaded(genotypes.numpy().astype(float), labels.numpy(), seed=7)
    assert called.shape == (4, SIZE, SIZE) and np.array_equal(called, images[:, 0].numpy())
    loaded.save_pretrained(tmp_path / "copy")
    assert np.array_equal(GANPipeline.from_pretrained(tmp_path / "copy")(genotypes.numpy().astype(float),
                                                                         labels.numpy(), seed=7), called)
    with pytest.raises(G2IError, match="no trained GAN"):
        GANPipeline.from_pretrained(tmp_path / "ckpt")
    optimizer = torch.load(tmp_path / "ckpt/checkpoints/step-00000004/optimizer.bin", weights_only=False)
    assert optimizer["param_groups"][0]["betas"] == (0.5, 0.999)  # training.gan.betas


def test_training_settings_per_variant():
    params = {"training": {"gan": {**TRAIN, "attngan": {"max_steps": 9, "learning_rate": 4e-4}}}}
    assert train_config(params, "attngan").max_steps == 9 and train_config(params, "attngan").learning_rate == 4e-4
    assert train_config(params, "cgan").max_steps == 4 and train_config(params, "cgan", max_steps=2).max_steps == 2
    assert train_config(params, "cgan").betas == (0.5, 0.999)
    with pytest.raises(G2IError, match="betas must be two numbers"):
        train_config({"training": {"gan": {**TRAIN, "betas": [0.5]}}}, "cgan")
    with pytest.raises(G2IError, match="unknown training key"):
        train_config({"training": {"gan": {**TRAIN, "n_critic": 5}}}, "cgan")


def test_unknown_variant_names_the_valid_ones(tiny, tmp_path):
    with pytest.raises(G2IError, match="cgan, stackgan, attngan"):
        train_gan(PARAMS, tiny, tmp_path / "m", tmp_path / "c", variant="biggan")
    with pytest.raises(G2IError, match="model.gan.cgan"):
        build_gan("cgan", {"gan": {"cgan": {"z_dim": 8, "chanels": 4}}}, SIZE)


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tiny, tmp_path):
    """AttnGAN covers the most: DAMSM pre-training, a frozen encoder, dropout (global RNG), three stages."""
    params = copy.deepcopy(PARAMS)
    train_gan(params, tiny, tmp_path / "straight", tmp_path / "ckpt_a", variant="attngan")

    def crash(metrics, step):
        if "d" in metrics and step == 3:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train_gan(params, tiny, tmp_path / "resumed", tmp_path / "ckpt_b", crash, variant="attngan")
    assert not (tmp_path / "resumed").exists()
    logged = []
    result = train_gan(params, tiny, tmp_path / "resumed", tmp_path / "ckpt_b",
                       lambda metrics, step: logged.append((step, sorted(metrics))), variant="attngan")
    assert result.steps == 4
    assert [step for step, _ in logged] == [3, 4]  # resumed from the step-2 checkpoint, DAMSM not redone
    for part in ("generator", "genotype_encoder"):
        a = load_file(tmp_path / "straight" / part / "diffusion_pytorch_model.safetensors")
        b = load_file(tmp_path / "resumed" / part / "diffusion_pytorch_model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    raw_a = load_file(tmp_path / "ckpt_a/checkpoints/step-00000004/model.safetensors")
    raw_b = load_file(tmp_path / "ckpt_b/checkpoints/step-00000004/model.safetensors")
    assert all(torch.equal(raw_a[k], raw_b[k]) for k in raw_a)


def test_cgan_ignores_genotypes(tiny, tmp_path):
    train_gan(PARAMS, tiny, tmp_path / "cgan", tmp_path / "ckpt", variant="cgan")
    labels = torch.tensor([1, 1])
    pipe = GANPipeline.from_pretrained(tmp_path / "cgan")
    images = pipe.generate(labels, two_genotypes(), torch.Generator().manual_seed(0))
    same = pipe.generate(labels, two_genotypes().flip(0), torch.Generator().manual_seed(0))
    assert torch.equal(images, same)  # CGAN is conditioned on the label only, as in the paper


def test_gan_generation_batches_are_bounded_in_pixels(monkeypatch):
    """sample.gan_batch_pixels caps a batch's output pixels: 256 images at 64 x 64 as before, fewer at 256 x 256."""
    from g2i.generation.loader import gan_generator

    calls = []
    cgan = GANPipeline(torch.nn.Identity(), None, {"variant": "cgan", "image_size": 16})
    monkeypatch.setattr(GANPipeline, "from_pretrained", classmethod(lambda cls, path: cgan))

    def fake_generate(labels, codes, generator):
        calls.append(len(labels))
        return torch.zeros(len(labels), 1, 16, 16)

    monkeypatch.setattr(cgan, "generate", fake_generate)
    images = gan_generator("unused", 16 * 16 * 4)(np.zeros((10, 3)), np.zeros(10, dtype=int), 0)
    assert calls == [4, 4, 2] and images.shape == (10, 16, 16)
    from g2i.config import load_params, resolve

    from .conftest import ROOT

    budget = {p: resolve(load_params(ROOT / "params.yaml"), p)["sample"]["gan_batch_pixels"] for p in ("demo", "paper")}
    assert budget["demo"] // 64**2 == 256 and budget["paper"] // 256**2 == 16   # 256 slices per batch, as before
