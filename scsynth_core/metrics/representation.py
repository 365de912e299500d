"""The shared representation every realism metric is computed in (Marouf et al. 2020, Methods "Evaluation").

Real cells are library-size normalised to 20,000 counts, log-transformed (log(x + 1)) and reduced to 50 principal
components fitted on the REAL cells only; generated cells are projected with the same loadings. PCA runs on the
sparse matrix (implicit centring, ARPACK), so the full matrix is never densified.

Small real sets: 50 components fitted on a few hundred cells describe those exact cells, and any other set
(even real cells) projects differently, which inflates real-vs-real classifier AUC (measured 0.97 on a 350-cell
set). The number of components is therefore capped at ``n_real // 5`` (and below the number of genes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import DataError

LSN_TARGET = 20_000
N_COMPONENTS = 50


def log_lsn(X, target_sum: float = LSN_TARGET) -> sp.csr_matrix:
    """log1p of library-size-normalised expression as CSR (zeros stay zeros, so sparsity is kept)."""
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    lib = np.asarray(X.sum(axis=1)).ravel()
    scale = np.divide(target_sum, lib, out=np.zeros_like(lib), where=lib > 0)
    X = sp.csr_matrix(sp.diags(scale) @ X)
    X.data = np.log1p(X.data)
    return X


@dataclass
class SharedRepresentation:
    """PCA of log(LSN + 1) fitted on real cells; ``transform`` projects any cells with the same genes."""

    pca: object
    var_names: list[str]
    target_sum: float = LSN_TARGET

    @property
    def n_components(self) -> int:
        return int(self.pca.n_components_)

    def transform(self, adata) -> np.ndarray:
        """Project cells (raw counts or LSN values: both are re-normalised to ``target_sum``)."""
        if list(adata.var_names) != self.var_names:
            raise DataError("cells to project have different genes than the real cells the PCA was fitted on")
        return self.pca.transform(log_lsn(adata.X, self.target_sum)).astype(np.float32)


def fit_representation(real, *, n_components: int = N_COMPONENTS, seed: int = 0) -> SharedRepresentation:
    """Fit the shared representation on real cells (AnnData).

    ``n_components`` is capped at ``min(n_cells // 5, n_genes - 1)`` for small sets (see module docstring).
    """
    from sklearn.decomposition import PCA

    n_cap = min(real.n_obs // 5, real.n_vars - 1)
    if n_cap < 2:
        raise DataError(f"too few real cells/genes for a PCA representation ({real.n_obs} x {real.n_vars})")
    pca = PCA(n_components=min(n_components, n_cap), svd_solver="arpack", random_state=seed)
    pca.fit(log_lsn(real.X))
    return SharedRepresentation(pca=pca, var_names=[str(v) for v in real.var_names])
