"""How fast can a classifier learn the classes from what D sees during GAN training?

A class-conditional G is only as class-aware as the class signal it is trained against. D's
auxiliary classifier learns on DiffAugment-ed real batches of the GAN's batch size. This script
trains that classifier in isolation (cross-entropy only, no adversarial term) and prints its
accuracy on the held-out real test split, so that variants can be compared cheaply:

  d-sn      D's trunk + its spectrally normalised linear head (what training uses)
  d-plain   the same trunk, a plain linear head
  d-cosine  the same trunk, a cosine head (normalised features and weights, temperature 0.1)
  cnn       a small VGG-style CNN with batch norm and no spectral norm at all

    python benchmarks/class_signal.py --variant d-sn --steps 600
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout

from gan_studio.data import load_labeled_images, make_split, resolve_dataset_source
from gan_studio.models import Discriminator
from gan_studio.models.diffaug import diff_augment, parse_policy


class CosineHead(nn.Module):
    def __init__(self, n_in: int, n_out: int, temperature: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) * 0.02)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t() / self.temperature


class SmallCNN(nn.Module):
    def __init__(self, n_classes: int, width: int = 16):
        super().__init__()

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.1),
            ]

        w = width
        self.net = nn.Sequential(
            *block(3, w, 1),
            *block(w, 2 * w, 2),
            *block(2 * w, 2 * w, 1),
            *block(2 * w, 4 * w, 2),
            *block(4 * w, 4 * w, 1),
            *block(4 * w, 8 * w, 2),
            *block(8 * w, 8 * w, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8 * w, n_classes),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        return self.net(x)


def build(variant: str, resolution: int, n_classes: int, width: int) -> tuple[nn.Module, callable]:
    if variant == "cnn":
        model = SmallCNN(n_classes)
        return model, lambda x, y: model(x)
    D = Discriminator(resolution, n_classes, width, aux_classifier=True)
    n_in = D.classifier.weight.shape[1]
    if variant == "d-plain":
        D.classifier = nn.Linear(n_in, n_classes)
    elif variant == "d-cosine":
        D.classifier = CosineHead(n_in, n_classes)
    elif variant != "d-sn":
        raise SystemExit(f"unknown variant {variant!r}")
    return D, lambda x, y: D(x, y).class_logits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="d-sn", choices=["d-sn", "d-plain", "d-cosine", "cnn"])
    p.add_argument("--data", default="demo")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--width", type=int, default=24, help="D width (as --ndf in training)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--eval-every", type=int, default=150)
    p.add_argument("--policy", default="color,translation,cutout", help="DiffAugment policy")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    data = load_labeled_images(resolve_dataset_source(args.data), args.res, progress=False)
    train_idx, test_idx = make_split(data.records, test_fraction=0.3, seed=0).indices(data.records)
    train, test = data.subset(train_idx), data.subset(test_idx)
    model, logits_of = build(args.variant, args.res, len(data.class_names), args.width)
    policy = parse_policy(args.policy)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(0)

    def test_accuracy() -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(test), 200):
                x = test.images[i : i + 200].float().div(127.5).sub(1)
                y = test.labels[i : i + 200]
                correct += (logits_of(x, y).argmax(1) == y).sum().item()
        model.train()
        return correct / len(test)

    print(f"{args.variant}: {len(train)} train / {len(test)} test images, batch {args.batch}, lr {args.lr}")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(train), (args.batch,), generator=rng)
        x = diff_augment(train.images[idx].float().div(127.5).sub(1), policy)
        y = train.labels[idx]
        loss = F.cross_entropy(logits_of(x, y), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            print(
                f"step {step:5d}  train loss {loss.item():.3f}  test accuracy {test_accuracy():.3f}  "
                f"({(time.perf_counter() - start) / step:.3f} s/step)",
                flush=True,
            )


if __name__ == "__main__":
    main()
