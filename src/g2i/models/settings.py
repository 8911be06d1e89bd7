"""Reading the `model:` section of params.yaml: required keys fail with the key's full name."""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import G2IError


def section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """`cfg[name]` as a mapping (cfg is the resolved `model:` section)."""
    value = cfg.get(name) if isinstance(cfg, Mapping) else None
    if not isinstance(value, Mapping):
        raise G2IError(f"params.yaml: model.{name} must be a mapping")
    return value


def require(sec: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in sec:
        raise G2IError(f"params.yaml: model.{where}.{key} is missing")
    return sec[key]


def check_groups(channels: list[int], groups: int, where: str) -> int:
    """GroupNorm needs every channel count divisible by the number of groups."""
    bad = [c for c in channels if c % groups]
    if groups < 1 or bad:
        raise G2IError(f"params.yaml: model.{where}.norm_num_groups = {groups} does not divide channel widths {bad or channels}")
    return groups
