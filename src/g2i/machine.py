"""What machine a figure was measured on: the CPU model (platform.processor() is often empty on Linux),
cores, torch threads, or the GPU. Every timed report and benchmark labels its numbers with this."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def has_amx_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in AMX tiles (Intel Sapphire Rapids and later).

    There oneDNN runs bf16 convolutions about twice as fast as float32; on CPUs without AMX, bf16 is
    emulated or runs through AVX-512 BF16 dot products and gains little or loses.
    """
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.x; /proc/cpuinfo otherwise
    if probe is not None:
        return bool(probe())
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def describe() -> str:
    """'<GPU> (CUDA x)' where torch sees one, else '<CPU model>, N cores, T torch threads'."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
