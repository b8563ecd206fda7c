"""What the run ran on and how much memory it used: for metrics and metadata.json."""

from __future__ import annotations

import os
import platform
import resource
import sys

import torch

GIB = 1024**3


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu.")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def rss_gib() -> float:
    """Resident memory of this process now (Linux /proc), else its peak."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / GIB
    except (OSError, ValueError):
        return peak_rss_gib()


def peak_rss_gib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / GIB if sys.platform == "darwin" else peak * 1024 / GIB  # macOS reports bytes, Linux KiB


def memory_metrics(device: torch.device) -> dict[str, float]:
    """The tracking contract's memory metrics: GPU allocator figures on CUDA, process RSS on CPU."""
    if device.type == "cuda":
        return {
            "gpu/mem_allocated_gib": torch.cuda.memory_allocated(device) / GIB,
            "gpu/mem_reserved_gib": torch.cuda.memory_reserved(device) / GIB,
            "gpu/mem_peak_gib": torch.cuda.max_memory_allocated(device) / GIB,
        }
    return {"cpu/rss_gib": rss_gib()}


def describe(device: torch.device) -> dict[str, object]:
    """Hardware and software versions, for metadata.json and the `device` tag."""
    info: dict[str, object] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    for package in ("transformers", "diffusers", "numpy"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            info[package] = None
    if device.type == "cuda":
        info["gpu_memory_gib"] = torch.cuda.get_device_properties(device).total_memory / GIB
    return info
