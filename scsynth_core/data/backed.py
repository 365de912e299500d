"""Cells read from an h5ad file on disk, a block of rows at a time, for data larger than memory.

- :class:`BackedRows`: the rows of the CSR ``X`` of an h5ad file (optionally only some cells, e.g. the training
  cells of a split), indexed like a scipy matrix: ``rows[idx]`` reads those rows from disk and returns a CSR
  block in the order asked for. Models that draw minibatches with ``X[rows]`` (scGAN/cscGAN) train from it.
- :func:`iter_row_chunks` and :class:`GeneStatistics`: one pass over row chunks accumulating what the filters and
  highly-variable-gene (HVG) selection need: per-cell library sizes and detected genes, per-gene detection
  counts, and the per-gene mean and variance of library-size-normalised counts.
- :func:`hvg_from_mean_var`: scanpy's ``seurat`` and ``cell_ranger`` dispersion ranking from those means and
  variances alone (both flavours need nothing else; ``seurat_v3`` needs a second pass over clipped values and is
  not offered here).
- :func:`read_rows`: an in-memory AnnData of some cells (a 3,000-cell evaluation subsample, a clustering sketch).

Memory is one chunk of rows plus a few numbers per cell and per gene, whatever the number of cells. The file
is read through anndata's own sparse dataset (``anndata.io.sparse_dataset``), so any h5ad with CSR ``X``
works; a CSC or dense ``X`` is refused with a :class:`DataError` (rewrite it as CSR first).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.data.checks import check_counts
from scsynth_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import anndata as ad

#: Rows per chunk of the streaming passes (10,000 cells x 20,000 genes at 5 % non-zeros: ~80 MB).
CHUNK_ROWS = 10_000
#: HDF5 chunk cache of an opened file: holds the compressed chunks of a few minibatches' rows.
_CACHE_BYTES = 64 * 2**20
FLAVORS = ("seurat", "cell_ranger")


class _Closing(ABC):
    """``with`` support: ``close()`` on leaving the block."""

    @abstractmethod
    def close(self) -> None:
        """Release the open file."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackedRows(_Closing):
    """Rows of an h5ad file's CSR ``X``, read on demand (see the module docstring).

    Parameters
    ----------
    path
        The h5ad file.
    rows
        Positions (in the file) of the cells this object exposes, in order; ``None``: every cell. Row ``i`` of
        this object is file row ``rows[i]``.
    """

    is_row_source = True

    def __init__(self, path: str | Path, rows: np.ndarray | None = None) -> None:
        import h5py
        from anndata.io import sparse_dataset

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: file not found (expected an .h5ad AnnData file)")
        self._file = h5py.File(self.path, "r", rdcc_nbytes=_CACHE_BYTES)
        node = self._file.get("X")
        if not isinstance(node, h5py.Group) or node.attrs.get("encoding-type") != "csr_matrix":
            kind = "missing" if node is None else node.attrs.get("encoding-type", type(node).__name__)
            self._file.close()
            raise DataError(
                f"{self.path}: X must be a CSR sparse matrix to be read in row blocks (found: {kind}); "
                "rewrite the file with X as scipy.sparse.csr_matrix"
            )
        self._X = sparse_dataset(node)
        n_file = self._X.shape[0]
        self.rows = np.arange(n_file) if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows.size and (self.rows.min() < 0 or self.rows.max() >= n_file):
            self._file.close()
            raise DataError(f"{self.path}: row positions outside the file's {n_file} cells")
        self.shape = (len(self.rows), int(self._X.shape[1]))
        self.dtype = self._X.dtype

    def __getitem__(self, idx) -> sp.csr_matrix:
        """The rows ``idx`` (integer array, slice or boolean mask of this object's rows) as CSR, in that order."""
        positions = self.rows[idx]
        unique, inverse = np.unique(positions, return_inverse=True)  # h5py reads increasing positions
        block = sp.csr_matrix(self._X[unique]) if unique.size else sp.csr_matrix((0, self.shape[1]), dtype=self.dtype)
        return block if unique.size == positions.size and (inverse == np.arange(unique.size)).all() else block[inverse]

    def close(self) -> None:
        self._file.close()


@dataclass
class BackedCells(_Closing):
    """Cells of an h5ad file for training: ``X`` on disk (:class:`BackedRows`), ``obs`` and ``var`` in memory.

    Has the AnnData attributes training reads (``X``, ``obs``, ``var``, ``n_obs``, ``n_vars``, ``obs_names``,
    ``var_names``); pass it to ``fit`` of a model that reads rows (scGAN, cscGAN). Close it (or use ``with``).
    """

    X: BackedRows
    obs: pd.DataFrame
    var: pd.DataFrame

    @property
    def n_obs(self) -> int:
        return self.X.shape[0]

    @property
    def n_vars(self) -> int:
        return self.X.shape[1]

    @property
    def obs_names(self) -> pd.Index:
        return self.obs.index

    @property
    def var_names(self) -> pd.Index:
        return self.var.index

    def close(self) -> None:
        self.X.close()


def open_cells(path: str | Path, split: str | Path | None = None, *, subset: str | None = None) -> BackedCells:
    """The cells of a prepared h5ad (optionally one ``subset`` of a split file, e.g. ``"train"``) without reading
    ``X``: what :func:`scsynth_core.steps.load_prepared` gives, with the matrix left on disk."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.split import apply_split, read_split

    meta = read_h5ad(path, backed=True)
    meta.file.close()
    obs, var = meta.obs.copy(), meta.var.copy()
    rows = np.arange(len(obs))
    if split is not None:
        labelled = apply_split(_ObsOnly(obs), read_split(split), source=str(split)).obs
        obs = labelled
    if subset is not None:
        if "split" not in obs:
            raise ConfigError(f"{path}: selecting the '{subset}' cells needs a split file")
        rows = np.flatnonzero((obs["split"] == subset).to_numpy())
        obs = obs.iloc[rows].copy()
    return BackedCells(X=BackedRows(path, rows), obs=obs, var=var)


@dataclass
class _ObsOnly:
    """What :func:`scsynth_core.data.split.apply_split` reads and writes of an AnnData."""

    obs: pd.DataFrame

    @property
    def obs_names(self) -> pd.Index:
        return self.obs.index


def is_row_source(X: Any) -> bool:
    """Whether ``X`` is read from disk on demand (:class:`BackedRows`) rather than held in memory."""
    return bool(getattr(X, "is_row_source", False))


def iter_row_chunks(X, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[int, sp.csr_matrix]]:
    """``(first row, CSR block)`` for consecutive blocks of ``chunk_rows`` rows of ``X`` (in memory or on disk)."""
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive integer, got {chunk_rows}")
    for start in range(0, X.shape[0], chunk_rows):
        block = (
            X[np.arange(start, min(start + chunk_rows, X.shape[0]))]
            if is_row_source(X)
            else X[start : start + chunk_rows]
        )
        yield start, sp.csr_matrix(block)


def check_counts_chunked(X, *, where: str, chunk_rows: int = CHUNK_ROWS) -> None:
    """:func:`~scsynth_core.data.checks.check_counts` over row chunks (the first bad chunk raises)."""
    for _, block in iter_row_chunks(X, chunk_rows=chunk_rows):
        check_counts(block, where=where)


@dataclass
class GeneStatistics:
    """What one pass over the rows accumulates (see :meth:`collect`).

    ``library``, ``genes_per_cell``: per cell (totals, genes with a count > 0). ``cells_per_gene``: cells with a
    count > 0, counted over all cells and over ``kept`` cells (``genes_per_cell >= min_genes``).
    ``norm_sum``, ``norm_sumsq``: per-gene sums of ``x / library`` and its square (float64), from which
    :meth:`mean_var` gives the mean and variance at any per-cell target (scale-free: one pass suffices).
    """

    library: np.ndarray
    genes_per_cell: np.ndarray
    cells_per_gene: np.ndarray
    cells_per_gene_kept: np.ndarray
    norm_sum: np.ndarray
    norm_sumsq: np.ndarray
    min_genes: int

    @classmethod
    def collect(cls, X, *, min_genes: int = 0, chunk_rows: int = CHUNK_ROWS) -> GeneStatistics:
        n, g = X.shape
        out = cls(
            library=np.zeros(n),
            genes_per_cell=np.zeros(n, dtype=np.int64),
            cells_per_gene=np.zeros(g, dtype=np.int64),
            cells_per_gene_kept=np.zeros(g, dtype=np.int64),
            norm_sum=np.zeros(g),
            norm_sumsq=np.zeros(g),
            min_genes=int(min_genes),
        )
        for start, block in iter_row_chunks(X, chunk_rows=chunk_rows):
            out._add(start, block)
        return out

    def _add(self, start: int, block: sp.csr_matrix) -> None:
        stop = start + block.shape[0]
        counts = np.diff(block.indptr)
        rows = np.repeat(np.arange(block.shape[0]), counts)
        positive = block.data > 0
        genes = np.bincount(rows[positive], minlength=block.shape[0])
        self.genes_per_cell[start:stop] = genes
        self.cells_per_gene += np.bincount(block.indices[positive], minlength=block.shape[1])
        kept = (genes >= self.min_genes)[rows] & positive
        self.cells_per_gene_kept += np.bincount(block.indices[kept], minlength=block.shape[1])
        data = block.data.astype(np.float64)
        library = np.bincount(rows, weights=data, minlength=block.shape[0])
        self.library[start:stop] = library
        scaled = data / np.where(library > 0, library, 1.0)[rows]  # empty cells contribute nothing
        self.norm_sum += np.bincount(block.indices, weights=scaled, minlength=block.shape[1])
        self.norm_sumsq += np.bincount(block.indices, weights=scaled * scaled, minlength=block.shape[1])

    @property
    def n_cells(self) -> int:
        return int(self.library.size)

    def target_sum(self) -> float:
        """scanpy ``normalize_total``'s default target on sparse data: the median library size (all cells)."""
        return float(np.median(self.library))

    def mean_var(self, target_sum: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-gene mean and variance (ddof 1, as scanpy) of counts normalised to ``target_sum`` per cell
        (``None``: the median library size, ``normalize_total``'s default)."""
        target = self.target_sum() if target_sum is None else float(target_sum)
        n = self.n_cells
        if n < 2:
            raise DataError(f"gene statistics need at least 2 cells, got {n}")
        mean = self.norm_sum / n
        var = np.maximum(self.norm_sumsq / n - mean * mean, 0.0) * (n / (n - 1))
        return mean * target, var * target * target


def hvg_from_mean_var(mean: np.ndarray, var: np.ndarray, *, flavor: str, n_top_genes: int) -> pd.DataFrame:
    """Highly variable genes from per-gene means and variances of normalised counts, as scanpy ranks them.

    ``seurat``: ``scanpy.pp.highly_variable_genes(flavor="seurat")`` on log1p data (dispersion ``log(var/mean)``
    normalised by the mean and s.d. of 20 equal-width bins of ``log1p(mean)``). ``cell_ranger``: the
    ``recipe_zheng17`` step, ``filter_genes_dispersion(flavor="cell_ranger", log=False)`` (``|var/mean - median|
    / MAD`` within 20 mean-percentile bins). Both keep the ``n_top_genes`` genes of highest normalised dispersion
    (ties at the cut-off kept, as scanpy). Returns columns ``means``, ``dispersions``, ``dispersions_norm``,
    ``highly_variable``, one row per gene.
    """
    from scipy.stats import median_abs_deviation

    if flavor not in FLAVORS:
        raise ConfigError(f"HVG flavor must be one of {', '.join(FLAVORS)}, got '{flavor}'")
    mean = np.array(mean, dtype=np.float64)
    mean[mean == 0] = 1e-12
    dispersion = np.asarray(var, dtype=np.float64) / mean
    if flavor == "seurat":
        dispersion[dispersion == 0] = np.nan
        dispersion = np.log(dispersion)
        mean = np.log1p(mean)
        bins: Any = 20
    else:
        bins = np.r_[-np.inf, np.percentile(mean, np.arange(10, 105, 5)), np.inf]
    df = pd.DataFrame({"means": mean, "dispersions": dispersion})
    df["mean_bin"] = pd.cut(df["means"], bins=bins)
    grouped = df.groupby("mean_bin", observed=True)["dispersions"]
    if flavor == "seurat":
        avg, dev = grouped.mean(), grouped.std(ddof=1)
        single = dev.isna()  # one gene in the bin: normalised dispersion 1, as scanpy
        dev[single], avg[single] = avg[single], 0.0
        norm = (df["dispersions"].to_numpy() - avg.loc[df["mean_bin"]].to_numpy()) / dev.loc[df["mean_bin"]].to_numpy()
    else:
        median = grouped.median()
        mad = grouped.agg(lambda a: median_abs_deviation(a, scale="normal", nan_policy="omit"))
        norm = (
            np.abs(df["dispersions"].to_numpy() - median.loc[df["mean_bin"]].to_numpy())
            / mad.loc[df["mean_bin"]].to_numpy()
        )
    # The cut-off is the n-th highest value; scanpy's cell_ranger step (filter_genes_dispersion) takes it from
    # the values rounded to float32 and compares the float64 values with it, so it may keep fewer than n genes.
    df["dispersions_norm"] = norm
    ranked = norm[~np.isnan(norm)]
    ranked = np.sort(ranked if flavor == "seurat" else ranked.astype(np.float32))[::-1]
    n_top = min(int(n_top_genes), ranked.size)
    if n_top < 1:
        raise DataError("no gene has a finite normalised dispersion (too few cells or genes)")
    df["highly_variable"] = np.nan_to_num(norm, nan=-np.inf) >= ranked[n_top - 1]
    return df.drop(columns="mean_bin")


def read_rows(path: str | Path, rows: np.ndarray, *, genes: np.ndarray | None = None) -> ad.AnnData:
    """An in-memory AnnData of file rows ``rows`` (sorted, as given) and optionally only ``genes`` (a mask or
    positions): X, obs and var of those cells; the rest of the file is not read."""
    import anndata as ad

    from scsynth_core.data.checks import read_h5ad

    backed = read_h5ad(path, backed=True)
    try:
        rows = np.asarray(rows, dtype=np.int64)
        with BackedRows(path) as source:
            X = source[rows]
        obs, var = backed.obs.iloc[rows].copy(), backed.var.copy()
    finally:
        backed.file.close()
    if genes is not None:
        X, var = X[:, genes], var.iloc[np.flatnonzero(genes) if np.asarray(genes).dtype == bool else genes]
    return ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=var)


def subsample_rows(positions: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """At most ``n`` of ``positions`` drawn without replacement with ``seed``, sorted (an evaluation subsample:
    the papers evaluate 3,000 cells)."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) <= n:
        return np.sort(positions)
    return np.sort(np.random.default_rng(seed).choice(positions, int(n), replace=False))
