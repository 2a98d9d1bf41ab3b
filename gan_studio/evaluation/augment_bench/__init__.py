"""The augmentation experiment: does adding GAN images to a small real training set help a classifier?

Every arm trains the same classifier from scratch with the same budget (``train_classifier``: the same
steps of the same batch size), on its own training set, and is scored on the same held-out real test split:

    real                    the real training images only
    real+classic            the same, with flip / crop / colour-jitter augmentation
    real+syn@r              real + round(r x real count) synthetic images of every class
    real+classic+syn@r      both
    real+syn_filtered@r     real + synthetic images the evaluator gives their intended class with
                            confidence >= a threshold (more candidates are drawn until the quota is met)

Honesty rules: the arms get the real images the GAN trained on (the run's train_files.json), and the
bench says loudly when the GAN saw more real images than the arms, because synthetic images then carry
real information the real-only baseline never had. Results are rewritten after every finished
(arm, seed), so an interrupted bench keeps what it measured and a rerun into the same folder trains only
the missing pairs. The synthetic images are saved with a manifest, so any arm can be rebuilt exactly.

    arms       arm kinds, name and ratio parsing, per-class quotas
    config     AugmentBenchConfig and its checks
    real_data  the real train and test images, and the leak warnings
    synthetic  the seeded synthetic stream, its filter, and the manifest
    results    results.json / results.csv, resumable
    report     summary table, accuracy plot, summary.md
    runner     AugmentBench: the loop over (arm, seed)
"""

from gan_studio.evaluation.augment_bench.arms import (
    ARM_KINDS,
    BASELINE_KINDS,
    DEFAULT_RATIOS,
    Arm,
    parse_arms,
    parse_ratios,
    synthetic_quota,
)
from gan_studio.evaluation.augment_bench.config import AugmentBenchConfig
from gan_studio.evaluation.augment_bench.real_data import RealData, load_real_data
from gan_studio.evaluation.augment_bench.report import (
    PLOT_HTML,
    PLOT_PNG,
    SUMMARY_MD,
    accuracy_figure,
    summarize,
    summary_markdown,
    write_bench_report,
)
from gan_studio.evaluation.augment_bench.results import (
    RESULTS_CSV,
    RESULTS_JSON,
    RESULTS_VERSION,
    BenchResults,
    results_csv,
)
from gan_studio.evaluation.augment_bench.runner import AugmentBench, run_augment_bench
from gan_studio.evaluation.augment_bench.synthetic import (
    SEED_STRIDE,
    SYNTHETIC_DIR,
    Candidate,
    SyntheticPool,
    draw_synthetic_pool,
    write_synthetic,
)
from gan_studio.evaluation.plots import write_plot_png  # kept importable from here; it now lives in plots

__all__ = [
    "ARM_KINDS",
    "BASELINE_KINDS",
    "DEFAULT_RATIOS",
    "PLOT_HTML",
    "PLOT_PNG",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "RESULTS_VERSION",
    "SEED_STRIDE",
    "SUMMARY_MD",
    "SYNTHETIC_DIR",
    "Arm",
    "AugmentBench",
    "AugmentBenchConfig",
    "BenchResults",
    "Candidate",
    "RealData",
    "SyntheticPool",
    "accuracy_figure",
    "draw_synthetic_pool",
    "load_real_data",
    "parse_arms",
    "parse_ratios",
    "results_csv",
    "run_augment_bench",
    "summarize",
    "summary_markdown",
    "synthetic_quota",
    "write_bench_report",
    "write_plot_png",
    "write_synthetic",
]
