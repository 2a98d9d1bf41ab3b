"""Generation metrics in the evaluator's feature space, chosen by name from a registry.

Importing this package registers every metric (``list_metrics()``: cas, fid, kid, inception_fid,
prdc, diversity, memorization, c2st); ``compute_metrics`` runs them by name on a ``MetricContext``.
"""

from gan_studio.metrics import cas, diversity, fid_kid, memorization, prdc  # noqa: F401 - registers the metrics

# isort: split
from gan_studio.metrics import c2st  # noqa: F401 - registered last: it trains two classifiers, the slowest
from gan_studio.metrics.context import FeatureSet, MetricContext, build_context
from gan_studio.metrics.registry import compute_metrics, list_metrics, register_metric
from gan_studio.metrics.report import write_evaluation, write_report

__all__ = [
    "FeatureSet",
    "MetricContext",
    "build_context",
    "compute_metrics",
    "list_metrics",
    "register_metric",
    "write_evaluation",
    "write_report",
]
