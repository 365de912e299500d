"""Basic real-vs-generated statistics (library size, sparsity, per-gene means).

These are the quick sanity checks Marouf et al. 2020 monitor during training (Methods, "Model selection":
distance of per-gene means, mean sparsity), computed on library-size-normalised expression so that models
producing counts and models producing LSN values are compared in one space.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    import anndata as ad


def _as_csr(X) -> sp.csr_matrix:
    return X if sp.isspmatrix_csr(X) else sp.csr_matrix(X)


def library_sizes(X) -> np.ndarray:
    """Total expression per cell."""
    return np.asarray(X.sum(axis=1)).ravel()


def zero_fraction(X) -> float:
    """Fraction of zero entries (sparse-aware; explicit zeros counted as zeros)."""
    X = _as_csr(X)
    return 1.0 - np.count_nonzero(X.data) / (X.shape[0] * X.shape[1])


def log_lsn_gene_means(X, target_sum: float = 20_000) -> np.ndarray:
    """Per-gene mean of log1p(LSN-``target_sum``) expression, without densifying ``X``."""
    X = _as_csr(X).astype(np.float64)
    lib = library_sizes(X)
    scale = np.divide(target_sum, lib, out=np.zeros_like(lib), where=lib > 0)
    Y = sp.diags(scale) @ X
    Y.data = np.log1p(Y.data)
    return np.asarray(Y.mean(axis=0)).ravel()


def basic_statistics(real: ad.AnnData, generated: ad.AnnData) -> dict[str, Any]:
    """Cell counts, library sizes, sparsity and agreement of per-gene means between two sets.

    Returns a flat dict: ``n_real``, ``n_generated``, ``library_size_{real,generated}_{mean,median}``,
    ``zero_fraction_{real,generated}``, ``gene_mean_pearson`` (Pearson r of per-gene mean log1p(LSN)) and
    ``gene_mean_distance`` (Euclidean distance of those mean vectors, the Marouf training monitor).
    """
    if list(real.var_names) != list(generated.var_names):
        raise DataError("real and generated cells have different genes (var_names must match in the same order)")
    lib_real, lib_gen = library_sizes(real.X), library_sizes(generated.X)
    mean_real, mean_gen = log_lsn_gene_means(real.X), log_lsn_gene_means(generated.X)
    if mean_real.std() > 0 and mean_gen.std() > 0:
        pearson = float(np.corrcoef(mean_real, mean_gen)[0, 1])
    else:
        pearson = float("nan")
    return {
        "n_real": int(real.n_obs),
        "n_generated": int(generated.n_obs),
        "library_size_real_mean": float(lib_real.mean()),
        "library_size_real_median": float(np.median(lib_real)),
        "library_size_generated_mean": float(lib_gen.mean()),
        "library_size_generated_median": float(np.median(lib_gen)),
        "zero_fraction_real": float(zero_fraction(real.X)),
        "zero_fraction_generated": float(zero_fraction(generated.X)),
        "gene_mean_pearson": pearson,
        "gene_mean_distance": float(np.linalg.norm(mean_real - mean_gen)),
    }
