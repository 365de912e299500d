"""The embedded default dataset: 700 real PBMCs with integer counts, available offline.

scanpy ships ``datasets/10x_pbmc68k_reduced.h5ad``: 700 cells of the Fresh 68k PBMC study (Zheng et al. 2017),
the data set scGAN/cscGAN (Marouf 2020, "Data") and ACTIVA (Heydari 2022) train on. Its ``raw.X`` holds
``log1p(counts / n_counts * 1e4)`` for 765 genes, stored to about three decimals, with ``obs["n_counts"]`` the
library size over *all* genes. The counts are recovered exactly as ``round(expm1(raw.X) * n_counts / 1e4)``:
the unrounded values lie within 0.082 of an integer. The file is verified by checksum and the recovery by an
integrality check, so a changed scanpy release fails loudly instead of silently changing the default data.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    import anndata as ad

#: sha256 of ``scanpy/datasets/10x_pbmc68k_reduced.h5ad`` as shipped with scanpy 1.11.5.
PBMC68K_REDUCED_SHA256 = "e71d41e737c941559b7c57c9243bdb3d2c889c2adfdf00e3422ac6b46783676f"

#: Largest allowed distance of a recovered (unrounded) count from the nearest integer (measured: 0.082).
RECOVERY_TOLERANCE = 0.25

#: Scale factor of scanpy's ``normalize_total`` in the stored ``raw.X``.
_SCALE = 1e4

#: obs columns carried over: source name -> name in the returned AnnData.
_OBS_COLUMNS = {
    "bulk_labels": "bulk_labels",
    "louvain": "louvain",
    "phase": "phase",
    "n_counts": "n_counts_all_genes",
    "n_genes": "n_genes_all_genes",
    "percent_mito": "percent_mito",
}


def pbmc68k_reduced_path() -> Path:
    """Path of the h5ad file inside the installed scanpy package (nothing is downloaded)."""
    import scanpy

    return Path(scanpy.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_pbmc68k_reduced_counts() -> ad.AnnData:
    """Load the 700-cell PBMC 68k subset bundled with scanpy as integer counts.

    Returns
    -------
    anndata.AnnData
        700 cells x 765 genes; ``X`` a CSR ``int32`` count matrix (``var_names`` of the source's ``raw``);
        ``obs``: ``bulk_labels`` (10 purified-population labels of Zheng et al. 2017), ``louvain`` (11 clusters
        from scanpy's processing), ``phase``, ``n_counts_all_genes`` / ``n_genes_all_genes`` (library size and
        detected genes over all genes of the original matrix, so they exceed the sums over these 765 genes)
        and ``percent_mito``; ``uns["source"]`` names the file and its checksum.

    Raises
    ------
    DataError
        If the file is missing, its sha256 differs from :data:`PBMC68K_REDUCED_SHA256`, or the recovered
        values are not within :data:`RECOVERY_TOLERANCE` of integers.
    """
    import anndata as ad

    path = pbmc68k_reduced_path()
    if not path.is_file():
        raise DataError(f"{path}: bundled dataset pbmc68k_reduced not found in the installed scanpy package")
    digest = _sha256(path)
    if digest != PBMC68K_REDUCED_SHA256:
        raise DataError(
            f"{path}: sha256 {digest} differs from the known {PBMC68K_REDUCED_SHA256} "
            "(another scanpy release or a modified file; counts cannot be recovered reliably)"
        )
    with warnings.catch_warnings():
        # The (checksum-verified) file predates anndata's current encoding; its format warnings are noise here.
        warnings.simplefilter("ignore")
        src = ad.read_h5ad(path)
    if src.raw is None or "n_counts" not in src.obs.columns:
        raise DataError(f"{path}: expected a .raw matrix and obs['n_counts'] (log-normalised values + library size)")

    logn = sp.csr_matrix(src.raw.X, dtype=np.float64)
    logn.sum_duplicates()
    library = src.obs["n_counts"].to_numpy(dtype=np.float64)
    # Undo log1p(counts / n_counts * 1e4) on the stored non-zeros only: row i of .data scales by n_counts[i].
    rows = np.repeat(np.arange(logn.shape[0]), np.diff(logn.indptr))
    values = np.expm1(logn.data) * library[rows] / _SCALE
    counts = np.rint(values)
    distance = float(np.abs(values - counts).max()) if values.size else 0.0
    if distance >= RECOVERY_TOLERANCE or not np.all(np.isfinite(values)) or (counts < 0).any():
        raise DataError(
            f"{path}: recovered counts are not integers (max distance to nearest integer {distance:.3g}, "
            f"tolerance {RECOVERY_TOLERANCE})"
        )
    X = sp.csr_matrix((counts.astype(np.int32), logn.indices.copy(), logn.indptr.copy()), shape=logn.shape)
    X.eliminate_zeros()

    obs = pd.DataFrame(index=pd.Index(src.obs_names.astype(str), name=None))
    for source, target in _OBS_COLUMNS.items():
        if source in src.obs.columns:
            obs[target] = src.obs[source].values  # Categorical stays categorical; no index alignment
    var = pd.DataFrame(index=pd.Index(src.raw.var_names.astype(str), name=None))
    return ad.AnnData(
        X=X,
        obs=obs,
        var=var,
        uns={"source": {"file": "scanpy/datasets/10x_pbmc68k_reduced.h5ad", "sha256": digest}},
    )


#: Bundled datasets by name: each a zero-argument loader returning an AnnData of integer counts.
BUNDLED: dict[str, Callable[[], ad.AnnData]] = {
    "pbmc68k_reduced": load_pbmc68k_reduced_counts,
}
