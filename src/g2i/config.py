"""params.yaml: the single source of every knob, with one `profile` key selecting `demo` or `paper`."""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import G2IError

PROFILE_KEY = "profile"
PROFILES_KEY = "profiles"


def repo_root(start: Path | None = None) -> Path:
    """The project root: the nearest folder above `start` holding params.yaml (or $G2I_ROOT)."""
    if os.environ.get("G2I_ROOT"):
        return Path(os.environ["G2I_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").is_file():
            return folder
    return here


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Read params.yaml, failing with the file's name when it is missing or malformed."""
    path = Path(path) if path else repo_root() / "params.yaml"
    if not path.is_file():
        raise G2IError(f"{path}: parameter file not found")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise G2IError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(params, dict) or PROFILES_KEY not in params:
        raise G2IError(f"{path}: expected a mapping with a '{PROFILES_KEY}' section")
    return params


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


SERVING_INHERITS = ("sampler", "num_inference_steps", "guidance_scale")


def from_section(cls, section: Any, where: str, **converted: Any):
    """The frozen dataclass `cls` from a params.yaml section (keyword `converted` values replace the section's):
    unknown keys, missing ones (fields without a default) and the type or value errors its constructor raises are
    user errors naming `where`. Range checks beyond the constructor's stay with the caller."""
    given = dict(section or {})
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise G2IError(f"params.yaml: unknown {where} key(s) {unknown}; known: {known}")
    missing = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and f.name not in given and f.name not in converted]
    if missing:   # a field without a default is a knob params.yaml must state
        raise G2IError(f"params.yaml: {where}.{missing[0]} is missing")
    try:
        return cls(**{**given, **converted})
    except (TypeError, ValueError) as exc:
        raise G2IError(f"params.yaml: bad {where} setting ({exc})") from exc


def resolve(params: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    """Flatten params for one profile: shared sections, overlaid by `profiles.<name>`.

    A profile section may override any shared key (e.g. `profiles.paper.cohort.n_subjects`),
    so each stage reads one merged dict and never has to know which profile is active.
    """
    name = profile or params.get(PROFILE_KEY, "demo")
    profiles = params[PROFILES_KEY]
    if name not in profiles:
        raise G2IError(f"unknown profile '{name}'; params.yaml defines: {', '.join(sorted(profiles))}")
    shared = {k: v for k, v in params.items() if k not in (PROFILE_KEY, PROFILES_KEY)}
    merged = _deep_merge(shared, profiles[name] or {})
    merged[PROFILE_KEY] = name
    if isinstance(merged.get("serving"), dict) and isinstance(merged.get("sampling"), dict):
        # the served model generates as `sampling` does unless `serving` says otherwise
        inherited = {k: merged["sampling"][k] for k in SERVING_INHERITS if k in merged["sampling"]}
        merged["serving"] = {**inherited, **merged["serving"]}
    return merged


def check_sizes(params: dict[str, Any]) -> None:
    """The slice size is stated three times (slices.size, model.autoencoder.sample_size, model.unet.sample_size,
    the latent side); a profile that changes one and not the others would train and sample at the old size.
    Checked by the stages that build the networks (commands.model_params), not by the data stages."""
    model, slices = params.get("model") or {}, params.get("slices") or {}
    ae, unet = model.get("autoencoder") or {}, model.get("unet") or {}
    if not (slices.get("size") and ae.get("sample_size") and unet.get("sample_size") and ae.get("block_out_channels")):
        return
    height, width = (int(v) for v in slices["size"])
    side = int(ae["sample_size"])
    latent = side // 2 ** (len(ae["block_out_channels"]) - 1)   # each autoencoder block after the first halves it
    where = f"params.yaml (profile '{params.get(PROFILE_KEY)}')"
    if (height, width) != (side, side):
        raise G2IError(f"{where}: slices.size is {height} x {width} but model.autoencoder.sample_size is {side}; "
                       "set both (the autoencoder is square)")
    if int(unet["sample_size"]) != latent:
        raise G2IError(f"{where}: model.unet.sample_size is {unet['sample_size']} but the autoencoder turns "
                       f"{side} x {side} slices into {latent} x {latent} latents; set it to {latent}")
