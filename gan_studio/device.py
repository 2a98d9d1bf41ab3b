"""Device and precision selection: one place decides where models run and in which number format."""

from __future__ import annotations

import contextlib

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
