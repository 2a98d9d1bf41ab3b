"""Metric registry, after StyleGAN2-ADA's ``metric_main``: metrics register by name, callers pick by name.

A metric is a function ``(ctx: MetricContext) -> dict``. Its result must carry a human-readable
``label`` (what exactly was measured, in which feature space) and may carry ``value`` (the headline
number, or None with a ``reason``) and ``per_class`` ({class name: {...}}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tqdm.auto import tqdm

from gan_studio.metrics.context import MetricContext

MetricFn = Callable[[MetricContext], dict]
_METRICS: dict[str, MetricFn] = {}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    def decorator(fn: MetricFn) -> MetricFn:
        if name in _METRICS and _METRICS[name] is not fn:
            raise ValueError(f"A metric named {name!r} is already registered")
        _METRICS[name] = fn
        return fn

    return decorator


def list_metrics() -> list[str]:
    return list(_METRICS)


def compute_metrics(
    names: Iterable[str] | None,
    ctx: MetricContext,
    on_metric: Callable[[str, int, int], None] | None = None,
) -> dict[str, dict]:
    """Run the named metrics (all registered ones when ``names`` is None), in the order given;
    ``on_metric(name, done, total)`` before each one."""
    names = list_metrics() if names is None else list(names)
    unknown = [name for name in names if name not in _METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {', '.join(unknown)}. Available: {', '.join(list_metrics())}")
    results = {}
    for i, name in enumerate(tqdm(names, desc="metrics", unit="metric", disable=not ctx.progress)):
        if on_metric is not None:
            on_metric(name, i, len(names))
        result = _METRICS[name](ctx)
        if not isinstance(result.get("label"), str):
            raise TypeError(f"Metric {name!r} returned no human-readable 'label'")
        results[name] = result
    return results
