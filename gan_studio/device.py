"""Device and precision selection: one place decides where models run and in which number format."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """cuda > mps > cpu, unless the user asked for one explicitly."""
    if preference != "auto":
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was requested but no CUDA GPU is available; use --device auto")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' means bf16 where the hardware runs it fast (Ampere+ GPUs; CPUs with AVX512-BF16/AMX),
    else fp32. On AVX2-only CPUs bf16 convolutions fall back to a slow path (measured ~7x slower)."""
    if precision not in {"auto", "bf16", "fp32"}:
        raise ValueError(f"Unknown precision {precision!r}: use auto, bf16 or fp32")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def use_channels_last(option: str | bool, device: torch.device) -> bool:
    """channels_last speeds up GPU convolutions, but on CPUs without AVX512 (measured on an AVX2 EPYC)
    oneDNN's weight gradients in that layout are ~3x slower, so "auto" keeps NCHW there."""
    if isinstance(option, bool):  # configs written before the option became tri-state
        return option
    return {"on": True, "off": False}.get(str(option).lower(), device.type == "cuda")


def use_compile(option: str) -> bool:
    """Whether to torch.compile the training passes (opt-in: see BENCHMARKS.md for where it pays)."""
    return str(option).lower() == "on"


def cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, precision: str):
    """bf16 autocast context for the forward passes (weights and optimiser stay fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def hardware_summary(device: torch.device, world_size: int) -> dict:
    """What a run trained on, for run.json and its checkpoints (and so for model cards)."""
    import platform

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
                    break
        except OSError:
            pass
    return {
        "device": device.type,
        "name": name,
        "processes": world_size,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "malloc_tunables": os.environ.get("GLIBC_TUNABLES"),  # see gan_studio/utils/allocator.py
    }
