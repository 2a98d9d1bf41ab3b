"""The run's networks as its config describes them, and G started from a saved generator
(``--init-generator``, fine-tuning)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from gan_studio.models import Discriminator, Generator


def build_networks(config, class_names: list[str]) -> tuple[Generator, Discriminator]:
    n = len(class_names)
    G = Generator(
        resolution=config.resolution,
        n_classes=n,
        class_names=class_names,
        z_dim=config.z_dim,
        width=config.g_width,
        embed_dim=config.embed_dim,
        spectral_norm=config.g_spectral_norm,
    )
    D = Discriminator(
        resolution=config.resolution,
        n_classes=n,
        width=config.d_width,
        aux_classifier=config.class_loss > 0,
        widths=config.d_widths,
        group_size=config.class_group_size,
    )
    return G, D


def load_initial_generator(G: Generator, source: str) -> None:
    """Copy a saved generator's weights into G (before the EMA copy is made): fine-tuning."""
    from gan_studio.training.generator_loading import load_generator

    G_init, _ = load_generator(source, device="cpu")
    differ = [
        f"{name}: {getattr(G_init, name)!r} there, {getattr(G, name)!r} here"
        for name in ("resolution", "z_dim", "class_names")
        if getattr(G_init, name) != getattr(G, name)
    ]
    theirs, mine = G_init.state_dict(), G.state_dict()
    if not differ and (theirs.keys() != mine.keys() or any(theirs[k].shape != mine[k].shape for k in mine)):
        differ.append("layer widths differ (--ngf, embedding size or spectral norm)")
    if differ:
        raise ValueError(
            f"--init-generator '{source}' does not fit this run ({'; '.join(differ)}). Train with "
            "the same --res, --ngf, --z-dim and dataset classes as that generator."
        )
    G.load_state_dict(G_init.state_dict())


def compiled(module: torch.nn.Module, device: torch.device) -> Callable:
    """``torch.compile(module)`` for training (--compile): its forward and backward passes fused
    into fewer, larger kernels, replayed as CUDA graphs on GPUs. Random draws (noise injection) use
    torch's own generators in the eager order (inductor's ``fallback_random``), so that a compiled
    run follows the eager one within float rounding. The module itself stays as it is (its
    state-dict keys, the EMA copy and checkpoints do not change); shapes are fixed for a run."""
    options = {"fallback_random": True, "triton.cudagraphs": device.type == "cuda"}
    return torch.compile(module, options=options)
