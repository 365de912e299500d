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
    """PCA of log(LSN + 1) fitted on real cells; ``transform`` projects any cells with the same genes.

    Holds the gene means and loadings themselves (not an estimator object), so it is saved as a small ``.npz``
    once per dataset and every evaluation job loads the same projection.
    """

    mean: np.ndarray  # (genes,) mean of log(LSN + 1) over the real cells
    components: np.ndarray  # (n_components, genes) principal axes
    var_names: list[str]
    target_sum: float = LSN_TARGET

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def transform(self, adata) -> np.ndarray:
        """Project cells (raw counts or LSN values: both are re-normalised to ``target_sum``).

        Centring is applied after the product (X W^T - mean W^T), so sparse input is never densified.
        """
        if list(map(str, adata.var_names)) != self.var_names:
            raise DataError("cells to project have different genes than the real cells the PCA was fitted on")
        return self.project_log1p(log_lsn(adata.X, self.target_sum))

    def project_log1p(self, values) -> np.ndarray:
        """Project values that already are log(LSN + 1) (cells x the fitted genes, dense or sparse), e.g. the
        output of a ``log1p`` model."""
        X = sp.csr_matrix(values, dtype=np.float64)
        if X.shape[1] != self.components.shape[1]:
            raise DataError(f"values have {X.shape[1]} genes; the PCA was fitted on {self.components.shape[1]}")
        return (np.asarray(X @ self.components.T) - self.mean @ self.components.T).astype(np.float32)

    def save(self, path) -> None:
        """Write the projection as ``.npz`` (atomically)."""
        from scsynth_core._io import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                mean=self.mean,
                components=self.components,
                var_names=np.asarray(self.var_names, dtype=str),
                target_sum=self.target_sum,
            )

    @classmethod
    def load(cls, path) -> SharedRepresentation:
        """Read a projection written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    mean=data["mean"],
                    components=data["components"],
                    var_names=[str(v) for v in data["var_names"]],
                    target_sum=float(data["target_sum"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: not a saved representation ({type(exc).__name__}: {exc})") from None


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
    return SharedRepresentation(
        mean=pca.mean_.astype(np.float64),
        components=pca.components_.astype(np.float64),
        var_names=[str(v) for v in real.var_names],
    )
