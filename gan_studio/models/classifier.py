"""The evaluator: a torchvision classifier whose penultimate layer is GAN Studio's feature space.

CAS, FID/KID, precision/recall, diversity, memorisation, UMAP and curation all measure distances in
this one space, so it is trained on the real *train* split only (never a test image) and saved with
``save_pretrained``: config.json (architecture, class names, resolution, input normalisation) plus
model.safetensors, and training.json with the split and the test scores it reached.

Inputs follow the GAN convention, float images in [-1, 1]; the model maps them to the normalisation
its backbone expects, so ImageNet-pretrained torchvision weights (``--weights``) can be used as is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from tqdm.auto import tqdm

from gan_studio.device import autocast, pick_device, resolve_precision

ARCHITECTURES = ("mobilenet_v3_small", "resnet18", "vgg16")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what torchvision's pretrained weights expect
IMAGENET_STD = (0.229, 0.224, 0.225)
TRAINING_FILE = "training.json"


def default_stem_stride(resolution: int) -> int:
    """1 for images of 64 px or less, else torchvision's 2.

    Every network here shrinks its input 32x; a 64 px image would end as a 2x2 map, too coarse to tell
    parts apart by shape. A stride-1 stem (the usual CIFAR adaptation) keeps 4x4 at 4x the compute.
    """
    return 1 if resolution <= 64 else 2


def _build_backbone(arch: str, stem_stride: int = 2) -> tuple[nn.Module, int, str]:
    """torchvision's network with its last Linear swapped for Identity, so its output is the features.

    ``stem_stride`` sets the stride of the first convolution (no parameter changes, so local
    torchvision weights still load). Returns (backbone, feature size, the state-dict prefix of the
    removed head).
    """
    if stem_stride not in (1, 2):
        raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
    import torchvision  # here, not at the top: it imports torch._dynamo, seconds of app start-up

    if arch == "mobilenet_v3_small":
        net = torchvision.models.mobilenet_v3_small(weights=None)
        dim = net.classifier[-1].in_features  # 1024: after Linear(576, 1024) + Hardswish
        net.classifier[-1] = nn.Identity()
        net.features[0][0].stride = (stem_stride, stem_stride)
        return net, dim, "classifier.3."
    if arch == "resnet18":
        net = torchvision.models.resnet18(weights=None)
        dim = net.fc.in_features  # 512: global-average-pooled layer4
        net.fc = nn.Identity()
        net.conv1.stride = (stem_stride, stem_stride)
        return net, dim, "fc."
    if arch == "vgg16":  # the original study's second network
        net = torchvision.models.vgg16(weights=None)
        dim = net.classifier[-1].in_features  # 4096: after the second fully connected layer
        net.classifier[-1] = nn.Identity()
        # The stem stride drops the first max-pool (VGG has no strided convolution): a 64 px image
        # then ends as a 4x4 map, not 2x2. The 7x7 adaptive pool keeps the head's shape either way.
        if stem_stride == 1:
            net.features[4] = nn.Identity()
        return net, dim, "classifier.6."
    raise ValueError(f"Unknown evaluator architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}")


class EvaluatorClassifier(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gan-studio",
    tags=["gan-studio", "image-classification", "evaluator"],
):
    """Classifier over ``class_names``; ``features`` gives the penultimate-layer embedding."""

    def __init__(
        self,
        class_names: Sequence[str],
        arch: str = "mobilenet_v3_small",
        resolution: int = 64,
        normalize_mean: Sequence[float] = IMAGENET_MEAN,
        normalize_std: Sequence[float] = IMAGENET_STD,
        stem_stride: int = 2,
    ):
        super().__init__()
        if len(class_names) < 2:
            raise ValueError("The evaluator needs at least two class names.")
        if not 16 <= int(resolution) <= 1024:
            raise ValueError(f"Evaluator resolution must be between 16 and 1024 pixels, got {resolution}.")
        self.arch = arch
        self.class_names = list(class_names)
        self.resolution = int(resolution)
        self.stem_stride = int(stem_stride)
        self.backbone, self.num_features, self._head_prefix = _build_backbone(arch, self.stem_stride)
        self.head = nn.Linear(self.num_features, len(self.class_names))
        mean = torch.tensor(normalize_mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(normalize_std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features of float images in [-1, 1], shape [N, num_features]."""
        return self.backbone(((x + 1) / 2 - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of float images in [-1, 1]."""
        return self.head(self.features(x))

    def prepare_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, H, W] -> float [-1, 1] at the evaluator's resolution, on its device."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"Expected uint8 images of shape [N, 3, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        return self.fit_resolution(images.to(self.device, non_blocking=True).float().div(127.5).sub(1))

    def fit_resolution(self, x: torch.Tensor) -> torch.Tensor:
        """Float images resized (differentiably) to the classifier's resolution, when they differ."""
        if x.shape[-2:] != (self.resolution, self.resolution):
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", antialias=True)
        return x

    @torch.no_grad()
    def predict_uint8(
        self,
        images: torch.Tensor,
        batch_size: int = 256,
        *,
        precision: str = "fp32",
        progress: bool = False,
        desc: str = "evaluator",
        on_batch: Callable[[int, int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities [N, C] and features [N, D] (float32 numpy) of uint8 images, in eval mode;
        ``on_batch(done, total)`` after each batch."""
        was_training = self.training
        self.eval()
        precision = resolve_precision(precision, self.device)
        probs, feats = [], []
        try:
            for start in tqdm(
                range(0, len(images), batch_size), desc=desc, unit="batch", disable=not progress
            ):
                x = self.prepare_uint8(images[start : start + batch_size])
                with autocast(self.device, precision):
                    f = self.features(x)
                    logits = self.head(f)
                probs.append(logits.float().softmax(dim=1).cpu())
                feats.append(f.float().cpu())
                if on_batch is not None:
                    on_batch(min(start + batch_size, len(images)), len(images))
        finally:
            self.train(was_training)
        if not probs:  # no images
            probs, feats = [torch.zeros(0, len(self.class_names))], [torch.zeros(0, self.num_features)]
        return torch.cat(probs).numpy(), torch.cat(feats).numpy()

    @torch.no_grad()
    def recalibrate_batchnorm(
        self, images: torch.Tensor, *, batch_size: int = 256, max_images: int = 4096, seed: int = 0
    ) -> None:
        """Re-estimate every BatchNorm's statistics for the current weights on clean uint8 images.

        torchvision's MobileNetV3 moves its running statistics with momentum 0.01, so after a short
        training budget they still describe the random initialisation and eval-mode predictions
        collapse onto one class. One pass with exact averages ("precise BN") fixes that for any budget.
        """
        if len(images) > max_images:
            images = images[
                torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:max_images]
            ]
        batches = (self.prepare_uint8(images[i : i + batch_size]) for i in range(0, len(images), batch_size))
        torch.optim.swa_utils.update_bn(batches, self)  # restores train/eval mode itself

    def load_local_backbone_weights(self, path: str | os.PathLike) -> None:
        """Initialise the backbone from a torchvision state dict on disk (e.g. ImageNet weights).

        The classification head is skipped (its class count differs); every other tensor must match,
        otherwise the file is for another architecture and we say so instead of half-loading it.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Backbone weights '{path}' do not exist. Pass a torchvision state-dict file."
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
            raise ValueError(
                f"Cannot read backbone weights '{path}' ({error}). Pass a torchvision state dict saved with "
                "torch.save(model.state_dict(), path) or a file from download.pytorch.org/models."
            ) from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(
                f"Backbone weights '{path}' are not a state dict (a mapping of names to tensors)."
            )
        state = {
            k.removeprefix("module."): v for k, v in state.items() if not k.startswith(self._head_prefix)
        }
        expected = self.backbone.state_dict()
        wrong_shape = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if wrong_shape or missing or unexpected:
            details = "; ".join(
                f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                for what, keys in (
                    ("wrong shape", wrong_shape),
                    ("missing", missing),
                    ("unexpected", unexpected),
                )
                if keys
            )
            raise ValueError(
                f"Backbone weights '{path}' do not fit torchvision's {self.arch} ({details}). "
                f"Pass weights of a torchvision {self.arch}, or choose the matching --arch."
            )
        self.backbone.load_state_dict(state)


def save_evaluator(
    model: EvaluatorClassifier, out_dir: str | os.PathLike, *, training: dict[str, Any]
) -> Path:
    """save_pretrained + training.json; each file lands with os.replace, so readers never see half a file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".save-", dir=out_dir))
    try:
        model.save_pretrained(staging)
        (staging / TRAINING_FILE).write_text(json.dumps(training, indent=2, ensure_ascii=False) + "\n")
        for item in staging.iterdir():
            os.replace(item, out_dir / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def load_evaluator(path: str | os.PathLike, device: str | torch.device | None = None) -> EvaluatorClassifier:
    """Load a saved evaluator from a local folder (never the Hub), in eval mode."""
    path = Path(path).expanduser()
    fix = "Train one with: python -m gan_studio train-evaluator --data DIR --out EVAL_DIR"
    if not path.is_dir():
        raise FileNotFoundError(f"Evaluator folder '{path}' does not exist. {fix}")
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"'{path / name}' is missing, so '{path}' is not a saved evaluator. {fix}"
            )
    model = EvaluatorClassifier.from_pretrained(path, strict=True)
    device = pick_device() if device is None else torch.device(device)
    return model.to(device).eval()


def read_training_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """training.json of a saved evaluator (split, budget, test scores), or None when absent."""
    file = Path(path) / TRAINING_FILE
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
