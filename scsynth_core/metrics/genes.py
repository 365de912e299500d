"""Per-gene distribution statistics of synthetic vs original cells (Treppner et al. 2021, Fig. 3).

For every gene: median, interquartile range, coefficient of variation and fraction of zeros, computed on the
count matrices; a synthetic set is summarised by the mean absolute deviation (MAD) over genes between its statistic
and the original data's (Treppner 2021, Results "gene-level characteristics"; the authors' notebook rounds the MADs
to two decimals for presentation, which is left to the report).

Definitions (matching the authors' Julia notebook, whose ``std``/``quantile`` defaults these reproduce):

* median and IQR = 75th - 25th percentile with linear interpolation (``numpy.percentile`` default, Julia/R type 7);
* CV = sd / mean with the **sample** standard deviation (``ddof=1``, Julia's and R's default); NaN when the mean
  is 0 (an all-zero gene);
* fraction of zeros = zero entries / cells.

Sparse matrices are processed in column chunks of a CSC copy (at most ~4M densified entries at a time).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import DataError

#: Statistics returned by :func:`gene_statistics`, in column order.
STATISTICS = ("median", "iqr", "cv", "zero_fraction")

_CHUNK_ENTRIES = 1 << 22


def _matrix_and_names(X):
    """Accept an AnnData (use ``X`` and ``var_names``) or a dense/sparse matrix."""
    if hasattr(X, "var_names") and hasattr(X, "X"):
        return X.X, pd.Index([str(v) for v in X.var_names], name="gene")
    shape = X.shape
    if len(shape) != 2:
        raise DataError(f"expected a cells x genes matrix, got shape {shape}")
    return X, pd.RangeIndex(shape[1], name="gene")


def gene_statistics(X) -> pd.DataFrame:
    """Median, IQR, CV and fraction of zeros of every gene (column) of a cells x genes matrix.

    The four gene-level characteristics of Treppner 2021 Fig. 3 (definitions in the module docstring).

    Parameters
    ----------
    X
        Dense array, scipy sparse matrix or AnnData (then ``X`` is used and rows are named by ``var_names``).

    Returns
    -------
    pandas.DataFrame
        One row per gene, columns ``median``, ``iqr``, ``cv``, ``zero_fraction`` (float64).
    """
    M, names = _matrix_and_names(X)
    n_cells, n_genes = M.shape
    if n_cells < 2:
        raise DataError(f"need at least two cells for per-gene statistics, got {n_cells}")
    out = np.empty((n_genes, len(STATISTICS)), dtype=np.float64)
    chunk = max(1, min(n_genes, _CHUNK_ENTRIES // n_cells))
    if sp.issparse(M):
        M = sp.csc_matrix(M)
    for start in range(0, n_genes, chunk):
        stop = min(start + chunk, n_genes)
        block = M[:, start:stop]
        block = block.toarray() if sp.issparse(block) else np.asarray(block)
        block = block.astype(np.float64, copy=False)
        q25, q50, q75 = np.percentile(block, [25, 50, 75], axis=0)
        mean = block.mean(axis=0)
        sd = block.std(axis=0, ddof=1)
        out[start:stop, 0] = q50
        out[start:stop, 1] = q75 - q25
        out[start:stop, 2] = np.divide(sd, mean, out=np.full_like(mean, np.nan), where=mean != 0)
        out[start:stop, 3] = (block == 0).sum(axis=0) / n_cells
    return pd.DataFrame(out, index=names, columns=list(STATISTICS))


def gene_statistics_mad(original_X, synthetic_X) -> dict[str, float]:
    """Mean over genes of ``|statistic(original) - statistic(synthetic)|`` for each statistic (Treppner Fig. 3).

    Genes where either value is NaN (CV of an all-zero gene) are skipped for that statistic; a statistic that is
    NaN for every gene gives NaN. Returns ``{"mad_median", "mad_iqr", "mad_cv", "mad_zero_fraction"}``, unrounded.
    """
    a = gene_statistics(original_X)
    b = gene_statistics(synthetic_X)
    if a.shape[0] != b.shape[0]:
        raise DataError(f"original and synthetic cells have different numbers of genes ({a.shape[0]} vs {b.shape[0]})")
    named = not isinstance(a.index, pd.RangeIndex) and not isinstance(b.index, pd.RangeIndex)
    if named and not a.index.equals(b.index):
        raise DataError("original and synthetic cells have different genes (var_names must match in order)")
    diff = np.abs(a.to_numpy() - b.to_numpy())
    out = {}
    for j, stat in enumerate(STATISTICS):
        col = diff[:, j]
        col = col[~np.isnan(col)]
        out[f"mad_{stat}"] = float(col.mean()) if col.size else float("nan")
    return out
