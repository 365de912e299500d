"""The shared representation every realism metric is computed in (Marouf et al. 2020, Methods "Evaluation").

Real cells are library-size normalised to 20,000 counts, log-transformed (log(x + 1)) and reduced to 50 principal
components (at most ``n_fit // 5``) fitted on real cells only, on the sparse matrix; generated cells are projected
with the same loadings. The protocol fits on the training cells minus the positive control's, so no compared cell
is in the fit (:func:`fit_protocol_representation`); :func:`fit_marouf_representation` is Marouf's own. Why, with
measurements: docs/experiments.md, ``realism`` ("Choice: the PCA is fitted on training cells").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, DataError

LSN_TARGET = 20_000
N_COMPONENTS = 50
#: Genes Marouf's representation keeps (Marouf 2020, Methods "Clustering": the 1,000 most variable genes).
MAROUF_TOP_GENES = 1000
#: The realism protocol's representations (config ``realism.representation``): this project's PCA of the
#: training cells minus the control's, or Marouf's PCA of the scaled top genes of the real test cells.
REPRESENTATIONS = ("scsynth", "marouf")


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
    kind: str = "scsynth"  # which of REPRESENTATIONS fitted it (recorded, not used by transform)

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
        from scsynth_core.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(
                handle,
                mean=self.mean,
                components=self.components,
                var_names=np.asarray(self.var_names, dtype=str),
                target_sum=self.target_sum,
                kind=self.kind,
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
                    kind=str(data["kind"]) if "kind" in data.files else "scsynth",  # files saved before the option
                )
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: not a saved representation ({type(exc).__name__}: {exc})") from None


def control_rows(n_train: int, n_test: int, *, seed: int) -> np.ndarray:
    """Rows of the training cells held out of the protocol's PCA as the real control (Marouf's "real vs real").

    As many as there are test cells, at most half the training cells, drawn with ``seed``; sorted.
    """
    size = min(int(n_test), int(n_train) // 2)
    return np.sort(np.random.default_rng([int(seed), 29]).choice(int(n_train), size, replace=False))


def protocol_cells(cells, *, seed: int = 0):
    """``(PCA cells, control cells, test cells)`` of a dataset whose ``obs['split']`` says train/test (the PCA
    cells of this project's representation; Marouf's is fitted on the test cells)."""
    if "split" not in cells.obs:
        raise DataError("the realism protocol needs obs['split'] (train/test) to choose the PCA's cells")
    is_train = (cells.obs["split"] == "train").to_numpy()
    train, test = cells[is_train], cells[~is_train & (cells.obs["split"] == "test").to_numpy()]
    control = control_rows(train.n_obs, test.n_obs, seed=seed)
    fit = np.setdiff1d(np.arange(train.n_obs), control)
    return train[fit].copy(), train[control].copy(), test.copy()


def fit_protocol_representation(
    cells, *, n_components: int = N_COMPONENTS, seed: int = 0, kind: str = "scsynth"
) -> SharedRepresentation:
    """The realism protocol's PCA. ``kind="scsynth"``: fitted on the training cells minus the control's (why:
    docs/experiments.md, realism, "Choice"); ``kind="marouf"``: Marouf's representation of the test cells
    (:func:`fit_marouf_representation`). The control's cells are the same rows either way."""
    if kind not in REPRESENTATIONS:
        raise ConfigError(f"realism.representation: expected one of {list(REPRESENTATIONS)}, got {kind!r}")
    fit_cells, _, test = protocol_cells(cells, seed=seed)
    if kind == "marouf":
        return fit_marouf_representation(test, n_components=n_components, seed=seed)
    return fit_representation(fit_cells, n_components=n_components, seed=seed)


def fit_representation(real, *, n_components: int = N_COMPONENTS, seed: int = 0) -> SharedRepresentation:
    """Fit the shared representation on real cells (AnnData).

    ``n_components`` is capped at ``min(n_cells // 5, n_genes - 1)`` for small sets (docs/experiments.md, realism).
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


def _cell_ranger_top_genes(log_values: sp.csr_matrix, n_top: int) -> np.ndarray:
    """Boolean mask of the ``n_top`` genes of highest Cell Ranger normalised dispersion (scanpy
    ``highly_variable_genes(flavor="cell_ranger")``: dispersion of LSN values, normalised by the median and MAD of
    its mean-expression bin). Ranked by the normalised dispersion itself, so exactly ``n_top`` genes (ties: gene
    order). Genes never expressed in these cells are left out before the ranking: their equal zero means would
    make the mean bins' edges coincide, which scanpy cannot bin."""
    import anndata as ad
    import scanpy as sc

    expressed = np.flatnonzero(log_values.getnnz(axis=0))
    table = sc.pp.highly_variable_genes(ad.AnnData(log_values[:, expressed]), flavor="cell_ranger", inplace=False)
    score = np.nan_to_num(table["dispersions_norm"].to_numpy(np.float64), nan=-np.inf)
    mask = np.zeros(log_values.shape[1], dtype=bool)
    mask[expressed[np.argsort(-score, kind="stable")[:n_top]]] = True
    return mask


def fit_marouf_representation(
    real, *, n_components: int = N_COMPONENTS, n_top_genes: int = MAROUF_TOP_GENES, seed: int = 0
) -> SharedRepresentation:
    """Marouf 2020's representation of real cells (Methods "Clustering" and "Evaluation"): log(LSN + 1), the
    ``n_top_genes`` genes of highest Cell Ranger normalised dispersion among ``real``, each scaled to mean 0 and
    sd 1 over ``real`` (scanpy ``scale``: sd with ``ddof=1``, a constant gene keeps sd 1, no clipping), and a PCA of
    those scaled values fitted on ``real``.

    Returned as a :class:`SharedRepresentation` over all genes: the scaling is folded into the loadings (zero for
    the genes left out), so projecting other cells applies the real cells' selection, means and sds. The
    normalisation is the one the Methods state (LSN over all genes, then log); scanpy's ``recipe_zheng17``, which
    scGAN's clustering ran, renormalises over the selected genes, which no fixed projection of other cells can do.
    With ``n_top_genes`` or fewer expressed genes all of them are kept. Components are capped as in
    :func:`fit_representation`.
    """
    from sklearn.decomposition import PCA

    values = log_lsn(real.X)
    n_keep = min(int(n_top_genes), int((values.getnnz(axis=0) > 0).sum()))
    n_cap = min(real.n_obs // 5, n_keep - 1)
    if n_cap < 2:
        raise DataError(f"too few real cells/expressed genes for Marouf's representation ({real.n_obs} cells, "
                        f"{n_keep} expressed genes)")  # fmt: skip
    expressed = np.asarray(values.getnnz(axis=0)) > 0
    keep = expressed if n_keep == expressed.sum() else _cell_ranger_top_genes(values, n_keep)
    dense = values[:, keep].toarray()
    mu = dense.mean(axis=0)
    sd = dense.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    pca = PCA(n_components=min(n_components, n_cap), svd_solver="arpack", random_state=seed)
    pca.fit((dense - mu) / sd)
    components = np.zeros((pca.n_components_, real.n_vars))
    components[:, keep] = pca.components_ / sd
    mean = np.zeros(real.n_vars)
    mean[keep] = mu + sd * pca.mean_  # so that X C^T - mean C^T = ((x - mu) / sd - pca.mean_) W^T
    return SharedRepresentation(mean=mean, components=components, var_names=[str(v) for v in real.var_names],
                                kind="marouf")  # fmt: skip
