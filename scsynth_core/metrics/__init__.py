"""Evaluation metrics of the four papers: pure functions on arrays/AnnData, no I/O.

Beside them, today's generative-model metrics (Wasserstein/MMD, kNN precision/recall/density/coverage, 1-NN
two-sample accuracy, SimBench-style marginals, DE recovery) with one entry point, :func:`modern_metrics`.
"""

from scsynth_core.metrics.modern import (
    DIRECTIONS,
    METRICS,
    metrics_frame,
    modern_metrics,
    per_type_key,
)

__all__ = ["DIRECTIONS", "METRICS", "metrics_frame", "modern_metrics", "per_type_key"]
