"""Checks on input data and output paths, each raising a one-line :class:`~scsynth_core.errors.DataError`.

Models that consume counts need non-negative integers; conditional models need a label column with enough
cells per class; a model file must agree with itself; an output must be writable before the work that makes it
starts. These checks stream over the sparse data (no densification of the whole matrix).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)

#: Largest allowed distance of a value from the nearest integer for it to count as an integer count.
INTEGER_TOLERANCE = 1e-6
#: A numeric label column with more distinct values than this is more likely a measurement or an id than
#: cell types or clusters (the papers' data sets have at most a few dozen).
MANY_NUMERIC_CLASSES = 50
#: A label column with a different value for every cell is an id column, once there are more cells than this
#: (a toy set may have one cell per class).
MIN_CELLS_FOR_ID_CHECK = 10
#: Keys of every model file :meth:`~scsynth_core.models.base.GenerativeModel.save` writes.
MODEL_FILE_KEYS = (
    "model",
    "preset",
    "params",
    "var_names",
    "label_key",
    "categories",
    "class_frequencies",
    "n_train",
    "seed",
    "state",
)


def read_h5ad(path: str | Path, *, backed: bool = False) -> ad.AnnData:
    """Read an h5ad file, turning a missing or corrupt file, or repeated cell names, into a clear :class:`DataError`."""
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected an .h5ad AnnData file)")
    try:
        adata = ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as exc:  # noqa: BLE001 - h5py/anndata raise many types for a damaged file
        raise DataError(f"{path}: not a readable h5ad file ({type(exc).__name__}: {exc})") from None
    names = adata.obs_names
    if names.has_duplicates:
        if backed:
            adata.file.close()
        repeated = names[names.duplicated()].unique()
        raise DataError(
            f"{path}: {len(repeated)} cell name(s) occur more than once in obs_names (e.g. "
            f"{', '.join(map(repr, repeated[:3]))}); cells must have unique names (anndata's obs_names_make_unique)"
        )
    return adata


def check_output_path(path: str | Path) -> None:
    """Fail before any work where ``path`` cannot be written: a folder at ``path``, a file where a folder of it
    must be, or a folder without write permission (or on a read-only file system)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: output path is a folder (expected a file name)")
    existing = path.parent
    while not existing.exists():  # the folders to be created; '.' and '/' always exist
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(f"{path}: cannot write the output: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataError(f"{path}: cannot write the output: no write permission in folder {existing}")


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


def check_label_values(labels: pd.Series, key: str, *, where: str, conditional: bool = False) -> None:
    """Reject label columns that cannot be classes; warn about ones that are probably not what was meant.

    Non-integer numbers or a different value for every cell raise :class:`DataError`; a numeric column with more
    than :data:`MANY_NUMERIC_CLASSES` values, and (for a ``conditional`` model) classes of a single cell, are
    logged as warnings naming the column.
    """
    kind = labels.cat.categories.dtype if isinstance(labels.dtype, pd.CategoricalDtype) else labels.dtype
    numeric = pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
    n_classes = int(labels.nunique())
    if numeric and pd.api.types.is_float_dtype(kind):
        values = labels.to_numpy(dtype=float)
        fractional = values[values != np.round(values)]
        if fractional.size:
            raise DataError(
                f"{where}: label column obs['{key}'] holds non-integer numbers (e.g. {fractional[0]:g}); "
                "labels must be cell types or cluster ids"
            )
    if n_classes == len(labels) > MIN_CELLS_FOR_ID_CHECK:
        raise DataError(
            f"{where}: label column obs['{key}'] has a different value for each of its {n_classes} "
            "cells: it identifies cells, it does not group them into cell types or clusters"
        )
    if numeric and n_classes > MANY_NUMERIC_CLASSES:
        log.warning(
            "%s: label column obs['%s'] is numeric with %d distinct values, each taken as a class; "
            "check that it holds cell types or cluster ids",
            where,
            key,
            n_classes,
        )
    if conditional:
        counts = labels.astype(str).value_counts()
        single = sorted(counts.index[counts == 1])
        if single:
            log.warning(
                "%s: class(es) %s of obs['%s'] have a single cell: a conditional model learns each from "
                "that one cell (generated cells of it copy or vary around it)",
                where,
                ", ".join(map(repr, single)),
                key,
            )


def check_model_payload(payload: Any, path: str | Path) -> None:
    """Cheap consistency checks of a loaded model file before its weights are restored: every key present,
    as many genes as the weights have, one class frequency per category."""
    if not isinstance(payload, Mapping):
        raise DataError(f"{path}: not a scsynth model file (it holds a {type(payload).__name__}, not a dict)")
    missing = [key for key in MODEL_FILE_KEYS if key not in payload]
    if missing:
        raise DataError(f"{path}: model file lacks {', '.join(missing)} (damaged, or not written by scsynth)")
    if not isinstance(payload["params"], Mapping) or not isinstance(payload["state"], Mapping):
        raise DataError(f"{path}: model file's params and state must be dicts")
    n_genes = len(payload["var_names"])
    recorded = _recorded_n_genes(payload["state"])
    if recorded is not None and recorded != n_genes:
        raise DataError(f"{path}: model file lists {n_genes} genes but its weights are for {recorded} genes")
    categories, freqs = payload["categories"], payload["class_frequencies"]
    n_categories = None if categories is None else len(categories)
    n_freqs = None if freqs is None else len(freqs)
    if n_categories != n_freqs:
        raise DataError(
            f"{path}: model file has {n_categories or 'no'} categories but {n_freqs or 'no'} class frequencies"
        )


def _recorded_n_genes(state: Mapping[str, Any]) -> int | None:
    """The gene dimension a family's state records (None where it records none that is cheap to read)."""
    if isinstance(state.get("n_genes"), (int, np.integer)):  # neural families
        return int(state["n_genes"])
    if isinstance(state.get("X"), Mapping) and "shape" in state["X"]:  # stored-cell baselines
        return int(state["X"]["shape"][1])
    if hasattr(state.get("mean"), "shape"):  # PPCA and the PCA Gaussian mixture
        return int(state["mean"].shape[-1])
    if isinstance(state.get("machine"), Mapping) and hasattr(state["machine"].get("theta"), "shape"):  # scDBM
        return int(state["machine"]["theta"].shape[0])
    return None


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise a ``ValueError`` naming the missing columns of ``frame`` (a table the library made: a wrong one is a
    programming error, not bad input)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: frame lacks column(s) {missing}; it has {list(frame.columns)}")
