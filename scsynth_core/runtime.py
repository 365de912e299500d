"""Process settings every step needs: the thread budget the scheduler gave a job, a headless matplotlib, and
figures saved atomically."""

from __future__ import annotations

from pathlib import Path

from scsynth_core import atomic


def set_threads(threads: int | None) -> None:
    """Use the cores the scheduler gave this job, not every core of the node."""
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))  # BLAS/OpenMP of numpy, scipy and scikit-learn too


def use_agg() -> None:
    """Draw without a display (cluster nodes have none)."""
    import matplotlib

    matplotlib.use("Agg")


def save_figure(fig, output: str | Path) -> None:
    """Save a Figure atomically (format from the suffix) and free it."""
    import matplotlib.pyplot as plt

    with atomic.atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=150, format=Path(output).suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
