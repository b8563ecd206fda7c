"""What the run ran on and how much memory it used: for metrics and metadata.json."""

from __future__ import annotations

import functools
import os
import platform
import re
import resource
import sys
from pathlib import Path

import torch

from text2sign.config import ConfigError, TrainConfig

GIB = 1024**3


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu.")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU does bf16 arithmetic in hardware (the avx512_bf16 or amx_bf16 flag of Linux's
    /proc/cpuinfo, or `cpuinfo`'s text); False where that cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", cpuinfo) is not None


@functools.cache
def _this_cpu_has_native_bf16() -> bool:
    return cpu_has_native_bf16()


def autocast_dtype(train: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 where the config asks for it (train.precision=bf16: on CUDA, and with train.cpu_bf16 on a CPU that
    does bf16 in hardware), else None: fp32. A run trained with cpu_bf16 is evaluated or served in fp32 on a
    CPU without it, where bf16 would only be slower."""
    if train.precision != "bf16":
        return None
    if device.type == "cuda" or (device.type == "cpu" and train.cpu_bf16 and _this_cpu_has_native_bf16()):
        return torch.bfloat16
    return None


def check_cpu_bf16(train: TrainConfig, device: torch.device) -> None:
    """Refuse train.cpu_bf16 on a CPU without bf16 hardware, where it would make every step slower."""
    if train.cpu_bf16 and train.precision == "bf16" and device.type == "cpu" and not _this_cpu_has_native_bf16():
        raise ConfigError("train.cpu_bf16: this CPU has no bf16 arithmetic in hardware (no avx512_bf16 or amx_bf16 "
                          "flag in /proc/cpuinfo), so bf16 autocast would be emulated and slower than fp32; "
                          "drop train.cpu_bf16=true.")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's marketing name (the "model name" of Linux's /proc/cpuinfo, or `cpuinfo`'s text), else what
    `platform` knows, which on Linux is only the architecture ("x86_64"): a timing means little without it."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.M)
    return found.group(1).strip() if found else platform.processor() or platform.machine()


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
