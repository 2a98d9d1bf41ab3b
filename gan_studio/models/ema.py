"""Exponential moving average of generator weights (Yazici et al. 2018, arXiv 1806.04498).

The averaged generator produces visibly smoother, more stable samples than the raw one; it is the
generator that gets sampled, evaluated and shipped.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (BN statistics, spectral-norm
    vectors) are copied, since averaging them has no meaning."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)  # no_grad: no detach
    buffers = list(model.buffers())
    if buffers:
        torch._foreach_copy_(list(ema.buffers()), buffers)
