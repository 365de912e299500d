"""Gene-gene correlation of marker genes: correlation discrepancy and the marker heatmap (Heydari et al. 2022).

* :func:`top_de_genes`: the top differentially expressed genes of every cluster (Heydari 2022, Results
  "ACTIVA captures gene-gene correlations": top 5 DE genes per cluster, 55 genes for PBMC 68k, 40 for Brain Small;
  Marouf 2020 uses the top 5 upregulated genes of clusters from scanpy ``rank_genes_groups`` on log data).
* :func:`correlation_discrepancy`: Heydari 2022, eq. 7, ``CD(G, R) = ||C_G - C_R||_1 = max_j sum_i |G_ij - R_ij|``,
  the matrix 1-norm of the difference of the Pearson correlation matrices of generated (G) and real (R) cells over
  those genes (PBMC: ACTIVA 1.5816, scGAN 2.2037).
* :func:`marker_correlation_frame`: the data of Heydari 2022 Fig. 4 / Marouf 2020 Fig. 1d: one square matrix with the
  generated cells' correlations below the diagonal and the real cells' above it.
* :data:`HEATMAPS`: the two papers' heatmaps. Heydari 2022 Fig. 4 (``activa``): the top 5 DE genes of every cluster,
  LSN values. Marouf 2020 Fig. 1d (``marouf``): the top 5 upregulated genes of each of the two largest clusters
  (10 genes), correlations of log-transformed expression as Marouf states.

Expression space. ACTIVA and scGAN train on, generate and are evaluated in library-size-normalised (LSN, 20,000
per cell) values without a log, so correlations are computed on LSN values by default (``space="lsn"``); real
counts and generated LSN values become comparable that way. ``space="log1p_lsn"`` and ``space="raw"`` are offered
for other protocols. DE genes are ranked on log1p(LSN), as scanpy's ``rank_genes_groups`` expects log data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    import anndata as ad

LSN_TARGET = 20_000

Space = Literal["lsn", "log1p_lsn", "raw"]

#: Marker-gene heatmaps (config ``realism.heatmaps``): the clusters whose top DE genes are shown (``None``: every
#: cluster; ``k``: the k largest) and the expression space of the correlations.
HEATMAPS: dict[str, dict[str, int | str | None]] = {
    "activa": {"largest": None, "space": "lsn"},  # Heydari 2022 Fig. 4 (and its CD, eq. 7)
    "marouf": {"largest": 2, "space": "log1p_lsn"},  # Marouf 2020 Fig. 1d
}

#: Columns of :func:`de_gene_table` (the workflow's ``markers.tsv``).
DE_TABLE_COLUMNS = ["cluster", "n_cells", "rank", "gene"]


def de_gene_table(
    real: ad.AnnData,
    *,
    groupby: str = "cluster",
    n_genes: int = 5,
    method: Literal["t-test", "wilcoxon", "t-test_overestim_var"] = "t-test",
) -> pd.DataFrame:
    """Top ``n_genes`` upregulated genes of every cluster as a long table (:data:`DE_TABLE_COLUMNS`).

    One row per cluster and rank (1 = most upregulated), clusters in categorical order (sorted labels for
    non-categorical columns), ``n_cells`` the cluster's size in ``real``. A gene can appear under several
    clusters; :func:`marker_genes` makes the gene sets from the table.

    Each cluster is tested against the rest with :func:`scanpy.tl.rank_genes_groups` on log1p(LSN-20,000) of a
    copy of the data (the input is not modified); genes are taken in the order of decreasing score.

    Parameters
    ----------
    real
        Real cells (counts or LSN values) with ``obs[groupby]``.
    groupby
        Cluster column.
    n_genes
        Genes per cluster (papers: 5).
    method
        ``"t-test"`` by default: scanpy's default test and the family Marouf 2020 used (scanpy 1.2's default was
        ``"t-test_overestim_var"``); the papers do not name the test. ``"wilcoxon"`` is slower but rank-based.

    Raises
    ------
    DataError
        If ``groupby`` is missing or fewer than two clusters have at least two cells.
    """
    import anndata as ad
    import scanpy as sc

    if groupby not in real.obs:
        raise DataError(f"obs has no column {groupby!r} to rank marker genes by")
    labels = real.obs[groupby]
    if not isinstance(labels.dtype, pd.CategoricalDtype):
        labels = labels.astype(str).astype("category")
    labels = labels.cat.remove_unused_categories()
    sizes = labels.value_counts()
    groups = [str(c) for c in labels.cat.categories if sizes[c] >= 2]
    if len(groups) < 2:
        raise DataError(f"need at least two clusters with >= 2 cells in obs[{groupby!r}] to rank marker genes")

    X = sp.csr_matrix(real.X, dtype=np.float64, copy=True) if sp.issparse(real.X) else np.array(real.X, np.float64)
    work = ad.AnnData(
        X,
        obs=pd.DataFrame({"_group": labels.astype(str).astype("category").values}, index=real.obs_names),
        var=pd.DataFrame(index=real.var_names),
    )
    sc.pp.normalize_total(work, target_sum=LSN_TARGET)
    sc.pp.log1p(work)
    sc.tl.rank_genes_groups(
        work, "_group", groups=groups, reference="rest", method=method, n_genes=n_genes, use_raw=False
    )
    names = work.uns["rank_genes_groups"]["names"]
    size_of = {str(c): int(n) for c, n in sizes.items()}
    rows = [(group, size_of[group], rank, str(gene))
            for group in groups for rank, gene in enumerate(names[group][:n_genes], start=1)]  # fmt: skip
    return pd.DataFrame(rows, columns=DE_TABLE_COLUMNS)


def marker_genes(table: pd.DataFrame, *, largest: int | None = None) -> list[str]:
    """The gene set of a :func:`de_gene_table`: its genes in table order without repeats.

    ``largest=None``: every cluster (Heydari 2022, "top 5 DE genes of each cluster": 55 genes for PBMC 68k, 40 for
    Brain Small, a gene already chosen for an earlier cluster not repeated). ``largest=k``: only the ``k``
    clusters with the most cells, largest first, ties in table order (Marouf 2020 Fig. 1d: the top 5 upregulated
    genes of each of the two largest clusters).
    """
    missing = [c for c in DE_TABLE_COLUMNS if c not in table]
    if missing:
        raise DataError(f"marker-gene table lacks column(s) {missing} (expected {DE_TABLE_COLUMNS})")
    table = table.astype({"cluster": str, "gene": str})
    order = list(dict.fromkeys(table["cluster"]))
    if largest is not None:
        size = table.groupby("cluster", sort=False)["n_cells"].first()
        order = sorted(order, key=lambda c: -size[c])[: int(largest)]  # sorted() is stable: ties keep table order
    ranked = table.sort_values("rank", kind="stable")
    genes = [g for c in order for g in ranked.loc[ranked["cluster"] == c, "gene"]]
    return list(dict.fromkeys(genes))


def top_de_genes(
    real: ad.AnnData,
    *,
    groupby: str = "cluster",
    n_genes: int = 5,
    method: Literal["t-test", "wilcoxon", "t-test_overestim_var"] = "t-test",
) -> list[str]:
    """Top ``n_genes`` upregulated genes of every cluster, united in cluster order without duplicates.

    The gene set of the correlation discrepancy (Heydari 2022, Results, "top 5 DE genes of each cluster"):
    :func:`marker_genes` of :func:`de_gene_table` (see there for the test, ``groupby`` and ``method``); the list
    can be shorter than ``n_genes x n_clusters`` when clusters share genes.
    """
    return marker_genes(de_gene_table(real, groupby=groupby, n_genes=n_genes, method=method))


def _expression(adata: ad.AnnData, genes: list[str], space: Space) -> np.ndarray:
    """Dense cells x len(genes) matrix in ``space``; only the selected columns are densified."""
    index = pd.Index(adata.var_names)
    missing = [g for g in genes if g not in index]
    if missing:
        raise DataError(f"genes not found in the data: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    cols = index.get_indexer(genes)
    X = adata.X
    sub = X[:, cols]
    sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    sub = sub.astype(np.float64)
    if space in ("lsn", "log1p_lsn"):
        lib = np.asarray(X.sum(axis=1)).ravel().astype(np.float64)
        scale = np.divide(LSN_TARGET, lib, out=np.zeros_like(lib), where=lib > 0)
        sub *= scale[:, None]
        if space == "log1p_lsn":
            np.log1p(sub, out=sub)
    elif space != "raw":
        raise DataError(f"unknown expression space {space!r} (use 'lsn', 'log1p_lsn' or 'raw')")
    return sub


def pearson_matrix(X) -> np.ndarray:
    """Pearson correlation matrix of the columns of a dense cells x genes matrix.

    A constant column (sd 0, e.g. a gene never expressed in generated cells) has no defined correlation; its
    correlations with other genes are set to 0 and its diagonal entry to 1, so a constant gene contributes
    ``|r_real|`` to the discrepancy instead of turning it into NaN.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] < 2:
        raise DataError(f"need at least two cells for a correlation matrix, got {X.shape[0]}")
    centred = X - X.mean(axis=0)
    sd = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    z = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    corr = z.T @ z
    np.clip(corr, -1.0, 1.0, out=corr)
    np.fill_diagonal(corr, 1.0)
    return corr


def correlation_discrepancy(real: ad.AnnData, generated: ad.AnnData, genes, *, space: Space = "lsn") -> float:
    """Correlation discrepancy CD(G, R) of Heydari 2022, eq. 7.

    ``CD = max_j sum_i |G_ij - R_ij|`` (the matrix 1-norm, largest column absolute sum) of the difference between
    the Pearson correlation matrices of generated (G) and real (R) cells over ``genes``. 0 means identical
    correlation structure; the maximum is ``2 (len(genes) - 1)``. Constant genes: see :func:`pearson_matrix`.

    Parameters
    ----------
    real, generated
        Real test cells and generated cells (AnnData with the genes in ``var_names``).
    genes
        Gene names, e.g. from :func:`top_de_genes`.
    space
        ``"lsn"`` (default, the space ACTIVA/scGAN are evaluated in), ``"log1p_lsn"`` or ``"raw"``; library
        sizes for LSN are taken over all genes of each AnnData.
    """
    genes = [str(g) for g in genes]
    if len(set(genes)) != len(genes):
        raise DataError("gene list for the correlation discrepancy contains duplicates")
    diff = pearson_matrix(_expression(generated, genes, space)) - pearson_matrix(_expression(real, genes, space))
    return float(np.abs(diff).sum(axis=0).max())


def marker_correlation_frame(real: ad.AnnData, generated: ad.AnnData, genes, *, space: Space = "lsn") -> pd.DataFrame:
    """Square gene x gene frame: generated correlations below the diagonal, real above, 1 on the diagonal.

    The layout of Heydari 2022 Fig. 4 and Marouf 2020 Fig. 1d heatmaps; entry ``[i, j]`` with ``i > j`` is
    ``corr_generated(gene_i, gene_j)``, with ``i < j`` it is ``corr_real(gene_i, gene_j)``.
    """
    genes = [str(g) for g in genes]
    corr_gen = pearson_matrix(_expression(generated, genes, space))
    corr_real = pearson_matrix(_expression(real, genes, space))
    lower = np.tril(np.ones_like(corr_gen, dtype=bool), k=-1)
    frame = np.where(lower, corr_gen, corr_real)
    np.fill_diagonal(frame, 1.0)
    return pd.DataFrame(frame, index=pd.Index(genes, name="gene"), columns=pd.Index(genes, name="gene"))
