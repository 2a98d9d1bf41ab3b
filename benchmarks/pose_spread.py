"""Pose and position variety inside each class, blind to colour: real test images against samples.

The evaluator-feature spread (`evaluate`'s diversity) mixes pose with colour, shading and background,
so a generator that draws one pose per class in many colours still scores high on it. This script
looks at silhouettes only. On photos of one object on a plain-ish background (the built-in
vise-parts data, COIL-100), the object is what differs from the image border's median colour:

- mask variety: 1 - mean pairwise IoU of the silhouettes within a class (0: every image has the
  same silhouette in the same place; near 1: no two overlap);
- orientation spread: 1 - |weighted mean of exp(2i*theta)| over the silhouettes' principal axes,
  weighted by elongation (0: one orientation; 1: all orientations equally);
- position spread: standard deviation of the silhouette centroid, as a fraction of the image side.

The silhouettes are rough: a light-grey part on light wood can lose pieces, shadows join in. Real
images go through the same code, so read the figures against the real row, not as absolutes.

    python benchmarks/pose_spread.py --ckpt RUN_OR_PACKAGE [--ckpt OTHER ...] --n-per-class 40
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]


def silhouettes(images: np.ndarray, min_contrast: float = 40.0) -> np.ndarray:
    """Boolean masks [N, H, W] of what differs from each image's border colour (uint8 [N, H, W, 3])."""
    x = images.astype(np.float32)
    border = np.concatenate(
        [
            x[:, :2].reshape(len(x), -1, 3),
            x[:, -2:].reshape(len(x), -1, 3),
            x[:, :, :2].reshape(len(x), -1, 3),
            x[:, :, -2:].reshape(len(x), -1, 3),
        ],
        1,
    )
    background = np.median(border, axis=1)[:, None, None, :]
    distance = np.linalg.norm(x - background, axis=-1)
    # Per image: the larger of a fixed floor and the midpoint between background and object.
    threshold = np.maximum(min_contrast, 0.5 * np.percentile(distance, 99, axis=(1, 2)))
    masks = distance > threshold[:, None, None]
    # A part close to the table's colour shows only its outline and shading: fill it in.
    return np.stack([ndimage.binary_fill_holes(m) for m in masks])


def shape_stats(masks: np.ndarray) -> dict[str, float]:
    n, h, w = masks.shape
    flat = masks.reshape(n, -1).astype(np.float32)
    inter = flat @ flat.T
    area = flat.sum(1)
    union = area[:, None] + area[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    off_diagonal = iou[~np.eye(n, dtype=bool)]
    ys, xs = np.mgrid[0:h, 0:w]
    angles, weights, centroids = [], [], []
    for m in masks:
        if m.sum() < 4:
            continue
        y, x = ys[m].astype(np.float64), xs[m].astype(np.float64)
        cy, cx = y.mean(), x.mean()
        cov = np.cov(np.stack([x - cx, y - cy]))
        eig = np.linalg.eigvalsh(cov)
        angles.append(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1]))
        weights.append((eig[1] - eig[0]) / max(eig.sum(), 1e-9))
        centroids.append((cx / w, cy / h))
    weights_a = np.asarray(weights)
    resultant = np.abs((weights_a * np.exp(2j * np.asarray(angles))).sum()) / max(weights_a.sum(), 1e-9)
    centroids_a = np.asarray(centroids)
    return {
        "mask_variety": float(1.0 - off_diagonal.mean()),
        "orientation_spread": float(1.0 - resultant),
        "position_spread": float(np.sqrt(centroids_a.var(0).sum())) if len(centroids_a) > 1 else 0.0,
        "mask_fraction": float(area.mean() / (h * w)),
    }


def real_images(package_or_run: Path, resolution: int, per_class: int, class_names: list[str]):
    from gan_studio.data.folder import load_image, resolve_dataset_source
    from gan_studio.training import checkpoint as ckpt

    run = ckpt.read_json(package_or_run / "run.json")
    root = resolve_dataset_source(run["config"]["data"])
    test = ckpt.read_json(package_or_run / "split.json")["test"]
    by_class = {}
    for name in class_names:
        paths = sorted(p for p in test if p.split("/")[0] == name)[:per_class]
        by_class[name] = np.stack([load_image(root / p, resolution, run["config"]["fit"]) for p in paths])
    return by_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", action="append", required=True, type=Path, help="run folder or package")
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import torch

    from gan_studio.sampling import generate, load_generator, resolve_generator_dir

    torch.set_num_threads(1)
    rows = {}
    for ckpt_dir in args.ckpt:
        G, info = load_generator(ckpt_dir, device="cpu")
        n = args.n_per_class
        labels = [c for c in range(G.n_classes) for _ in range(n)]
        fakes = generate(G, labels, list(range(len(labels)))).permute(0, 2, 3, 1).numpy()
        fake_stats = {
            name: shape_stats(silhouettes(fakes[c * n : (c + 1) * n])) for c, name in enumerate(G.class_names)
        }
        if "real" not in rows:
            run_dir = resolve_generator_dir(ckpt_dir)[1]
            package = ckpt_dir if (ckpt_dir / "run.json").is_file() else run_dir
            reals = real_images(package, G.resolution, n, G.class_names)
            rows["real"] = {name: shape_stats(silhouettes(reals[name])) for name in G.class_names}
        rows[f"{ckpt_dir.name}@{info.step}"] = fake_stats

    keys = ["mask_variety", "orientation_spread", "position_spread"]
    names = list(rows["real"])
    for key in keys:
        print(f"\n{key} (per class: {', '.join(names)})")
        for label, stats in rows.items():
            values = [stats[c][key] for c in names]
            print(f"  {label:28s} mean {np.mean(values):.3f} | " + " ".join(f"{v:.2f}" for v in values))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
