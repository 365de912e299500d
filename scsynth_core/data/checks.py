"""Checks on input data, each raising a one-line :class:`~scsynth_core.errors.DataError`.

Models that consume counts need non-negative integers; conditional models need a label column with enough
cells per class. These checks stream over the sparse data (no densification of the whole matrix).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    import anndata as ad

#: Largest allowed distance of a value from the nearest integer for it to count as an integer count.
INTEGER_TOLERANCE = 1e-6


def read_h5ad(path: str | Path, *, backed: bool = False) -> ad.AnnData:
    """Read an h5ad file, turning a missing or corrupt file into a clear :class:`DataError`."""
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected an .h5ad AnnData file)")
    try:
        return ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as exc:  # h5py/anndata raise many types for a damaged file
        raise DataError(f"{path}: not a readable h5ad file ({type(exc).__name__}: {exc})") from None


def _values(X) -> np.ndarray:
    """The stored values of a matrix: the non-zeros of a sparse one, every entry of a dense one."""
    if sp.issparse(X):
        return X.data if hasattr(X, "data") else X.tocsr().data
    return np.asarray(X).ravel()


def check_counts(X, *, where: str, chunk_rows: int = 10_000) -> None:
    """Require ``X`` to hold finite, non-negative integer counts.

    Parameters
    ----------
    X
        Cells x genes matrix (scipy sparse or dense array).
    where
        Name of the file/key the matrix came from, used in the error message.
    chunk_rows
        Dense input is checked in row chunks of this size.
    """
    if sp.issparse(X) or X.ndim != 2:
        chunks = [_values(X)]
    else:
        chunks = (np.asarray(X[i : i + chunk_rows]).ravel() for i in range(0, X.shape[0], chunk_rows))
    for values in chunks:
        if values.size == 0:
            continue
        if not np.all(np.isfinite(values)):
            raise DataError(f"{where}: count matrix contains NaN or infinite values (expected non-negative integers)")
        if values.min() < 0:
            raise DataError(f"{where}: count matrix contains negative values (min {values.min():g}; expected counts)")
        if np.issubdtype(values.dtype, np.floating):
            dist = np.abs(values - np.round(values)).max()
            if dist > INTEGER_TOLERANCE:
                raise DataError(
                    f"{where}: count matrix is not integer (a value is {dist:.3g} away from the nearest integer); "
                    "models on counts need raw UMI/read counts, not normalised or log data"
                )


def check_labels(adata: ad.AnnData, key: str, *, where: str, min_cells: int = 1) -> None:
    """Require ``adata.obs[key]`` to exist, hold no missing values, and give every class ``min_cells`` cells."""
    if key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns)) or "none"
        raise DataError(f"{where}: label column obs['{key}'] does not exist (available: {cols})")
    labels = adata.obs[key]
    if labels.isna().any():
        raise DataError(f"{where}: label column obs['{key}'] has {int(labels.isna().sum())} missing values")
    if min_cells > 1:
        counts = labels.value_counts()
        small = counts[counts < min_cells]
        if len(small):
            detail = ", ".join(f"{k} ({v})" for k, v in small.items())
            raise DataError(f"{where}: obs['{key}'] classes with fewer than {min_cells} cells: {detail}")


def check_not_empty(adata: ad.AnnData, *, where: str) -> None:
    """Require at least one cell and one gene."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataError(f"{where}: empty data ({adata.n_obs} cells x {adata.n_vars} genes)")
