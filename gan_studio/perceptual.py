"""LPIPS, only when its backbone weights are already on disk (it cannot be downloaded offline).

LPIPS needs torchvision's ImageNet-pretrained VGG16/AlexNet under ``$TORCH_HOME/hub/checkpoints``.
We check for the file first and never trigger a download: callers fall back to a clearly labelled
alternative when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import torch

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


def backbone_path(net: str = "vgg") -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]


def lpips_available(net: str = "vgg") -> bool:
    return backbone_path(net).is_file()


def available_backbone(preferred: tuple[str, ...] = ("vgg", "alex")) -> str | None:
    """The first LPIPS backbone whose weights are on disk, or None."""
    return next((net for net in preferred if lpips_available(net)), None)


def load_lpips(net: str | None = None) -> torch.nn.Module:
    """LPIPS with the given backbone (default: VGG if its weights are present, else AlexNet)."""
    net = net or available_backbone() or "vgg"
    if not lpips_available(net):
        raise FileNotFoundError(
            f"LPIPS needs the ImageNet weights of its {net} backbone at '{backbone_path(net)}', which cannot be "
            "downloaded here. Copy that file there (or set TORCH_HOME), or use --recon-loss mse."
        )
    import lpips

    model = lpips.LPIPS(net=net, verbose=False).eval()
    model.requires_grad_(False)
    return model
