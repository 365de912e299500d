"""Model-selection monitors computed during training (Marouf et al. 2020, Methods "Model selection").

scGAN picked checkpoints by comparing generated cells with held-out real cells on three statistics: the
distance between per-gene mean expression (LSN scale), the difference in sparsity (mean per-cell fraction of
zero genes) and the overlap of the most variable genes (variance of ``log1p`` LSN values). The same monitor
is logged by every LSN model (scGAN, cscGAN, ACTIVA), so the training-time comparison of ACTIVA's Table 1 can
ask how long each model needs to reach a common quality level.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

#: ``train_log.tsv`` columns written by :func:`monitor_metrics`.
MONITOR_COLUMNS = ("monitor_mean_distance", "monitor_sparsity_difference", "monitor_hvg_overlap")


def monitor_cells(n_cells: int, n_monitor: int, *, seed: int, holdout: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the monitor cells and of the cells left for training.

    The monitor cells are drawn once from ``seed`` (independent of the training random stream). With
    ``holdout`` they are removed from training (at most a tenth of the cells), as the paper's validation cells.
    """
    train_rows = np.arange(n_cells)
    if n_monitor <= 0:
        return np.empty(0, dtype=np.int64), train_rows
    size = min(n_monitor, n_cells // 10 if holdout else n_cells)
    rows = np.sort(np.random.default_rng([seed, 1]).choice(n_cells, size, replace=False))
    if holdout and size > 0:
        train_rows = np.setdiff1d(train_rows, rows)
    return rows, train_rows


def n_top_genes(n_genes: int) -> int:
    """Number of most variable genes compared: 1,000 (the paper), at most half the genes on small panels."""
    return max(1, min(1000, n_genes // 2))


def lsn_statistics(X, n_top: int) -> dict[str, Any]:
    """Per-gene mean (LSN), mean per-cell zero fraction and the top-``n_top`` genes by variance of log1p(LSN)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    genes = X.shape[1]
    logged = X.copy()
    logged.data = np.log1p(logged.data)
    mean_log = np.asarray(logged.mean(axis=0)).ravel()
    var_log = np.asarray(logged.multiply(logged).mean(axis=0)).ravel() - mean_log**2
    return {
        "mean": np.asarray(X.mean(axis=0)).ravel(),
        "sparsity": float(1.0 - X.getnnz(axis=1).mean() / genes),
        "top": set(np.argsort(-var_log, kind="stable")[:n_top].tolist()),
    }


def monitor_metrics(real: dict[str, Any], generated, n_top: int) -> dict[str, float]:
    """The three statistics of generated LSN cells against :func:`lsn_statistics` of real cells."""
    gen = lsn_statistics(generated, n_top)
    return {
        "monitor_mean_distance": float(np.linalg.norm(gen["mean"] - real["mean"])),
        "monitor_sparsity_difference": float(abs(gen["sparsity"] - real["sparsity"])),
        "monitor_hvg_overlap": len(gen["top"] & real["top"]) / n_top,
    }
