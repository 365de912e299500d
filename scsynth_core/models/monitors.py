"""Realism monitored during training: generated cells against validation cells held out of the training cells,
scored by a kNN classifier two-sample AUC (Lopez-Paz & Oquab 2017), Marouf's MMD and scGAN's model-selection
statistics (Marouf et al. 2020, Methods "Model selection").

Why each statistic, and why the PCA is fitted on training cells: docs/models.md, "Realism monitor".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from scsynth_core.data.preprocess import from_representation, lsn

#: ``train_log.tsv`` columns written by :meth:`RealismMonitor.score`.
MONITOR_COLUMNS = (
    "monitor_auc",
    "monitor_mmd",
    "monitor_mean_distance",
    "monitor_sparsity_difference",
    "monitor_hvg_overlap",
)
#: Fewer validation cells than this make the kNN AUC too noisy to select checkpoints: the monitor is then off.
MIN_VALIDATION_CELLS = 30
#: Training cells the monitor's PCA is fitted on (a random subset beyond this).
PCA_FIT_CELLS = 2000
#: Classes with fewer training cells than this are never held out for validation (rare clusters keep all cells).
MIN_CLASS_CELLS = 20
N_COMPONENTS = 30
K_NEIGHBOURS = 10


def validation_rows(
    n_cells: int, *, fraction: float, max_cells: int, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(validation rows, training rows)``: ``min(max_cells, round(fraction * n))`` cells held out for the monitor.

    Drawn once from ``seed`` (a stream separate from training). Cells of classes with fewer than
    :data:`MIN_CLASS_CELLS` cells are never held out. Fewer than :data:`MIN_VALIDATION_CELLS` candidates: no
    validation set (the monitor is off) and every cell trains.
    """
    everything = np.arange(n_cells)
    size = min(int(max_cells), round(fraction * n_cells))
    candidates = everything
    if labels is not None:
        values, counts = np.unique(labels, return_counts=True)
        rare = values[counts < MIN_CLASS_CELLS]
        candidates = everything[~np.isin(labels, rare)]
    size = min(size, len(candidates))
    if size < MIN_VALIDATION_CELLS:
        return np.empty(0, dtype=np.int64), everything
    rows = np.sort(np.random.default_rng([seed, 17]).choice(candidates, size, replace=False))
    return rows, np.setdiff1d(everything, rows)


def log_lsn(X) -> sp.csr_matrix:
    """log1p of cells normalised to 20,000 counts per cell (CSR, float64)."""
    out = sp.csr_matrix(lsn(sp.csr_matrix(X, dtype=np.float64)))
    out.data = np.log1p(out.data)
    return out


def expression(cells, representation: str) -> sp.csr_matrix:
    """Cells of a model's output space on the count/LSN scale (``log1p`` back-transformed, negatives to 0)."""
    X = sp.csr_matrix(cells, dtype=np.float64)
    if representation == "log1p":
        X = sp.csr_matrix(from_representation(X, "log1p"))
    np.maximum(X.data, 0.0, out=X.data)
    X.eliminate_zeros()
    return X


def n_top_genes(n_genes: int) -> int:
    """Number of most variable genes compared: 1,000 (the paper), at most half the genes on small panels."""
    return max(1, min(1000, n_genes // 2))


def lsn_statistics(X, n_top: int) -> dict[str, Any]:
    """Per-gene mean (LSN), mean per-cell zero fraction and the top-``n_top`` genes by variance of log1p(LSN)."""
    X = sp.csr_matrix(lsn(sp.csr_matrix(X, dtype=np.float64)))
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


def knn_auc(reference: np.ndarray, generated: np.ndarray, *, k: int = K_NEIGHBOURS) -> float:
    """Leave-one-out kNN classifier AUC of generated (positive) vs reference points (0.5: indistinguishable).

    Each pooled point's score is the fraction of generated points among its ``k`` nearest other points
    (Euclidean); the AUC of that score against the true set membership is returned.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    pooled = np.vstack([reference, generated])
    is_generated = np.r_[np.zeros(len(reference)), np.ones(len(generated))]
    k = min(int(k), len(pooled) - 1)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(pooled).kneighbors(pooled)
    # Drop each point itself (first column, or wherever an exact duplicate put it).
    own = idx == np.arange(len(pooled))[:, None]
    keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(k + 1)[None, :] < k)
    neighbours = idx[keep].reshape(len(pooled), k)
    return float(roc_auc_score(is_generated, is_generated[neighbours].mean(axis=1)))


def pca_fit_rows(rows: np.ndarray, *, seed: int) -> np.ndarray:
    """The ``rows`` (sorted) whose cells the monitor's PCA is fitted on: all of them, or a random
    :data:`PCA_FIT_CELLS` when there are more."""
    if len(rows) <= PCA_FIT_CELLS:
        return rows
    return rows[np.sort(np.random.default_rng([seed, 23]).choice(len(rows), PCA_FIT_CELLS, replace=False))]


class RealismMonitor:
    """Scores generated cells against fixed validation cells (see docs/models.md).

    Parameters
    ----------
    validation
        Validation cells (raw counts, cells x genes), held out of training.
    fit_cells
        Training cells the PCA is fitted on (counts; a random subset of :data:`PCA_FIT_CELLS` is used).
    seed
        Seed of the PCA subset and solver.
    """

    def __init__(
        self, validation, fit_cells, *, seed: int = 0, n_components: int = N_COMPONENTS, k: int = K_NEIGHBOURS
    ) -> None:
        from sklearn.decomposition import PCA

        from scsynth_core.metrics.realism import mmd_bandwidth

        if fit_cells.shape[0] > PCA_FIT_CELLS:
            fit_cells = fit_cells[pca_fit_rows(np.arange(fit_cells.shape[0]), seed=seed)]
        fitted = log_lsn(fit_cells)
        n_comp = max(2, min(n_components, fitted.shape[0] // 5, fitted.shape[1] - 1))
        self._pca = PCA(n_components=n_comp, svd_solver="arpack", random_state=seed).fit(fitted)
        self.n_cells = int(validation.shape[0])
        self.k = int(k)
        self._reference = self._project(validation)
        half = self.n_cells // 2
        self._bandwidth = mmd_bandwidth(self._reference[:half], self._reference[half:])
        self._n_top = n_top_genes(validation.shape[1])
        self._statistics = lsn_statistics(validation, self._n_top)

    def _project(self, counts) -> np.ndarray:
        X = log_lsn(counts)
        return np.asarray(X @ self._pca.components_.T) - self._pca.mean_ @ self._pca.components_.T

    def score(self, cells, representation: str) -> dict[str, float]:
        """Every monitor column for ``cells`` (as many as the validation cells) in the model's ``representation``."""
        from scsynth_core.metrics.realism import mmd

        counts = expression(cells, representation)
        points = self._project(counts)
        stats = lsn_statistics(counts, self._n_top)
        real = self._statistics
        return {
            "monitor_auc": knn_auc(self._reference, points, k=self.k),
            "monitor_mmd": mmd(self._reference, points, bandwidth=self._bandwidth),
            "monitor_mean_distance": float(np.linalg.norm(stats["mean"] - real["mean"])),
            "monitor_sparsity_difference": float(abs(stats["sparsity"] - real["sparsity"])),
            "monitor_hvg_overlap": len(stats["top"] & real["top"]) / self._n_top,
        }


def held_out_monitor(params, X, *, seed: int, labels: np.ndarray | None = None):
    """``(monitor or None, validation rows, training rows)`` for a model's loop hyperparameters.

    ``monitor_every`` or ``monitor_cells`` of 0, or too few validation candidates: no monitor, every cell trains.
    Only the validation cells and the PCA's fitting cells are read from ``X`` (which may be a matrix on disk).
    """
    everything = np.arange(X.shape[0])
    if not params["monitor_every"] or not params["monitor_cells"]:
        return None, everything[:0], everything
    rows, train_rows = validation_rows(
        X.shape[0], fraction=params["validation_fraction"], max_cells=params["monitor_cells"], seed=seed, labels=labels
    )
    if not len(rows):
        return None, rows, train_rows
    return RealismMonitor(X[rows], X[pca_fit_rows(train_rows, seed=seed)], seed=seed), rows, train_rows


def selection_key(row: dict[str, float]) -> tuple[float, float]:
    """Checkpoint ranking (lower is better): kNN AUC to two decimals (its noise at a few hundred cells), then MMD."""
    return (round(row["monitor_auc"], 2), row["monitor_mmd"])


__all__ = ["MONITOR_COLUMNS", "RealismMonitor", "held_out_monitor", "knn_auc", "selection_key", "validation_rows"]
