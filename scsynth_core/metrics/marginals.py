"""Marginal and structural statistics of generated vs real cells, scored as SimBench does.

SimBench (Cao, Yang & Yang 2021, Nat Commun 12:6911; Methods, evaluation of data property estimation) compares the
distributions over cells or genes of per-cell and per-gene properties of two data sets, not gene by gene. Eight of
its 13 properties are scored here: KS statistics of the 1-D properties and a sliced Wasserstein-1 distance of the
2-D gene relations, where SimBench uses ``ks::kde.test``. Keys, properties and departures: docs/experiments.md,
"SimBench-style marginals".
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import DataError
from scsynth_core.metrics.representation import LSN_TARGET, log_lsn

#: Genes (highest mean log expression in the real cells) whose pairwise correlations are compared.
N_CORR_GENES = 200

#: Directions of the sliced Wasserstein distance (evenly spaced over the half circle).
N_DIRECTIONS = 64

#: The keys :func:`marginal_scores` returns, in order.
SCORES = (
    "ks_library_size",
    "ks_cell_zero_fraction",
    "ks_gene_zero_fraction",
    "ks_gene_mean",
    "ks_gene_variance",
    "ks_gene_correlation",
    "w1_mean_variance",
    "w1_mean_zero_fraction",
)


def _counts(X) -> sp.csr_matrix:
    X = X.X if hasattr(X, "X") and hasattr(X, "var_names") else X
    if X.ndim != 2:
        raise DataError(f"expected a cells x genes matrix, got shape {X.shape}")
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.eliminate_zeros()  # explicit zeros must count as zeros
    return X


def marginal_statistics(X, *, target_sum: float = LSN_TARGET) -> dict[str, np.ndarray]:
    """Per-cell ``library_size``, ``cell_zero_fraction``; per-gene ``gene_zero_fraction``, ``gene_mean``,
    ``gene_variance`` (of log1p(LSN) values, population variance) of a cells x genes matrix or AnnData."""
    X = _counts(X)
    n_cells, n_genes = X.shape
    if n_cells < 2:
        raise DataError(f"marginal statistics need at least two cells, got {n_cells}")
    logs = log_lsn(X, target_sum)
    mean = np.asarray(logs.mean(axis=0)).ravel()
    mean_sq = np.asarray(logs.multiply(logs).mean(axis=0)).ravel()
    return {
        "library_size": np.asarray(X.sum(axis=1)).ravel(),
        "cell_zero_fraction": 1.0 - np.diff(X.indptr) / n_genes,
        "gene_zero_fraction": 1.0 - np.bincount(X.indices, minlength=n_genes) / n_cells,
        "gene_mean": mean,
        "gene_variance": np.maximum(mean_sq - mean * mean, 0.0),
    }


def gene_correlations(X, genes, *, target_sum: float = LSN_TARGET) -> np.ndarray:
    """Pearson correlations of every pair of ``genes`` (column indices) over cells, on log1p(LSN) values.

    Returns the upper triangle as a flat array; a pair with a constant gene (no variance) counts as 0.
    """
    values = log_lsn(_counts(X), target_sum)[:, np.asarray(genes)].toarray()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(values, rowvar=False)
    return np.nan_to_num(corr[np.triu_indices(len(genes), k=1)], nan=0.0)


def sliced_w1_2d(a: np.ndarray, b: np.ndarray, *, n_directions: int = N_DIRECTIONS) -> float:
    """Sliced Wasserstein-1 distance of two equally large 2-D point sets (e.g. the same genes in two data sets).

    The mean over ``n_directions`` evenly spaced unit directions (deterministic, no random ones) of the exact
    1-D Wasserstein-1 distance between the projections, which for equal sizes is the mean absolute difference
    of the sorted projections. 0 for identical sets.
    """
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise DataError(f"sliced W1 needs two equally large sets of 2-D points, got shapes {a.shape} and {b.shape}")
    angles = np.pi * np.arange(n_directions) / n_directions
    directions = np.stack([np.cos(angles), np.sin(angles)])  # (2, n_directions)
    return float(np.abs(np.sort(a @ directions, axis=0) - np.sort(b @ directions, axis=0)).mean())


def _standardised_w1(real: np.ndarray, generated: np.ndarray) -> float:
    scale = real.std(axis=0)
    scale[scale == 0] = 1.0
    return sliced_w1_2d(real / scale, generated / scale)


def marginal_scores(real, generated, *, n_corr_genes: int = N_CORR_GENES) -> dict[str, float]:
    """SimBench-style distances between the real and generated distributions of each property
    (docs/experiments.md, "SimBench-style marginals").

    ``real``, ``generated``: cells x genes count matrices (dense or sparse) or AnnData, same genes in the same
    order. Every score is 0 for identical sets and grows as the distributions part.
    """
    from scipy.stats import ks_2samp

    stats_real, stats_gen = marginal_statistics(real), marginal_statistics(generated)
    n_genes = len(stats_real["gene_mean"])
    if len(stats_gen["gene_mean"]) != n_genes:
        raise DataError(
            f"real and generated cells have different numbers of genes ({n_genes} vs {len(stats_gen['gene_mean'])})"
        )
    out = {
        f"ks_{name}": float(ks_2samp(stats_real[name], stats_gen[name]).statistic)
        for name in ("library_size", "cell_zero_fraction", "gene_zero_fraction", "gene_mean", "gene_variance")
    }
    top = np.sort(np.argsort(-stats_real["gene_mean"], kind="stable")[: min(n_corr_genes, n_genes)])
    if len(top) >= 2:
        out["ks_gene_correlation"] = float(
            ks_2samp(gene_correlations(real, top), gene_correlations(generated, top)).statistic
        )
    else:
        out["ks_gene_correlation"] = float("nan")
    for second in ("variance", "zero_fraction"):
        pair_real = np.c_[stats_real["gene_mean"], stats_real[f"gene_{second}"]]
        pair_gen = np.c_[stats_gen["gene_mean"], stats_gen[f"gene_{second}"]]
        out[f"w1_mean_{second}"] = _standardised_w1(pair_real, pair_gen)
    return {key: out[key] for key in SCORES}
