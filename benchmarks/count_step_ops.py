"""Top-level operators of one training step (torch profiler, CPU), the launch count that bounds a
small GPU step (``gan_studio/training/op_count.py``).

    python benchmarks/count_step_ops.py                          # the shipped 64 px recipe, batch 16
    python benchmarks/count_step_ops.py --recipe tiny --batch 8
    python benchmarks/count_step_ops.py --guide                  # its guided phase (a random guide)
    python benchmarks/count_step_ops.py --top 25                 # and the most frequent operators
    python benchmarks/count_step_ops.py --compile                # the compiled step (compiles first)

The recipe's [config] at step 0 (``--guide`` adds the guided phase's options, with a randomly
initialised ResNet-18 guide: the same operators, meaningless values) on the demo data, fp32.
With ``--compile`` the count is of the aten operators left: those outside the compiled graphs and
those the graphs call (convolutions, matrix products, random draws); inductor's fused C++ kernels
are not aten operators and are not counted (on a GPU, its Triton kernels replay as CUDA graphs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def random_guide(folder: Path, class_names: list[str], resolution: int, arch: str) -> str:
    import torch

    from gan_studio.evaluation.classifier import EvaluatorClassifier, save_evaluator

    torch.manual_seed(0)
    model = EvaluatorClassifier(class_names, arch=arch, resolution=resolution, stem_stride=2)
    training = {"data": {"source": "demo", "resolution": resolution}, "arch": arch, "stem_stride": 2}
    return str(save_evaluator(model.eval(), folder, training=training))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="photos-cpu-64")
    parser.add_argument("--batch", type=int, default=0, help="0: the recipe's")
    parser.add_argument("--res", type=int, default=0, help="0: the recipe's")
    parser.add_argument("--guide", action="store_true", help="the recipe's first guided phase")
    parser.add_argument("--compile", action="store_true", help="count the compiled step's operators")
    parser.add_argument("--top", type=int, default=0, help="also list the N most frequent operators")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    import torch

    from gan_studio.data.demo import make_demo_dataset
    from gan_studio.training.config import TrainConfig
    from gan_studio.training.loop import Trainer
    from gan_studio.training.op_count import step_operators
    from gan_studio.training.recipes import load_recipe

    torch.set_num_threads(1)
    recipe = load_recipe(args.recipe)
    with tempfile.TemporaryDirectory() as tmp:
        values = dict(recipe.config)
        values.update(
            resolution=args.res or values["resolution"],
            batch=args.batch or values["batch"],
            precision="fp32",
            sample_every=0,
            ckpt_every=0,
        )
        data = make_demo_dataset(Path(tmp) / "data", per_class=8, size=64, seed=0, progress=False)
        if args.guide:
            phase = recipe.phases[0].changes
            values.update({k: v for k, v in phase.items() if k != "guide"})
            names = sorted(p.name for p in data.iterdir() if p.is_dir())
            arch = recipe.guide.arch if recipe.guide else "resnet18"
            values["guide"] = random_guide(Path(tmp) / "guide", names, values["resolution"], arch)
        if args.compile:
            values["compile"] = "on"
        config = TrainConfig(**{**values, "data": str(data), "out": str(Path(tmp) / "run")})
        # A compiled step compiles in its first two steps (D's part decoder recompiles for any quarter).
        counts = step_operators(Trainer(config, progress=False), warmup=3 if args.compile else 1)
    shown = {k: values[k] for k in ("resolution", "batch", "g_width", "class_group_size")}
    shown.update(guide=args.guide, compile=args.compile)
    print(json.dumps({"recipe": args.recipe, **shown, "operators": counts.total()}))
    for name, n in counts.most_common(args.top):
        print(f"{n:6d}  {name}")


if __name__ == "__main__":
    main()
