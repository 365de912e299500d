"""The pilot-study evaluation of Treppner et al. 2021 (Methods "Evaluation", Fig. 2-3, Table 1).

A model trained on a pilot subsample generates a set the size of the original data. The original data carry the
ground truth: their graph clustering (the preparation recipe's ``obs["cluster"]``, Seurat-like for PBMC4k) and a
UMAP embedding. Synthetic cells are placed in that embedding and every synthetic cell takes the label of its
nearest original cell (Euclidean, UMAP space); then :func:`scsynth_core.metrics.clustering.label_transfer_metrics`
gives the Davies-Bouldin index against the original's, the per-cluster count differences and the ARI against a
fresh clustering of the synthetic cells (same graph method and resolution), and
:func:`scsynth_core.metrics.genes.gene_statistics_mad` the per-gene deviations of median, IQR, CV and zero
fraction.

Beside these, two values as the authors' notebook computes them (scDBM-paper): the DBI of the raw count matrices
(original cells under their labels, synthetic cells under the transferred labels; ``dbi_counts_*``) and the
unadjusted Rand index between the original labels and the transferred labels paired by row (``rand_index``,
:func:`paired_rand_index`; the synthetic set has the original's size). Only the label transfer stays ours: the
notebook embeds original and synthetic cells in two separate UMAPs before taking nearest neighbours.

Embedding. The original counts are normalised to 10,000 per cell and log1p-transformed, reduced by PCA and
embedded by UMAP (umap-learn, seeded, on the PCs). Synthetic cells get the same normalisation, are centred with the
ORIGINAL gene means and projected on the original loadings, then placed by the fitted UMAP's ``transform``: the
original embedding never moves, so every synthetic set is judged in the same space. (scanpy's ``tl.ingest`` would
centre a synthetic set on its own mean, which moves a set made of one cluster to the middle of the map.) The
paper embeds with Seurat/uwot; this is the Python equivalent.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    import anndata as ad

#: Counts per cell after normalisation, before ``log1p`` (fixed, so synthetic sets are normalised identically).
TARGET_SUM = 1e4
#: Key of the ground-truth labels in the reference's ``obs``.
GROUND_TRUTH = "ground_truth"


def _log_normalised(counts: ad.AnnData) -> ad.AnnData:
    import anndata as ad
    import scanpy as sc
    import scipy.sparse as sp

    work = ad.AnnData(X=sp.csr_matrix(counts.X, dtype=np.float32), obs=counts.obs[[]].copy(), var=counts.var[[]].copy())
    sc.pp.normalize_total(work, target_sum=TARGET_SUM)
    sc.pp.log1p(work)
    return work


def _fit_umap(pcs: np.ndarray, *, n_neighbors: int, seed: int):
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "n_jobs overridden by setting random_state": intended
        reducer = umap.UMAP(n_neighbors=max(2, min(n_neighbors, pcs.shape[0] - 1)), random_state=seed)
        reducer.fit(pcs)
    return reducer


def build_pilot_reference(
    original: ad.AnnData,
    *,
    label_key: str = "cluster",
    n_pcs: int = 50,
    n_neighbors: int = 15,
    seed: int = 0,
) -> ad.AnnData:
    """The original data as the reference of the pilot evaluation (Treppner 2021, Methods).

    Returns log-normalised cells with ``obs["ground_truth"]`` (the labels in ``label_key``), ``obsm["X_pca"]``,
    ``obsm["X_umap"]``, the loadings ``varm["PCs"]`` and gene means ``var["pca_mean"]`` (for projecting other
    cells), and the raw counts in ``layers["counts"]`` for the per-gene statistics.
    """
    import scanpy as sc

    from scsynth_core.data.checks import check_counts, check_labels

    check_counts(original.X, where="pilot reference (X)")
    check_labels(original, label_key, where="pilot reference")
    n_comps = min(n_pcs, original.n_obs - 1, original.n_vars - 1)
    if n_comps < 2:
        raise DataError(f"pilot reference: {original.n_obs} cells x {original.n_vars} genes is too small to embed")
    ref = _log_normalised(original)
    ref.layers["counts"] = original.X.copy()
    ref.obs[GROUND_TRUTH] = original.obs[label_key].astype(str).astype("category").to_numpy()
    ref.var["pca_mean"] = np.asarray(ref.X.mean(axis=0)).ravel()
    sc.pp.pca(ref, n_comps=n_comps, svd_solver="arpack", random_state=seed)
    ref.obsm["X_umap"] = _fit_umap(ref.obsm["X_pca"], n_neighbors=n_neighbors, seed=seed).embedding_
    ref.uns["pilot_reference"] = {
        "label_key": label_key,
        "n_pcs": int(n_comps),
        "n_neighbors": int(n_neighbors),
        "seed": int(seed),
        "target_sum": TARGET_SUM,
    }
    return ref


def paired_rand_index(original_labels, synthetic_labels) -> float:
    """Unadjusted Rand index of the original cells' labels and the synthetic cells' transferred labels, cell ``i``
    of one set paired with cell ``i`` of the other, as the authors' notebook computes it (Clustering.jl
    ``randindex`` index 2, :func:`sklearn.metrics.rand_score`). The pairing by row has no biological meaning for
    unpaired sets; it is reported to compare with the paper's numbers."""
    from sklearn.metrics import rand_score

    a, b = np.asarray(original_labels), np.asarray(synthetic_labels)
    if a.shape != b.shape:
        raise DataError(
            f"pilot Rand index pairs cells by row: {a.shape[0]} original and {b.shape[0]} synthetic "
            "labels (the synthetic set must have the original's size)"
        )
    return float(rand_score(a, b))


def gene_zero_fractions(X) -> np.ndarray:
    """Fraction of cells with a zero count, per gene (column) of a dense or sparse cells x genes matrix."""
    import scipy.sparse as sp

    nonzero = (X != 0).sum(axis=0) if sp.issparse(X) else np.count_nonzero(np.asarray(X), axis=0)
    return 1.0 - np.asarray(nonzero, dtype=np.float64).ravel() / X.shape[0]


class ReferenceSpace:
    """The reference's PCA and UMAP, able to place other cells (refits the seeded UMAP once: deterministic)."""

    def __init__(self, reference: ad.AnnData) -> None:
        settings = reference.uns["pilot_reference"]
        self.genes = [str(v) for v in reference.var_names]
        self.mean = reference.var["pca_mean"].to_numpy(np.float64)
        self.loadings = np.asarray(reference.varm["PCs"], dtype=np.float64)
        self.umap = _fit_umap(
            reference.obsm["X_pca"], n_neighbors=int(settings["n_neighbors"]), seed=int(settings["seed"])
        )

    def embed(self, synthetic: ad.AnnData) -> ad.AnnData:
        """Synthetic counts normalised like the reference, with ``obsm["X_pca"]`` and ``obsm["X_umap"]``."""
        if [str(v) for v in synthetic.var_names] != self.genes:
            raise DataError("pilot evaluation: synthetic cells must have the original data's genes, in the same order")
        work = _log_normalised(synthetic)
        # (X - mean) @ W without densifying X: X @ W - mean @ W
        work.obsm["X_pca"] = np.asarray(work.X @ self.loadings) - self.mean @ self.loadings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            work.obsm["X_umap"] = self.umap.transform(work.obsm["X_pca"])
        return work


def cluster_like_reference(embedded: ad.AnnData, *, resolution: float, n_neighbors: int = 20, seed: int = 0):
    """A fresh graph clustering of (synthetic) cells on their PCs: kNN graph + Leiden at ``resolution``
    (the method of the ``treppner`` preparation recipe, Seurat-like)."""
    import scanpy as sc
    import scipy.sparse as sp

    from scsynth_core.data.preprocess import graph_communities

    work = embedded.copy()
    sc.pp.neighbors(work, n_neighbors=max(2, min(n_neighbors, work.n_obs - 1)), use_rep="X_pca", random_state=seed)
    return graph_communities(
        sp.csr_matrix(work.obsp["connectivities"]), method="leiden", resolution=resolution, seed=seed, use_weights=True
    ).astype(str)


def evaluate_pilot_set(
    reference: ad.AnnData,
    synthetic: ad.AnnData,
    *,
    space: ReferenceSpace | None = None,
    resolution: float,
    n_neighbors: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """Treppner 2021's metrics of one synthetic set against the reference (see the module docstring).

    Returns ``dbi_original``, ``dbi_synthetic``, ``ari``, ``count_difference`` (Table 1, summed over clusters),
    ``count_difference_per_cluster``, ``n_synthetic`` and ``mad_median``, ``mad_iqr``, ``mad_cv``,
    ``mad_zero_fraction`` (counts scale); the authors' ``dbi_counts_original``, ``dbi_counts_synthetic`` (DBI of
    the count matrices, p = q = 2) and ``rand_index`` (:func:`paired_rand_index`); plus ``embedded`` (the synthetic cells in the reference embedding, with
    ``obs["transferred"]`` and ``obs["synthetic_cluster"]``) for figures. ``space``: the reference's
    :class:`ReferenceSpace`, built once and reused across synthetic sets (it refits UMAP).
    """
    from scsynth_core.data.checks import check_counts
    from scsynth_core.metrics.clustering import davies_bouldin, label_transfer_metrics, transfer_labels
    from scsynth_core.metrics.genes import gene_statistics_mad

    check_counts(synthetic.X, where="pilot evaluation: synthetic cells (X)")
    embedded = (space or ReferenceSpace(reference)).embed(synthetic)
    original_umap = reference.obsm["X_umap"]
    truth = reference.obs[GROUND_TRUTH].astype(str).to_numpy()
    fresh = cluster_like_reference(embedded, resolution=resolution, n_neighbors=n_neighbors, seed=seed)
    out: dict[str, Any] = label_transfer_metrics(original_umap, truth, embedded.obsm["X_umap"], fresh)
    out["n_synthetic"] = int(synthetic.n_obs)
    mads = gene_statistics_mad(reference.layers["counts"], synthetic.X)
    out |= {name: float(value) for name, value in mads.items()}
    transferred = transfer_labels(original_umap, truth, embedded.obsm["X_umap"])
    # the authors' values: DBI of the raw counts (not densified), Rand index paired by row
    out["dbi_counts_original"] = davies_bouldin(reference.layers["counts"], truth)
    out["dbi_counts_synthetic"] = davies_bouldin(synthetic.X, transferred)
    out["rand_index"] = paired_rand_index(truth, transferred)
    embedded.obs["transferred"] = transferred
    embedded.obs["synthetic_cluster"] = fresh
    out["embedded"] = embedded
    return out
