"""Grad-CAM family heat maps of the evaluator: where does it look when it names a class?

Seen side by side for real and generated images of one class, the maps show whether synthetic
images are recognised from the same parts (a thread, a hex edge) as real ones, or from artefacts.
The maps come from pytorch-grad-cam, at the evaluator's last convolutional block (see ``target_layer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# The method's class in pytorch_grad_cam, imported on the first map (it pulls in scipy and OpenCV: seconds
# of app start-up otherwise). ScoreCAM / AblationCAM are left out: hundreds of forward passes per image on a CPU.
CAM_METHODS = {
    "GradCAM": "GradCAM",
    "GradCAM++": "GradCAMPlusPlus",
    "HiResCAM": "HiResCAM",
    "XGradCAM": "XGradCAM",
    "LayerCAM": "LayerCAM",
    "EigenCAM": "EigenCAM",
    "EigenGradCAM": "EigenGradCAM",
}
MIN_MAP_SIZE = 4


def conv_blocks(evaluator) -> list[tuple[str, torch.nn.Module]]:
    """The backbone's convolutional blocks in order, named as in its state dict."""
    backbone = evaluator.backbone
    if evaluator.arch == "mobilenet_v3_small":
        return [(f"features.{i}", block) for i, block in enumerate(backbone.features)]
    if evaluator.arch == "resnet18":
        return [
            (f"{layer}.{i}", block)
            for layer in ("layer2", "layer3", "layer4")
            for i, block in enumerate(getattr(backbone, layer))
        ]
    raise ValueError(f"No Grad-CAM target layer known for evaluator architecture {evaluator.arch!r}.")


@torch.no_grad()
def target_layer(evaluator, min_size: int = MIN_MAP_SIZE) -> tuple[str, torch.nn.Module]:
    """The last convolutional block of the backbone, or at small resolutions the last one whose map is
    at least ``min_size`` pixels wide (mobilenet and resnet reduce 64 px to a 2x2 map: too coarse to show)."""
    blocks = conv_blocks(evaluator)
    sizes: dict[str, int] = {}
    handles = [
        block.register_forward_hook(lambda m, i, out, name=name: sizes.__setitem__(name, out.shape[-1]))
        for name, block in blocks
    ]
    try:
        evaluator.features(
            torch.zeros(1, 3, evaluator.resolution, evaluator.resolution, device=evaluator.device)
        )
    finally:
        for handle in handles:
            handle.remove()
    for name, block in reversed(blocks):
        if sizes.get(name, 0) >= min_size:
            return name, block
    return blocks[-1]


@dataclass
class CamResult:
    overlays: np.ndarray  # uint8 [N, S, S, 3]: image with the heat map on top, at display size
    heatmaps: np.ndarray  # float32 [N, r, r] in [0, 1], at the evaluator's resolution
    probs: np.ndarray  # float32 [N, C]
    targets: list[int]  # the class each map explains
    layer: str  # the backbone block the maps were taken at


def compute_cams(
    evaluator,
    images: torch.Tensor,
    *,
    method: str = "GradCAM",
    target_class: int | None = None,
    display_size: int = 160,
    batch_size: int = 32,
) -> CamResult:
    """Heat maps of uint8 [N, 3, H, W] images for ``target_class`` (None: each image's predicted class).

    The caller holds the evaluator's lock: the CAM hooks are attached to the shared model.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"Unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}.")
    if len(images) == 0:
        raise ValueError("No images to explain.")
    n_classes = len(evaluator.class_names)
    if target_class is not None and not 0 <= target_class < n_classes:
        raise ValueError(f"Target class {target_class} is out of range for {n_classes} classes.")
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    probs, _ = evaluator.predict_uint8(images, batch_size)
    targets = [int(target_class) if target_class is not None else int(p.argmax()) for p in probs]
    maps = []
    layer_name, layer = target_layer(evaluator)
    with getattr(pytorch_grad_cam, CAM_METHODS[method])(model=evaluator, target_layers=[layer]) as cam:
        for start in range(0, len(images), batch_size):
            # The shared weights stay frozen (requires_grad False); the gradient flows from the input instead.
            x = evaluator.prepare_uint8(images[start : start + batch_size]).requires_grad_(True)
            chosen = [ClassifierOutputTarget(t) for t in targets[start : start + batch_size]]
            maps.append(np.asarray(cam(input_tensor=x, targets=chosen), dtype=np.float32))
    evaluator.eval()
    heatmaps = np.concatenate(maps)
    shown = F.interpolate(images.float(), size=(display_size, display_size), mode="bilinear", antialias=True)
    shown = (shown.clamp(0, 255) / 255).permute(0, 2, 3, 1).numpy()
    big = F.interpolate(
        torch.from_numpy(heatmaps)[:, None], size=(display_size, display_size), mode="bilinear"
    )
    big = big[:, 0].clamp(0, 1).numpy()
    overlays = np.stack(
        [show_cam_on_image(img, m, use_rgb=True, image_weight=0.55) for img, m in zip(shown, big)]
    )
    return CamResult(overlays=overlays, heatmaps=heatmaps, probs=probs, targets=targets, layer=layer_name)
