"""How many operators one training step dispatches: the launch count that bounds a small GPU step.

On a GPU a step of the shipped 64 px recipe is not limited by arithmetic but by how many kernels
Python launches one after another. Each top-level aten operator (one not called from inside another
aten operator: what Python and the autograd engine dispatch) is at least one launch, so their count,
taken with the torch profiler on the CPU, tracks a GPU step's launch overhead without a GPU.
``benchmarks/count_step_ops.py`` prints it for the recipes; ``tests/test_operator_count.py`` bounds it.
"""

from __future__ import annotations

from collections import Counter

from torch.profiler import ProfilerActivity, profile


def top_level_operators(run) -> Counter:
    """The top-level aten operators that ``run()`` dispatches, by name (CPU profiler)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    counts: Counter = Counter()
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        if parent is None:
            counts[event.name] += 1
    return counts


def step_operators(trainer, warmup: int = 1) -> Counter:
    """The top-level operators of one training step as ``Trainer.fit`` runs it
    (``step_on_device``), after ``warmup`` steps (the first builds what later steps reuse:
    optimiser state, the MMD terms' real feature banks; a compiled step compiles then)."""
    step = getattr(trainer, "step_on_device", None) or trainer.train_step  # (train_step: older code)
    for _ in range(warmup):
        step()
        trainer.step += 1
    return top_level_operators(step)
