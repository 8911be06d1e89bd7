"""Where does the genotype's effect get lost? Probes of a trained G2IPipeline's conditioning path.

When a model's e4 dose sweep falls short of the identifiability ceiling, these measure each link:
  encoder   T_theta(genotype with e4 = 2) - T_theta(e4 = 0), against the change from swapping in another
            subject's whole genotype: does the encoder's output move with the APOE token at all?
  denoiser  eps_theta(z_t, c(e4 = 2)) - eps_theta(z_t, c(e4 = 0)) at several t, against the whole
            conditioning effect eps(z_t, c) - eps(z_t, null) and against the genotype swap: does the
            change reach the noise prediction, and at which noise levels?
  attention the cross-attention weight the APOE token receives, against 1 / number of tokens (uniform).
All are ratios of root-mean-square differences over the same latents and noise: scale-free, and the
planted model says what to expect (e4 0 -> 2 moves log volume by 2 x 0.08 = 0.16, a whole-genotype swap
by ~0.06 through the polygenic score, so a model that learned the truth should show an e4/swap ratio
well above 1 somewhere along the path).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..models.conditioning import diagnosis_onehot


def _rms(x: torch.Tensor) -> float:
    return float(x.float().pow(2).mean().sqrt())


@torch.no_grad()
def batched(unet, z_t: torch.Tensor, steps: torch.Tensor, onehot, tokens, batch_size: int | None) -> torch.Tensor:
    """unet(z_t, steps, onehot, tokens) in slices of at most `batch_size` rows (probe.batch_size): the memory of
    a forward pass at the paper's 64 x 64 latents grows with the rows; one call when they fit (or None)."""
    n = len(z_t)
    if batch_size is None or n <= batch_size:
        return unet(z_t, steps, onehot, tokens)
    part = lambda x, i: None if x is None else x[i:i + batch_size]  # noqa: E731
    return torch.cat([unet(z_t[i:i + batch_size], steps[i:i + batch_size], part(onehot, i), part(tokens, i))
                      for i in range(0, n, batch_size)])


def probe_rows(n_train: int, cfg: dict) -> np.ndarray:
    """The training subjects the probe uses: `probe.n_subjects` of them, drawn with `probe.seed`."""
    return np.random.default_rng(int(cfg["seed"])).choice(n_train, min(int(cfg["n_subjects"]), n_train), replace=False)


def probe_pipeline(pipe, train, rows: np.ndarray, x: torch.Tensor, cfg: dict) -> dict[str, Any]:
    """conditioning_probe of one saved pipeline on training subjects `rows` (their slices `x`, B x 1 x H x W),
    with the latents as training saw them (scaled encoder means) and params.yaml `probe:` settings."""
    from ..models.autoencoder import encode_mean

    batch = int(cfg["batch_size"])
    with torch.no_grad():
        z_0 = torch.cat([encode_mean(pipe.vae, x[i:i + batch]) for i in range(0, len(x), batch)])
        z_0 = z_0 * pipe.vae.config.scaling_factor
    T = len(pipe.scheduler.alphas_cumprod)
    return conditioning_probe(pipe, train.codes[rows], train.labels[rows], z_0,
                              timesteps=[int(f * T) for f in cfg["timestep_fractions"]],
                              seed=int(cfg["seed"]), batch_size=batch)


@torch.no_grad()   # measurements only: no autograd graph for the encoder's outputs
def conditioning_probe(pipe, codes: np.ndarray, labels: np.ndarray, z_0: torch.Tensor,
                       timesteps: Sequence[int] = (50, 250, 500, 750), seed: int = 0,
                       batch_size: int | None = None) -> dict[str, Any]:
    """Sensitivity of T_theta, eps_theta and the cross-attention to the APOE e4 token of one pipeline.

    codes: B x F genotype codes (0/1/2, 3 = missing) in the pipeline's SNP order (APOE4 last or named in
    pipe.config.snps); labels: B diagnosis indices; z_0: B x C x h x w scaled latents of real slices
    (the encoder means, as training saw them). Returns {"encoder": {...}, "denoiser": {t: {...}},
    "attention": {...}} (encoder and attention None for variants without genotype input).
    """
    snps = list(pipe.config.snps)
    if "APOE4" not in snps:
        raise ValueError("pipe: its SNP list has no APOE4 token")
    codes_t = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if codes_t.ndim != 2 or codes_t.shape[1] != len(snps):
        raise ValueError(f"codes: expected B x {len(snps)} codes, got shape {tuple(codes_t.shape)}")
    if len(labels_t) != len(codes_t) or len(z_0) != len(codes_t):
        raise ValueError("labels, z_0: need one per genotype row")
    apoe = snps.index("APOE4")
    limit = len(pipe.scheduler.alphas_cumprod)
    if not timesteps or any(not 0 <= int(t) < limit for t in timesteps):
        raise ValueError(f"timesteps: need values in [0, {limit}), got {list(timesteps)}")
    g0, g2 = codes_t.clone(), codes_t.clone()
    g0[:, apoe], g2[:, apoe] = 0, 2
    generator = torch.Generator().manual_seed(seed)
    swap = codes_t[torch.randperm(len(codes_t), generator=generator)]
    swap[:, apoe] = codes_t[:, apoe]   # another subject's panel, own e4: the polygenic score's swing
    unet, encoder = pipe.unet, pipe.genotype_encoder
    unet.eval()
    if encoder is not None:
        encoder.eval()
    out: dict[str, Any] = {"n": int(len(codes_t)), "encoder": None, "attention": None, "denoiser": {}}
    tokens = {}
    if unet.uses_genotype:
        tokens = {name: encoder(g) for name, g in (("own", codes_t), ("e4_0", g0), ("e4_2", g2), ("swap", swap))}
        d_e4, d_swap = _rms(tokens["e4_2"] - tokens["e4_0"]), _rms(tokens["own"] - tokens["swap"])
        out["encoder"] = {"e4_rms": d_e4, "swap_rms": d_swap, "e4_over_swap": d_e4 / d_swap if d_swap else None,
                          "e4_token_share": _rms((tokens["e4_2"] - tokens["e4_0"])[:, apoe]) ** 2
                          / max(d_e4 ** 2 * len(snps), 1e-30)}
    onehot = diagnosis_onehot(labels_t) if unet.uses_label else None
    alphas = pipe.scheduler.alphas_cumprod
    for t in timesteps:
        noise = torch.randn(z_0.shape, generator=generator)
        abar = alphas[int(t)]
        z_t = abar.sqrt() * z_0 + (1 - abar).sqrt() * noise
        steps = torch.full((len(z_0),), int(t), dtype=torch.long)
        null_tokens = encoder.null(len(z_0)) if unet.uses_genotype else None
        eps = {"null": batched(unet, z_t, steps, torch.zeros_like(onehot) if onehot is not None else None,
                               null_tokens, batch_size)}
        for name in ("own", "e4_0", "e4_2", "swap") if unet.uses_genotype else ("own",):
            eps[name] = batched(unet, z_t, steps, onehot, tokens.get(name), batch_size)
        cond = _rms(eps["own"] - eps["null"])
        row = {"condition_rms": cond}
        if unet.uses_genotype:
            d_e4, d_swap = _rms(eps["e4_2"] - eps["e4_0"]), _rms(eps["own"] - eps["swap"])
            row.update(e4_rms=d_e4, swap_rms=d_swap, e4_over_condition=d_e4 / cond if cond else None,
                       e4_over_swap=d_e4 / d_swap if d_swap else None)
        out["denoiser"][int(t)] = row
    if unet.uses_genotype:   # None for g2i_l_noatt: it has no cross-attention module
        out["attention"] = apoe_attention(unet, z_0, labels_t, onehot, tokens["own"], apoe, alphas, generator,
                                          t=int(sorted(timesteps)[len(timesteps) // 2]), batch_size=batch_size)
    return out


def apoe_attention(unet, z_0, labels, onehot, tokens, apoe: int, alphas, generator, t: int,
                   batch_size: int | None = None) -> dict | None:
    """Mean cross-attention weight on the APOE token (all cross-attention layers, heads and queries).

    Recomputed from each cross-attention module's own projections via forward hooks, so nothing in the
    model changes; None when the model has no cross-attention module (g2i_l_noatt)."""
    layers = [m for name, m in unet.named_modules() if name.endswith("attn2") and hasattr(m, "to_q")]
    if not layers:
        return None
    shares = []

    def hook(module, args, kwargs, _output):
        hidden = args[0] if args else kwargs["hidden_states"]
        context = kwargs.get("encoder_hidden_states")
        if context is None:
            return
        q, k = module.to_q(hidden), module.to_k(context)
        heads = module.heads
        q = q.view(q.shape[0], -1, heads, q.shape[-1] // heads).transpose(1, 2)
        k = k.view(k.shape[0], -1, heads, k.shape[-1] // heads).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-1, -2) * module.scale, dim=-1)
        shares.append((float(weights[..., apoe].mean()), len(hidden)))

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in layers]
    try:
        noise = torch.randn(z_0.shape, generator=generator)
        abar = alphas[int(t)]
        batched(unet, abar.sqrt() * z_0 + (1 - abar).sqrt() * noise, torch.full((len(z_0),), int(t), dtype=torch.long),
                onehot, tokens, batch_size)
    finally:
        for h in handles:
            h.remove()
    if not shares:
        return None
    if batch_size is None or len(z_0) <= batch_size:   # one call: the plain mean over layers
        mean = float(np.mean([share for share, _ in shares]))
    else:   # slices: each layer-slice mean weighted by its rows (the last slice may be shorter)
        mean = float(sum(share * n for share, n in shares) / sum(n for _, n in shares))
    layers = len(shares) // (1 if batch_size is None else -(-len(z_0) // batch_size))
    return {"mean_weight": mean, "uniform": 1.0 / tokens.shape[1],
            "over_uniform": mean * tokens.shape[1], "layers": layers, "t": int(t)}
