"""Write an h5ad row chunk by row chunk, so memory holds one chunk whatever the number of cells.

:class:`H5adStreamWriter` lays the file out as ``anndata.write_h5ad`` does (same encodings, gzip) using
anndata's own element writers: the first chunk creates resizable ``X`` (CSR, 64-bit ``indptr``) and ``obs``
datasets (and ``obsm`` arrays if given), later chunks are appended (``anndata.io.sparse_dataset(...).append`` for
``X``, resizing for ``obs`` and ``obsm``), and ``uns`` is written last. The result reads back with
``anndata.read_h5ad`` like any h5ad. Write to a temporary path (:func:`scsynth_core.atomic.atomic_path`) so a
crash never leaves a partial file in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import os

    import scipy.sparse as sp

#: HDF5 chunk lengths (elements) of the growing datasets: large enough that appends write whole compressed
#: chunks, small enough that the per-dataset chunk cache below holds the partly filled one.
_X_CHUNK = 2**16
_OBS_CHUNK = 2**16
_CHUNK_CACHE_BYTES = 16 * 2**20


def estimated_bytes(first: sp.csr_matrix, n_rows: int) -> int:
    """Uncompressed size of ``X`` with ``n_rows`` rows as dense as ``first`` (data, indices, 64-bit indptr)."""
    per_row = first.nnz / max(first.shape[0], 1)
    return int(n_rows * per_row * (first.data.itemsize + first.indices.itemsize) + 8 * (n_rows + 1))


class H5adStreamWriter:
    """An h5ad file filled by :meth:`append` (rows of ``X`` with their ``obs`` and ``obsm`` rows) and closed by
    :meth:`finish`.

    ``obs`` columns must be categorical (fixed categories) or numeric, as in generated cells; the index holds
    the cell names. Use as a context manager: the file is closed on leaving, also on error.
    """

    def __init__(self, path: str | os.PathLike, var: pd.DataFrame, *, compression: str | None = "gzip") -> None:
        import h5py

        self._file = h5py.File(path, "w", rdcc_nbytes=_CHUNK_CACHE_BYTES)
        self._var = var
        self._compression = compression
        self._categories: dict[str, list] = {}
        self.n_rows = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def append(self, X: sp.csr_matrix, obs: pd.DataFrame, obsm: dict[str, np.ndarray] | None = None) -> None:
        """Add the rows ``X`` (CSR, ``var``'s columns), their ``obs`` rows and their ``obsm`` rows (2-d arrays;
        the same keys and widths in every chunk)."""
        obsm = dict(obsm or {})
        if X.shape[0] != len(obs) or X.shape[1] != len(self._var):
            raise ValueError(f"chunk of {X.shape} with {len(obs)} obs rows does not fit {len(self._var)} genes")
        if any(np.ndim(rows) != 2 or len(rows) != X.shape[0] for rows in obsm.values()):
            raise ValueError(f"obsm arrays must be 2-d with one row per cell ({X.shape[0]})")
        if self.n_rows == 0:
            self._start(X, obs, obsm)
        else:
            if sorted(obsm) != sorted(self._file["obsm"]):
                raise ValueError(f"obsm keys {sorted(obsm)} differ from the first chunk's")
            self._X.append(X)
            self._append_obs(obs)
            for key, rows in obsm.items():
                _extend(self._file["obsm"][key], np.asarray(rows))
        self.n_rows += X.shape[0]

    def finish(self, uns: dict[str, Any]) -> None:
        """Write ``uns`` (after the last chunk, so it may record how generation went)."""
        from anndata.io import write_elem

        write_elem(self._file, "uns", uns, dataset_kwargs={"compression": self._compression})

    def _start(self, X: sp.csr_matrix, obs: pd.DataFrame, obsm: dict[str, np.ndarray]) -> None:
        import h5py
        from anndata.io import sparse_dataset, write_elem

        f = self._file
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        # anndata makes sparse datasets resizable itself; a 64-bit indptr lets X grow past 2**31 non-zeros.
        write_elem(
            f,
            "X",
            X,
            dataset_kwargs={"compression": self._compression, "indptr_dtype": np.int64, "chunks": (_X_CHUNK,)},
        )
        write_elem(
            f,
            "obs",
            obs,
            dataset_kwargs={"compression": self._compression, "maxshape": (None,), "chunks": (_OBS_CHUNK,)},
        )
        write_elem(f, "var", self._var, dataset_kwargs={"compression": self._compression})
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(f, key, {})
        for key, rows in obsm.items():
            rows = np.asarray(rows)
            write_elem(
                f["obsm"],
                key,
                rows,
                dataset_kwargs={
                    "compression": self._compression,
                    "maxshape": (None, rows.shape[1]),
                    "chunks": (max(1, _OBS_CHUNK // max(rows.shape[1], 1)), max(rows.shape[1], 1)),
                },
            )
        self._categories = {
            col: list(obs[col].cat.categories) for col in obs.columns if isinstance(obs[col].dtype, pd.CategoricalDtype)
        }
        # HDF5 flushes a dataset's chunk cache when its last handle closes, which would recompress the partly
        # filled chunk at every append: hold one handle to each growing dataset while writing.
        self._X = sparse_dataset(f["X"])
        self._handles = [f[f"X/{key}"] for key in ("data", "indices", "indptr")]
        for group in ("obs", "obsm"):
            f[group].visititems(lambda _, item: self._handles.append(item) if isinstance(item, h5py.Dataset) else None)

    def _append_obs(self, obs: pd.DataFrame) -> None:
        group = self._file["obs"]
        if list(obs.columns) != list(group.attrs["column-order"]):
            raise ValueError(f"obs columns {list(obs.columns)} differ from the first chunk's")
        _extend(group[group.attrs["_index"]], np.asarray(obs.index, dtype=object))
        for col in obs.columns:
            values = obs[col]
            if col in self._categories:
                # Codes index the categories written with the first chunk, so those must not change.
                if list(values.cat.categories) != self._categories[col]:
                    raise ValueError(f"obs['{col}']: categories differ from the first chunk's")
                _extend(group[col]["codes"], values.cat.codes.to_numpy())
            elif pd.api.types.is_numeric_dtype(values.dtype):
                _extend(group[col], values.to_numpy())
            else:
                raise TypeError(f"obs['{col}']: only categorical or numeric columns can be appended")


def _extend(dataset, values: np.ndarray) -> None:
    """Append ``values`` (rows) to a resizable HDF5 dataset along its first axis."""
    start = dataset.shape[0]
    dataset.resize((start + len(values), *dataset.shape[1:]))
    dataset[start:] = values.astype(dataset.dtype, copy=False) if dataset.dtype != object else values
