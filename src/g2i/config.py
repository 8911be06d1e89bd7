"""params.yaml: the single source of every knob, with one `profile` key selecting `demo` or `paper`."""

from __future__ import annotations

import copy
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
    return merged
