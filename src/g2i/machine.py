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


def has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware: AMX tiles (Intel Sapphire Rapids and later) or
    AVX-512 BF16 dot products (AMD Zen 4 and later, Intel Cooper Lake).

    There oneDNN's bf16 convolutions beat float32: the demo autoencoder step ran 2.0x faster on an Intel
    Xeon with AMX and 1.4-1.5x on an AMD EPYC Zen 4 (docs/performance.md). Without either (Zen 3, older
    Xeons) bf16 is emulated and loses.
    """
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.3; /proc/cpuinfo otherwise
    if capabilities is not None:
        flags = {k for k, v in capabilities().items() if v}
    else:
        try:
            flags = set(Path("/proc/cpuinfo").read_text().split())
        except OSError:
            return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def describe() -> str:
    """'<GPU> (CUDA x)' where torch sees one, else '<CPU model>, N cores, T torch threads'."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
