"""The words the project shares, defined once and free of torch (reports, tracking and the CLI read them).

Diagnoses in the order of their class index; genotype codes (effect-allele counts 0 / 1 / 2, and the
one code the networks use for a missing call); the APOE e4 doses of the counterfactual sweep; the model
variants of the paper: the diffusion family (LDM; G2I, genotype only, through cross-attention; G2I-l
without and with attention, genotype plus diagnosis) and the GAN baselines it compares with.
"""

from __future__ import annotations

import numpy as np

DIAGNOSES = ("CN", "MCI", "AD")
N_CLASSES = len(DIAGNOSES)
MISSING_CODE = 3          # a missing call as a network input (codes 0 / 1 / 2 are allele counts)
DOSES = (0, 1, 2)         # APOE e4 doses of the counterfactual sweep


def codes_from_nan(values) -> np.ndarray:
    """Allele counts with NaN for a missing call -> int64 codes with MISSING_CODE (what the networks read)."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isnan(values), MISSING_CODE, values).astype(np.int64)


def codes_with_nan(codes) -> np.ndarray:
    """Codes as floats with NaN for a missing call: the form users (and G2IPipeline) give genotypes in."""
    codes = np.asarray(codes)
    return np.where(codes == MISSING_CODE, np.nan, codes.astype(float))

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


def variants(params: dict) -> dict[str, list[str]]:
    """params.yaml `variants` (resolved for the profile): {"diffusion": [...], "gan": [...]}, the models the
    pipeline runs; each a known name of its family, none twice."""
    from .errors import G2IError

    given = params.get("variants")
    if not isinstance(given, dict) or set(given) != {"diffusion", "gan"}:
        raise G2IError("params.yaml: `variants` must be {diffusion: [...], gan: [...]} (the models dvc repro runs)")
    out = {}
    for kind, known in (("diffusion", DIFFUSION_VARIANTS), ("gan", GAN_VARIANTS)):
        names = [str(v) for v in given[kind] or []]
        bad = sorted(set(names) - set(known))
        if bad or len(set(names)) != len(names):
            raise G2IError(f"params.yaml (profile '{params.get('profile')}'): variants.{kind} must list distinct "
                           f"names from {', '.join(known)}; got {names}")
        out[kind] = names
    return out


def pipeline_models(params: dict, kinds: tuple[str, ...] = ("gan", "diffusion")) -> list[str]:
    """The `variants` of `kinds`, GANs first as Table 1 lists them: the models dvc.yaml's foreach trained and
    sampled, which evaluate, classify, probe and register take when not given --models."""
    configured = variants(params)
    return [name for kind in kinds for name in configured[kind]]


def variants_yaml(value: dict[str, list[str]]) -> str:
    """A `variants` value as params.yaml's one-line form: {diffusion: [ldm, g2i], gan: []}."""
    return "{" + ", ".join(f"{kind}: [{', '.join(names)}]" for kind, names in value.items()) + "}"
