"""The GAN baselines' losses (g2i.training.gan trains CGAN, StackGAN and AttnGAN with them).

Non-saturating GAN loss (softplus form): D: softplus(-D(real)) + softplus(D(fake)); G: softplus(-D(fake)).
Matching-aware D (StackGAN, AttnGAN): (real, right) real; (fake, right) and (real, wrong) fake, the wrong
pairs from `mismatched`. AttnGAN's DAMSM matching loss (word and sentence level) and the conditioning
augmentation's KL term (StackGAN, AttnGAN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import G2IError


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log sigmoid(D(fake)) (Goodfellow et al. 2014)."""
    return F.softplus(-fake_logits).mean()


def d_real(logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logits).mean()


def d_fake(logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(logits).mean()


def mismatched(condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each row gets the condition of ANOTHER sample in the batch: a roll by a random shift in [1, B)."""
    n = len(condition)
    if n < 2:
        raise G2IError("matching-aware GAN training needs batch_size >= 2 (wrong pairs come from the batch)")
    shift = int(torch.randint(1, n, (1,), generator=generator))
    return condition.roll(shift, dims=0)


def matching_d_loss(real: dict[str, torch.Tensor], fake: dict[str, torch.Tensor]) -> torch.Tensor:
    """Matching-aware D loss. StackGAN: real_cond + (fake_cond + wrong) / 2. With unconditional heads
    (AttnGAN): (real_uncond + real_cond) / 2 + (fake_uncond + fake_cond + wrong) / 3."""
    if "uncond" in real:
        return ((d_real(real["uncond"]) + d_real(real["cond"])) / 2
                + (d_fake(fake["uncond"]) + d_fake(fake["cond"]) + d_fake(real["wrong"])) / 3)
    return d_real(real["cond"]) + (d_fake(fake["cond"]) + d_fake(real["wrong"])) / 2


def ca_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)), averaged over elements as the original code does."""
    return 0.5 * torch.mean(mu.pow(2) + logvar.exp() - 1.0 - logvar)


def damsm_scores(regions: torch.Tensor, global_features: torch.Tensor, words: torch.Tensor,
                 sentence: torch.Tensor, gamma1: float, gamma2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DAMSM relevance (AttnGAN Sect. 2.3) of every genotype i with every image j: (word-level, sentence-level),
    each B x B. regions: B x D x r x r; global: B x D; words: B x T x D; sentence: B x D.

    Word level: s = e^T v (words x regions), normalised over words (Eq. 8), attention of each word over the
    regions with gamma1 (Eq. 9), region-context c_t, R(Q, D) = log(sum_t exp(gamma2 cos(c_t, e_t)))^(1/gamma2)
    (Eq. 10). Sentence level: cos(global image feature, sentence vector).
    """
    v = regions.flatten(2)  # B x D x N
    s = torch.einsum("itd,jdn->ijtn", words, v)  # genotype i x image j x word t x region n
    s = s.softmax(dim=2)  # normalised over words, per region
    alpha = (gamma1 * s).softmax(dim=3)  # each word's attention over regions
    context = torch.einsum("ijtn,jdn->ijtd", alpha, v)
    relevance = F.cosine_similarity(context, words[:, None].expand_as(context), dim=-1)  # i x j x t
    word_scores = torch.logsumexp(gamma2 * relevance, dim=-1) / gamma2
    sentence_scores = F.cosine_similarity(sentence[:, None, :], global_features[None, :, :], dim=-1)
    return word_scores, sentence_scores


def damsm_loss(regions: torch.Tensor, global_features: torch.Tensor, words: torch.Tensor, sentence: torch.Tensor,
               gamma1: float = 4.0, gamma2: float = 5.0, gamma3: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_w, L_s) of AttnGAN Eq. 11-13: the batch's other genotypes/images are the negatives;
    L = -log P(D|Q) - log P(Q|D), posteriors softmax(gamma3 R) over the batch, both directions."""
    word_scores, sentence_scores = damsm_scores(regions, global_features, words, sentence, gamma1, gamma2)
    target = torch.arange(len(words), device=words.device)

    def both_ways(scores: torch.Tensor) -> torch.Tensor:
        logits = gamma3 * scores
        return F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)

    return both_ways(word_scores), both_ways(sentence_scores)
