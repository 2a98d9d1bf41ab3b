"""Per-layer bookkeeping of a training forward pass, done for all of a network's layers at once.

``torch.nn.utils.parametrizations.spectral_norm`` normalises each weight when its layer reads it:
one power-iteration step and the weight divided by its largest singular value, some twenty small
operators per layer forward and ten backward. FastGAN's networks have 20 to 50 such layers and D
runs three times a step, so on a GPU these launches were half of a training step's operators; each
batch norm in training mode adds one more to count its batches.

``SpectralNorm`` is torch's parametrisation (same buffers, state-dict keys, initial draws and,
layer by layer, the same arithmetic), but a network can compute the weights of all the layers a
forward pass will use at once (``layer_pass``, around the forward): the per-layer matrix-vector
products stay (their results must not change), while the normalisations, buffer updates,
divisions and their gradients become foreach operators over all layers; the layers then read
their precomputed weights. ``BatchNorm2d`` lets the same pass advance every batch counter in one
operator. The results are bitwise those of torch's layers on the CPU (tests/test_models.py); on a
GPU the foreach norms may round differently in the last bit.

Under ``torch.compile`` and in eval mode each layer does its own, as torch's do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm


class SpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrisation, which ``layer_pass`` can hand its weight."""

    planned: torch.Tensor | None = None

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        planned = self.planned
        if planned is None:
            return super().forward(weight)
        self.planned = None
        return planned


def spectral_norm(module: nn.Module) -> nn.Module:
    """``torch.nn.utils.parametrizations.spectral_norm(module)`` with ``SpectralNorm``."""
    dim = 1 if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, "weight", SpectralNorm(module.weight, dim=dim))
    return module


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose batch counter ``layer_pass`` may have advanced already."""

    counted = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.counted:
            return super().forward(x)
        self.counted = False  # nn.BatchNorm2d's training branch, less its num_batches_tracked.add_(1)
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, True, self.momentum, self.eps
        )


class PassLayers:
    """The spectrally normalised weights and counting batch norms among some modules."""

    def __init__(self, modules: Iterable[nn.Module]):
        self.norms: list[SpectralNorm] = []
        self.weights: list[nn.Module] = []  # their parametrisation lists (``.original``: the weight)
        self.batch_norms: list[BatchNorm2d] = []
        for module in modules:
            for sub in module.modules():
                if isinstance(sub, BatchNorm2d) and sub.track_running_stats and sub.momentum is not None:
                    self.batch_norms.append(sub)
                if not parametrize.is_parametrized(sub, "weight"):
                    continue
                plist = sub.parametrizations["weight"]
                if len(plist) == 1 and isinstance(plist[0], SpectralNorm) and plist.original.ndim > 1:
                    self.norms.append(plist[0])
                    self.weights.append(plist)
        if len({(n.eps, n.n_power_iterations) for n in self.norms}) > 1:
            self.norms, self.weights = [], []  # none such here; each layer then normalises its own


def pass_layers(network: nn.Module, key: object, parts: Callable[[], Iterable[nn.Module]]) -> PassLayers:
    """``PassLayers(parts())``, found once per ``network`` and ``key`` (the modules a kind of
    forward pass uses) and kept with it (a deep copy of the network keeps its own)."""
    cache = network.__dict__.setdefault("_layer_passes", {})
    if key not in cache:
        cache[key] = PassLayers(parts())
    return cache[key]


def batched(training: bool) -> bool:
    """Whether a forward pass prepares its layers with ``layer_pass``: in training mode, and not
    while torch.compile traces it (a compiled pass fuses each layer's own operators; test this
    before entering the context, so that the compiled graph holds none of it)."""
    return training and not torch.compiler.is_compiling()


@contextlib.contextmanager
def layer_pass(layers: PassLayers) -> Iterator[None]:
    """Around a forward pass that uses every one of ``layers`` (when ``batched``): their
    normalised weights computed at once and their batch counters advanced at once. Each layer uses
    what was prepared for it once; a pass that fails midway drops the rest when it ends."""
    if layers.norms:
        weights = _Normalize.apply(layers.norms, *(plist.original for plist in layers.weights))
        for norm, weight in zip(layers.norms, weights, strict=True):
            norm.planned = weight
    if layers.batch_norms:
        torch._foreach_add_([bn.num_batches_tracked for bn in layers.batch_norms], 1)
        for bn in layers.batch_norms:
            bn.counted = True
    try:
        yield
    finally:
        for norm in layers.norms:
            norm.planned = None
        for bn in layers.batch_norms:
            bn.counted = False


def _as_matrix(norm: SpectralNorm, weight: torch.Tensor) -> torch.Tensor:
    return norm._reshape_weight_to_matrix(weight)


class _Normalize(torch.autograd.Function):
    """W / sigma(W) for a list of layers, sigma from one power-iteration step (torch's arithmetic),
    and its gradient with u and v held constant, as autograd computes it through torch's version."""

    @staticmethod
    def forward(ctx, norms: list[SpectralNorm], *weights: torch.Tensor):
        eps, steps = norms[0].eps, norms[0].n_power_iterations
        mats = [_as_matrix(n, w) for n, w in zip(norms, weights, strict=True)]
        us, vs = [n._u for n in norms], [n._v for n in norms]
        for _ in range(steps):  # torch's _power_method: u = normalize(W v), v = normalize(W^H u)
            us = _normalized([torch.mv(m, v) for m, v in zip(mats, vs, strict=True)], eps)
            vs = _normalized([torch.mv(m.H, u) for m, u in zip(mats, us, strict=True)], eps)
        torch._foreach_copy_([n._u for n in norms], us)
        torch._foreach_copy_([n._v for n in norms], vs)
        sigmas = [torch.vdot(u, torch.mv(m, v)) for m, u, v in zip(mats, us, vs, strict=True)]
        out = torch._foreach_div(weights, sigmas)
        ctx.norms = norms
        ctx.set_materialize_grads(False)  # a weight whose output got no gradient gets none (not zeros)
        ctx.save_for_backward(*out, *sigmas, *us, *vs)
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        n = len(grads)
        saved = ctx.saved_tensors
        out, sigmas, us, vs = saved[:n], saved[n : 2 * n], saved[2 * n : 3 * n], saved[3 * n :]
        keep = [i for i, g in enumerate(grads) if g is not None]
        grads = [grads[i] for i in keep]
        out, sigmas = [out[i] for i in keep], [sigmas[i] for i in keep]
        # Autograd through W / sigma, sigma = vdot(u, mv(W, v)): W's gradient is g / sigma plus, from
        # sigma, d_sigma * u v^T with d_sigma = sum(-g * ((W / sigma) / sigma)) (W / sigma is ``out``).
        direct = torch._foreach_div(grads, sigmas)
        d_sigma = [p.sum_to_size(()) for p in torch._foreach_mul(grads, torch._foreach_div(out, sigmas))]
        torch._foreach_neg_(d_sigma)
        d_mv = torch._foreach_mul([us[i] for i in keep], d_sigma)
        through_sigma = [
            _from_matrix(ctx.norms[i], torch.outer(d, vs[i]), g)
            for i, d, g in zip(keep, d_mv, grads, strict=True)
        ]
        torch._foreach_add_(direct, through_sigma)
        result: list[torch.Tensor | None] = [None] * n
        for i, g in zip(keep, direct, strict=True):
            result[i] = g
        return (None, *result)


def _normalized(vectors: list[torch.Tensor], eps: float) -> list[torch.Tensor]:
    """F.normalize(v, dim=0, eps=eps) of each vector: v / max(|v|, eps)."""
    lengths = torch._foreach_norm(vectors)
    torch._foreach_clamp_min_(lengths, eps)
    return torch._foreach_div(vectors, lengths)


def _from_matrix(norm: SpectralNorm, grad_mat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The gradient of ``_as_matrix``'s input from that of its output."""
    if norm.dim == 0:
        return grad_mat.reshape(like.shape)
    order = [norm.dim, *(d for d in range(like.ndim) if d != norm.dim)]
    shape = [like.shape[d] for d in order]
    inverse = sorted(range(like.ndim), key=order.__getitem__)
    return grad_mat.reshape(shape).permute(inverse)
