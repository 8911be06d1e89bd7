"""The model names the project shares, defined once and free of torch (reports, tracking and the CLI read them).

Variants follow the paper: the diffusion family (LDM; G2I, genotype only, through cross-attention;
G2I-l without and with attention, genotype plus diagnosis) and the GAN baselines it compares with.
"""

from __future__ import annotations

DIFFUSION_VARIANTS = ("ldm", "g2i", "g2i_l_noatt", "g2i_l_att")
GAN_VARIANTS = ("cgan", "stackgan", "attngan")
DISPLAY_NAMES = {"cgan": "CGAN", "stackgan": "StackGAN", "attngan": "AttnGAN", "ldm": "LDM", "g2i": "G2I",
                 "g2i_l_noatt": "G2I-l w/o Att", "g2i_l_att": "G2I-l w/ Att"}


def display_name(model: str) -> str:
    """The paper's name for a variant (the key itself for anything else, e.g. a Table 2 row)."""
    return DISPLAY_NAMES.get(model, model)


def family(model: str) -> str:
    """'gan' or 'diffusion' (what MLflow's Group by and the registry use)."""
    return "gan" if model in GAN_VARIANTS else "diffusion"
