"""What a coarse look tells apart: global brightness, background colour, where the part sits and how large.

`evaluate --c2st-coarse 8` says whether samples are told from the real images with only 8 x 8 pixels of
each left; this script says what differs at that scale, real train images against samples, per image:

- brightness: the image's mean (0..1); background: the median colour of its 2-pixel border;
- the part's silhouette (benchmarks/pose_spread.py's: what differs from the border colour), its area
  as a fraction of the image, its centre and its mean colour (grey or white when its channels lie
  within 0.08 of each other);
- and a linear probe (logistic regression, 5-fold) telling the two sides apart on the images reduced
  to 8, 4 and 2 pixels: a high c2st with a low probe means no single coarse statistic gives them away.

Spreads are standard deviations over images (area: within each class, then averaged over classes).

    python benchmarks/coarse_layout.py --ckpt RUN_OR_PACKAGE [--ckpt OTHER ...] --n-per-class 140
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NEUTRAL = 0.08  # a part whose mean colour's channels lie within this of each other is grey or white
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def layout(images: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """The coarse statistics of uint8 [N, H, W, 3] images of classes ``labels``."""
    from pose_spread import silhouettes

    x = images.astype(np.float32) / 255
    n, h, w, _ = x.shape
    border = np.concatenate([x[:, :2].reshape(n, -1, 3), x[:, -2:].reshape(n, -1, 3),
                             x[:, :, :2].reshape(n, -1, 3), x[:, :, -2:].reshape(n, -1, 3)], 1)  # fmt: skip
    masks = silhouettes(images)
    area = masks.mean(axis=(1, 2))
    ys, xs = np.mgrid[0:h, 0:w]
    weight = np.maximum(masks.sum(axis=(1, 2)), 1)
    centre = np.stack([(masks * ys).sum(axis=(1, 2)) / weight, (masks * xs).sum(axis=(1, 2)) / weight], 1)
    classes = np.unique(labels)
    part = (x * masks[..., None]).sum(axis=(1, 2)) / weight[:, None]  # the part's mean colour
    neutral = part.max(axis=1) - part.min(axis=1) < NEUTRAL
    return {
        "brightness spread": float(x.mean(axis=(1, 2, 3)).std()),
        "background spread (R/G/B)": np.median(border, axis=1).std(0),
        "centre spread (y/x, px)": centre.std(0),
        "area spread within a class": float(np.mean([area[labels == c].std() for c in classes])),
        "area per class": np.array([area[labels == c].mean() for c in classes]),
        "part colour spread (R/G/B)": part.std(0),
        "share of grey or white parts": float(neutral.mean()),
        "grey or white parts per class": np.array([neutral[labels == c].mean() for c in classes]),
    }


def probe(real: np.ndarray, fake: np.ndarray, pixels: int) -> float:
    """5-fold accuracy of a logistic regression telling the sides apart at ``pixels`` x ``pixels``."""
    import torch
    import torch.nn.functional as F
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    def small(images: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        return F.interpolate(t, size=(pixels, pixels), mode="bilinear", antialias=True).flatten(1).numpy()

    features = np.concatenate([small(real), small(fake)])
    sides = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    return float(cross_val_score(LogisticRegression(max_iter=3000, C=10), features, sides, cv=5).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", action="append", required=True, type=Path, help="run folder or package")
    parser.add_argument("--n-per-class", type=int, default=140, help="samples per class (seeds 0..n-1)")
    args = parser.parse_args()
    import torch

    from gan_studio.data import load_labeled_images, load_split
    from gan_studio.evaluation.commands import package_dir, real_data_source
    from gan_studio.sampling import generate, load_generator

    torch.set_num_threads(1)
    rows, real = {}, None
    for ckpt_dir in args.ckpt:
        G, info = load_generator(ckpt_dir, device="cpu")
        if real is None:  # the real train images of the first model's run, as c2st sees them
            record = info.run_dir or package_dir(ckpt_dir)
            source, fit = real_data_source(None, record, ckpt_dir)
            data = load_labeled_images(source, G.resolution, fit=fit, progress=False)
            train, _ = load_split(Path(record) / "split.json").indices(data.records)
            real = data.subset(train)
            real_images = real.images.permute(0, 2, 3, 1).numpy()
            rows["real train"] = layout(real_images, np.asarray(real.labels))
        labels = np.array([c for c in range(G.n_classes) for _ in range(args.n_per_class)])
        seeds = [i for _ in range(G.n_classes) for i in range(args.n_per_class)]
        fakes = generate(G, labels.tolist(), seeds).permute(0, 2, 3, 1).numpy()
        label = f"{ckpt_dir.name}@{info.step}"
        rows[label] = layout(fakes, labels)
        probes = ", ".join(f"{px} px {probe(real_images, fakes, px):.3f}" for px in (8, 4, 2))
        print(f"{label}: linear probe real vs generated: {probes}")
    print(f"\nclasses: {', '.join(G.class_names)}")
    for key in rows["real train"]:
        print(f"\n{key}")
        for label, stats in rows.items():
            print(f"  {label:28s} {np.round(stats[key], 3)}")


if __name__ == "__main__":
    main()
