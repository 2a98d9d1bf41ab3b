"""Time one training iteration of the *official* FastGAN code on this machine (the issue-2 anchor).

The anchor figure in ANCHORS.md (12.7 s per iteration at 256 px) was measured on a different CPU,
so the honest comparison for ``train_throughput.py`` is the official networks timed here, on the
same cores and torch build. The official code (GPL-3.0) is not part of this project: clone it
yourself and pass its folder; this script imports its ``models.py`` and drives those networks
through the iteration its ``train.py`` runs (G forward, D on augmented reals with three
reconstruction losses, D on detached fakes, G step through D, EMA of G), on the CPU or a GPU
(``--device cuda``), in fp32 or under bf16 autocast (``--precision bf16``):

    git clone https://github.com/odegeasslbc/FastGAN-pytorch /tmp/official
    python benchmarks/anchor_fastgan_step.py --official-repo /tmp/official --recon lpips
    python benchmarks/anchor_fastgan_step.py --official-repo /tmp/official --recon mse

``--recon lpips`` is the official default (LPIPS-VGG); its VGG weights cannot be downloaded
offline, so the backbone is randomly initialised (``lpips.LPIPS(pretrained=False,
pnet_rand=True)``): the same arithmetic, meaningless values. ``--recon mse`` is the comparison at
equal loss (ours uses MSE). Augmentation is this project's ``diff_augment`` (color, translation),
which is the same operation as the official ``DiffAugment``.

``--compile`` wraps both official networks in ``torch.compile`` (the official code has no such
option): the fair partner of our ``--compile on`` step. Give it enough ``--warmup`` iterations to
compile every variant (D's four reconstruction quarters, real and fake).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--official-repo", type=Path, required=True, help="clone of odegeasslbc/FastGAN-pytorch"
    )
    parser.add_argument("--recon", choices=["lpips", "mse"], default="lpips")
    parser.add_argument("--res", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=64, help="ngf = ndf")
    parser.add_argument("--nz", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast around the passes"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile both networks (warm-up iterations compile)"
    )
    args = parser.parse_args()

    models_py = args.official_repo / "models.py"
    if not models_py.is_file():
        sys.exit(f"{models_py} not found: pass the folder of a clone of the official FastGAN repository.")
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(args.official_repo))
    import models  # the official networks

    from gan_studio.models.diffaug import diff_augment

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    random.seed(0)
    net_g = models.Generator(ngf=args.width, nz=args.nz, im_size=args.res)
    net_d = models.Discriminator(ndf=args.width, im_size=args.res)
    net_g.apply(models.weights_init)
    net_d.apply(models.weights_init)
    device = torch.device(args.device)
    net_g.to(device)
    net_d.to(device)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    def passes():
        return torch.autocast(device.type, dtype=dtype, enabled=args.precision == "bf16")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    run_g, run_d = (torch.compile(net_g), torch.compile(net_d)) if args.compile else (net_g, net_d)
    avg_param_g = [p.detach().clone() for p in net_g.parameters()]
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    if args.recon == "lpips":
        import lpips

        perceptual = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
        perceptual.requires_grad_(False)
        perceptual.to(device)

        def recon(a, b):
            return perceptual(a, b).sum()
    else:

        def recon(a, b):
            return F.mse_loss(a, b, reduction="sum") / a.shape[0] / a[0].numel()

    real_pool = torch.rand(args.batch * 4, 3, args.res, args.res, device=device) * 2 - 1
    policy = "color,translation"

    def crop_part(image, part):
        h = image.shape[2] // 2
        row, col = divmod(part, 2)
        return image[:, :, row * h : (row + 1) * h, col * h : (col + 1) * h]

    def iteration(i: int) -> None:
        start = (i * args.batch) % real_pool.shape[0]
        real = diff_augment(real_pool[start : start + args.batch], policy)
        noise = torch.randn(args.batch, args.nz, device=device)
        with passes():
            fakes = [diff_augment(f, policy) for f in run_g(noise)]

        net_d.zero_grad()
        part = random.randint(0, 3)
        with passes():
            pred, (rec_all, rec_small, rec_part) = run_d(real, "real", part=part)
            err = (
                F.relu(torch.rand_like(pred) * 0.2 + 0.8 - pred).mean()
                + recon(rec_all, F.interpolate(real, rec_all.shape[2]))
                + recon(rec_small, F.interpolate(real, rec_small.shape[2]))
                + recon(rec_part, F.interpolate(crop_part(real, part), rec_part.shape[2]))
            )
        err.backward()
        with passes():
            pred = run_d([f.detach() for f in fakes], "fake")
            loss_fake = F.relu(torch.rand_like(pred) * 0.2 + 0.8 + pred).mean()
        loss_fake.backward()
        opt_d.step()

        net_g.zero_grad()
        with passes():
            loss_g = -run_d(fakes, "fake").mean()
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for p, avg in zip(net_g.parameters(), avg_param_g):
                avg.mul_(0.999).add_(0.001 * p)

    t0 = time.perf_counter()
    for i in range(args.warmup):
        iteration(i)
    sync()
    warmup_s = time.perf_counter() - t0
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        iteration(args.warmup + i)
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(
        json.dumps(
            {
                "system": "official FastGAN networks",
                "recon": args.recon,
                "device": str(device),
                "precision": args.precision,
                "compiled": args.compile,
                "warmup_s": round(warmup_s, 1),
                "images_per_s": round(args.batch * len(times) / sum(times), 2),
                "res": args.res,
                "batch": args.batch,
                "width": args.width,
                "threads": torch.get_num_threads(),
                "s_per_step_mean": round(sum(times) / len(times), 3),
                "s_per_step_best": round(times[0], 3),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                "g_params_m": round(sum(p.numel() for p in net_g.parameters()) / 1e6, 1),
                "d_params_m": round(sum(p.numel() for p in net_d.parameters()) / 1e6, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
