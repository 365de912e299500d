"""Preparation recipes and the representations models train on.

Two parts live here.

**Representations** (applied per minibatch, never to a densified full matrix). A model declares what it
consumes: ``"counts"`` (raw integer counts), ``"lsn"`` (library-size normalisation to 20,000 per cell, the input
and output scale of scGAN/cscGAN, Marouf et al. 2020, Methods "Data preprocessing"; also ACTIVA, Heydari et al.
2022, which reuses the scGAN pipeline) or ``"log1p"`` (``log1p`` of the LSN values). The functions take a dense
numpy array, a torch tensor or a scipy sparse block of rows and return the same kind (torch is never imported
here; tensors are recognised by their type's module).

**Recipes** turn a raw count matrix into a prepared dataset: raw integer counts in ``X`` (CSR), a categorical
``obs["cluster"]`` and the parameters in ``uns["scsynth_prepare"]``. Normalised or log values are only ever
computed on throw-away working copies used for clustering and gene selection; they never end up in ``X``.

- ``marouf``: Marouf et al. 2020 Methods and the order of scGAN's ``preprocessing/process_raw.py``: cluster the
  raw counts with the Zheng et al. 2017 (Cell Ranger) recipe, PCA, kNN graph, Louvain (resolution 0.15); then
  filter cells with < 10 genes and genes in < 3 cells. Clusters are named ``"0", "1", ...`` by decreasing size.
- ``treppner``: Treppner et al. 2021 (Methods "Data"; OSCA-style PBMC4k preprocessing): QC filters, top-N
  highly variable genes, Seurat-like clustering (scaled HVGs, PCA, kNN graph with k = 20, graph clustering).
- ``treppner_segerstolpe``: the authors' Segerstolpe steps (OSCA workflow, MODELS.md section 4): the curators'
  low-quality cells out, scater-style per-donor MAD outliers of library size, detected genes and ERCC fraction,
  2,000 highly variable genes; the cell types are the clusters.
- ``scanpy_default``: the scanpy tutorial pipeline (filters, ``normalize_total``, ``log1p``, PCA, kNN, Leiden).

The train/test split is not part of any recipe (see :mod:`scsynth_core.data.split`).
"""

from __future__ import annotations

import contextlib
import inspect
import random
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.data.checks import check_counts, check_labels
from scsynth_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import anndata as ad

#: Per-cell total after library-size normalisation (scGAN: ``normalize_per_cell(counts_per_cell_after=20000)``).
LSN_TARGET = 20_000

#: Added to the per-cell total before dividing, as in scGAN's LSN output layer (float64 machine epsilon).
LSN_EPS = 2.2e-16

#: Representations understood by :func:`to_representation`.
REPRESENTATIONS = ("counts", "lsn", "log1p")


# --------------------------------------------------------------------------------------------------------------
# Representations
# --------------------------------------------------------------------------------------------------------------


def _is_torch(X: Any) -> bool:
    return type(X).__module__.split(".")[0] == "torch"


def _float_array(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float32)


def _float_csr(X) -> sp.csr_matrix:
    X = sp.csr_matrix(X)
    return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float32)


def library_size(X) -> np.ndarray:
    """Per-cell totals (row sums) of a dense array, scipy sparse block or torch tensor, as a 1-D numpy array."""
    if _is_torch(X):
        return X.detach().double().sum(dim=1).cpu().numpy()
    if sp.issparse(X):
        return np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    return np.asarray(X, dtype=np.float64).sum(axis=1)


def lsn(X, *, target_sum: float = LSN_TARGET):
    """Library-size normalise every row (cell) to ``target_sum``.

    Implements scGAN's normalisation (Marouf et al. 2020, Methods "Data preprocessing" and the generator's LSN
    output layer): ``x_ij * target_sum / (sum_j x_ij + 2.2e-16)``. All-zero rows stay zero.

    Parameters
    ----------
    X
        Cells x genes: dense numpy array, scipy sparse matrix (returned as CSR, zeros stay implicit) or torch
        tensor (stays on its device). Integer input becomes float32.
    target_sum
        Total of every non-zero row after normalisation (default :data:`LSN_TARGET` = 20,000).
    """
    if _is_torch(X):
        X = X if X.is_floating_point() else X.float()
        return X * (target_sum / (X.sum(dim=1, keepdim=True) + LSN_EPS))
    if sp.issparse(X):
        X = _float_csr(X)
        scale = (target_sum / (np.asarray(X.sum(axis=1), dtype=np.float64).ravel() + LSN_EPS)).astype(X.dtype)
        out = X.copy()
        out.data *= np.repeat(scale, np.diff(out.indptr))
        return out
    X = _float_array(X)
    return X * (target_sum / (X.sum(axis=1, keepdims=True) + LSN_EPS)).astype(X.dtype, copy=False)


def _log1p(X):
    if _is_torch(X):
        return X.log1p()
    if sp.issparse(X):
        out = X.copy()
        out.data = np.log1p(out.data)
        return out
    return np.log1p(X)


def _expm1(X):
    if _is_torch(X):
        X = X if X.is_floating_point() else X.float()
        return X.expm1()
    if sp.issparse(X):
        out = _float_csr(X).copy()
        out.data = np.expm1(out.data)
        return out
    return np.expm1(_float_array(X))


def _check_representation(representation: str) -> None:
    if representation not in REPRESENTATIONS:
        raise ConfigError(f"unknown representation '{representation}' (expected one of: {', '.join(REPRESENTATIONS)})")


def to_representation(X, representation: str, *, target_sum: float = LSN_TARGET):
    """Map a minibatch of raw counts to a model's representation.

    Parameters
    ----------
    X
        Cells x genes counts (dense numpy, scipy sparse or torch tensor).
    representation
        ``"counts"``: returned unchanged (same object). ``"lsn"``: :func:`lsn` to ``target_sum`` per cell
        (Marouf 2020; Heydari 2022). ``"log1p"``: ``log1p`` of the **LSN** values, ``log(1 + lsn(x))``, i.e.
        log of library-size-normalised counts at 20,000 per cell (not of raw counts).
    target_sum
        Per-cell total used by ``"lsn"`` and ``"log1p"``.
    """
    _check_representation(representation)
    if representation == "counts":
        return X
    normed = lsn(X, target_sum=target_sum)
    return normed if representation == "lsn" else _log1p(normed)


def gene_mean_sd(X, representation: str, *, block_rows: int = 4_096) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and standard deviation (divisor ``n``) of raw counts ``X`` in ``representation``.

    The statistics ``scanpy.pp.scale`` standardises with (genes with no variance get s.d. 1, as there), computed
    over blocks of rows so a sparse matrix is never densified. Float64.
    """
    X = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
    n = X.shape[0]
    if n == 0:
        raise DataError("gene_mean_sd needs at least one cell")
    total, squares = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for start in range(0, n, block_rows):
        block = to_representation(X[start : start + block_rows], representation)
        if sp.issparse(block):
            total += np.asarray(block.sum(axis=0), dtype=np.float64).ravel()
            squares += np.asarray(block.multiply(block).sum(axis=0), dtype=np.float64).ravel()
        else:
            block = np.asarray(block, dtype=np.float64)
            total += block.sum(axis=0)
            squares += (block * block).sum(axis=0)
    mean = total / n
    sd = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    return mean, np.where(sd > 1e-8, sd, 1.0)  # constant genes (up to rounding) keep their values


def from_representation(
    X, representation: str, *, library_size: np.ndarray | None = None, target_sum: float = LSN_TARGET
):
    """Invert :func:`to_representation` as far as the representation allows.

    ``"counts"`` is returned unchanged. ``"log1p"`` becomes LSN values (``expm1``), exactly. The library size
    that LSN removed cannot be recovered from the values, so counts are only reconstructed when
    ``library_size`` (one total per cell) is given: ``x_lsn * library_size / target_sum`` (not rounded).

    Parameters
    ----------
    X
        Cells x genes in ``representation`` (dense numpy, scipy sparse or torch tensor).
    representation
        One of :data:`REPRESENTATIONS`.
    library_size
        Per-cell totals to rescale LSN values to counts. Required for ``"lsn"`` (otherwise there is nothing to
        invert); optional for ``"log1p"`` (without it the result is on the LSN scale).
    target_sum
        The per-cell total the forward transform used.
    """
    _check_representation(representation)
    if representation == "counts":
        return X
    if representation == "lsn" and library_size is None:
        raise ConfigError("from_representation('lsn') needs library_size (the per-cell totals LSN removed)")
    values = _expm1(X) if representation == "log1p" else X
    if library_size is None:
        return values
    factor = np.asarray(library_size, dtype=np.float64).ravel() / target_sum
    if factor.shape[0] != X.shape[0]:
        raise ConfigError(f"library_size has {factor.shape[0]} values for {X.shape[0]} cells")
    if _is_torch(values):
        values = values if values.is_floating_point() else values.float()
        return values * values.new_tensor(factor).unsqueeze(1)
    if sp.issparse(values):
        out = _float_csr(values).copy()
        out.data *= np.repeat(factor, np.diff(out.indptr)).astype(out.dtype)
        return out
    values = _float_array(values)
    return values * factor[:, None].astype(values.dtype)


def output_representation(generated: ad.AnnData) -> str:
    """The output space a model recorded in ``uns["scsynth"]["representation"]`` (``counts`` when unrecorded)."""
    representation = generated.uns.get("scsynth", {}).get("representation", "counts")
    _check_representation(representation)
    return representation


def expression_scale(generated: ad.AnnData) -> ad.AnnData:
    """Generated cells on the count/LSN scale every evaluation projects from.

    Models record their output space in ``uns["scsynth"]["representation"]``. Cells of ``log1p`` models
    (MichiGAN's family: PCA, GMM, VAE, beta-TCVAE, WGAN-GP, MichiGAN) are mapped back with ``expm1``; the
    Gaussian models' small negative values are set to 0 first (expression is non-negative, and a negative
    "library" cannot be normalised). Count and LSN outputs are returned as they are (the same object).
    """
    if output_representation(generated) != "log1p":
        return generated
    X = _float_csr(generated.X).copy()
    np.maximum(X.data, 0.0, out=X.data)
    X.eliminate_zeros()
    out = generated.copy()
    out.X = from_representation(X, "log1p")
    return out


# --------------------------------------------------------------------------------------------------------------
# Shared recipe steps
# --------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded_igraph(seed: int):
    """Give igraph a private ``random.Random(seed)`` for the block, then restore its default generator."""
    import igraph

    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)


@contextlib.contextmanager
def quiet():
    """Silence scanpy/anndata deprecation chatter inside a recipe (results are unaffected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # recipe_zheng17 scales its (cells x top genes) copy; densifying that working copy is intended.
        warnings.filterwarnings("ignore", message="zero-centering a sparse", category=UserWarning)
        yield


def _genes_per_cell(X: sp.csr_matrix) -> np.ndarray:
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return np.bincount(rows[X.data > 0], minlength=X.shape[0])


def _cells_per_gene(X: sp.csr_matrix) -> np.ndarray:
    return np.bincount(X.indices[X.data > 0], minlength=X.shape[1])


def _filter_masks(
    X: sp.csr_matrix, *, min_genes: int, min_cells: int, cell_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """scanpy's ``filter_cells(min_genes)`` then ``filter_genes(min_cells)`` (on the kept cells), as masks."""
    keep_cells = _genes_per_cell(X) >= min_genes
    if cell_mask is not None:
        keep_cells &= cell_mask
    keep_genes = _cells_per_gene(X[keep_cells]) >= min_cells
    return keep_cells, keep_genes


def pca_components(requested: int, n_cells: int, n_genes: int, *, recipe: str) -> int:
    """The number of principal components to compute: ``requested``, capped by the data's size (error if tiny)."""
    n = min(requested, n_cells - 1, n_genes - 1)
    if n < 1 or n_cells < 3:
        raise DataError(
            f"prepare[{recipe}]: {n_cells} cells x {n_genes} genes is too small to cluster "
            "(need at least 3 cells and 2 informative genes)"
        )
    return n


def pca_graph(work: ad.AnnData, *, n_pcs: int, n_neighbors: int, seed: int, recipe: str) -> tuple[sp.csr_matrix, dict]:
    """PCA (ARPACK, ``random_state=seed``) and scanpy's UMAP-style kNN connectivities on the PCs."""
    import scanpy as sc

    n_comps = pca_components(n_pcs, work.n_obs, work.n_vars, recipe=recipe)
    sc.pp.pca(work, n_comps=n_comps, svd_solver="arpack", random_state=seed)
    k = max(2, min(n_neighbors, work.n_obs - 1))
    sc.pp.neighbors(work, n_neighbors=k, use_rep="X_pca", random_state=seed)
    return sp.csr_matrix(work.obsp["connectivities"]), {"n_comps_used": n_comps, "n_neighbors_used": k}


def graph_communities(
    conn: sp.csr_matrix, *, method: str, resolution: float, seed: int, use_weights: bool
) -> np.ndarray:
    """Louvain (igraph multilevel) or Leiden (igraph, modularity, 2 iterations) on the undirected kNN graph.

    scanpy's ``tl.louvain(flavor="igraph")`` ignores ``resolution``, so igraph is called directly.
    """
    import igraph

    upper = sp.triu(conn, k=1).tocoo()
    graph = igraph.Graph(n=conn.shape[0], edges=np.column_stack([upper.row, upper.col]).tolist(), directed=False)
    weights = upper.data.tolist() if use_weights else None
    with _seeded_igraph(seed):
        if method == "louvain":
            part = graph.community_multilevel(weights=weights, resolution=resolution)
        else:
            part = graph.community_leiden(
                objective_function="modularity", weights=weights, resolution=resolution, n_iterations=2
            )
    return np.asarray(part.membership)


def by_size(labels: np.ndarray) -> tuple[pd.Categorical, dict[str, str]]:
    """Rename groups to "0", "1", ... by decreasing size (ties: by the original name); return the mapping."""
    labels = np.asarray(labels).astype(str)
    names, counts = np.unique(labels, return_counts=True)  # names sorted: ties resolved by name
    order = np.argsort(-counts, kind="stable")
    mapping = {str(names[i]): str(rank) for rank, i in enumerate(order)}
    new = np.array([mapping[x] for x in names])[np.searchsorted(names, labels)]
    cats = [str(i) for i in range(len(names))]
    return pd.Categorical(new, categories=cats), {v: k for k, v in mapping.items()}


def _label_categorical(labels: pd.Series) -> pd.Categorical:
    """Labels as a categorical of strings, keeping the source's category order when it has one."""
    values = labels.astype(str).to_numpy()
    if isinstance(labels.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in labels.cat.categories if str(c) in set(values)]
    else:
        cats = sorted(set(values))
    return pd.Categorical(values, categories=cats)


def _assemble(
    adata: ad.AnnData, X: sp.csr_matrix, cells: np.ndarray, genes: np.ndarray, cluster: pd.Categorical, record: dict
) -> ad.AnnData:
    """A new AnnData: counts of the kept cells/genes, original obs/var columns, ``cluster`` and the record."""
    import anndata as ad

    obs = adata.obs.iloc[np.flatnonzero(cells)].copy()
    if "cluster" in obs.columns:
        obs = obs.rename(columns={"cluster": "cluster_input"})
        record["renamed_input_cluster_to"] = "cluster_input"
    obs["cluster"] = pd.Categorical(cluster).remove_unused_categories()
    var = adata.var.iloc[np.flatnonzero(genes)].copy()
    Xout = X[np.flatnonzero(cells)][:, np.flatnonzero(genes)]
    Xout = sp.csr_matrix(Xout)
    Xout.sort_indices()
    record.update(
        n_cells_in=int(adata.n_obs),
        n_genes_in=int(adata.n_vars),
        n_cells_out=int(Xout.shape[0]),
        n_genes_out=int(Xout.shape[1]),
        n_clusters=len(obs["cluster"].cat.categories),
    )
    return ad.AnnData(X=Xout, obs=obs, var=var, uns={"scsynth_prepare": record})


def _raw_counts(adata: ad.AnnData, *, recipe: str) -> sp.csr_matrix:
    check_counts(adata.X, where=f"prepare[{recipe}]: adata.X")
    X = sp.csr_matrix(adata.X)  # copies only when the input is not CSR already
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"prepare[{recipe}]: empty data ({X.shape[0]} cells x {X.shape[1]} genes)")
    return X


def working_copy(X: sp.csr_matrix):
    """A float32 AnnData of ``X`` for scanpy steps whose results are discarded."""
    import anndata as ad

    return ad.AnnData(X=sp.csr_matrix(X, dtype=np.float32, copy=True))


# --------------------------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------------------------


def _zheng17(X: sp.csr_matrix, *, n_top_genes: int) -> tuple[ad.AnnData, dict]:
    """Zheng et al. 2017 working copy (scanpy ``recipe_zheng17``), robust to tiny or degenerate inputs.

    ``recipe_zheng17`` bins genes by mean expression for the Cell Ranger dispersion ranking and raises
    ``IndexError``/``ValueError`` when the bins degenerate (few genes or near-identical genes, the error users hit
    in scGAN issues #1 and #3). Then the HVG step is skipped: normalise, log1p and scale all expressed genes.
    """
    import scanpy as sc

    n_expressed = int((_cells_per_gene(X) > 0).sum())
    n_top = min(n_top_genes, n_expressed - 1)
    info: dict[str, Any] = {"zheng17_n_top_genes_used": int(n_top)}
    if n_top >= 2:
        work = working_copy(X)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # degenerate bins divide by zero before failing
                sc.pp.recipe_zheng17(work, n_top_genes=n_top)
            if np.isfinite(work.X).all() and work.n_vars >= 2:
                return work, info
            reason = "non-finite or fewer than 2 genes after the recipe"
        except (IndexError, ValueError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            reason = f"{type(exc).__name__}: {first_line[:80]}"
    else:
        reason = f"only {n_expressed} expressed genes"
    warnings.warn(
        f"prepare[marouf]: recipe_zheng17 failed ({reason}); clustering on all expressed genes without HVG selection",
        stacklevel=3,
    )
    info["zheng17_fallback"] = reason
    work = working_copy(X)
    sc.pp.filter_genes(work, min_counts=1)
    sc.pp.normalize_total(work)
    sc.pp.log1p(work)
    work.X = work.X.toarray()  # only reached for small inputs (the recipe failed), where dense is cheap
    sc.pp.scale(work)
    return work, info


def marouf(
    adata: ad.AnnData,
    *,
    label_key: str | None = None,
    seed: int = 0,
    resolution: float = 0.15,
    min_genes: int = 10,
    min_cells: int = 3,
    n_top_genes: int = 1000,
    n_pcs: int = 50,
    n_neighbors: int = 15,
    use_weights: bool = False,
    cluster_from_labels: bool = False,
) -> ad.AnnData:
    """scGAN/cscGAN preparation (Marouf et al. 2020, Methods "Data preprocessing" and "Clustering").

    Order as in scGAN's ``process_raw.py``: (1) cluster a copy of the **raw** counts: Zheng et al. 2017 recipe
    (normalise per cell, top ``n_top_genes`` genes by Cell Ranger normalised dispersion, renormalise, log1p,
    scale), PCA with ``min(n_pcs, n_cells - 1, n_genes - 1)`` components, kNN graph (``n_neighbors``), Louvain at
    ``resolution``; (2) filter cells with fewer than ``min_genes`` expressed genes, then genes expressed in fewer
    than ``min_cells`` of the kept cells (one pass each, as the reference). Clusters are renamed ``"0", "1", ...``
    by decreasing size among the kept cells (cscGAN assumes Louvain numbers clusters by size).

    Louvain runs as igraph's multilevel algorithm on the undirected kNN graph, unweighted by default
    (``use_weights=False``, like scanpy's ``tl.louvain`` that scGAN called); the ``louvain`` package is not used.
    With ``label_key`` and ``cluster_from_labels=True`` the labels replace the clustering (still renamed by size;
    the mapping is recorded in ``uns["scsynth_prepare"]["derived"]["cluster_names"]``).
    """
    X = _raw_counts(adata, recipe="marouf")
    record: dict[str, Any] = {}
    if cluster_from_labels:
        if label_key is None:
            raise ConfigError("prepare[marouf]: cluster_from_labels=True needs label_key (the obs column to use)")
        raw_clusters = adata.obs[label_key].astype(str).to_numpy()
        record["cluster_source"] = f"labels:{label_key}"
    else:
        pca_components(n_pcs, X.shape[0], X.shape[1], recipe="marouf")  # fail early on data too small to cluster
        with quiet():
            work, info = _zheng17(X, n_top_genes=n_top_genes)
            conn, graph_info = pca_graph(work, n_pcs=n_pcs, n_neighbors=n_neighbors, seed=seed, recipe="marouf")
        record.update(info, **graph_info, cluster_source="louvain")
        raw_clusters = graph_communities(
            conn, method="louvain", resolution=resolution, seed=seed, use_weights=use_weights
        )
    cells, genes = _filter_masks(X, min_genes=min_genes, min_cells=min_cells)
    cluster, names = by_size(raw_clusters[cells])
    if cluster_from_labels:
        record["cluster_names"] = names
    return _assemble(adata, X, cells, genes, cluster, record)


def _mito_outliers(
    X: sp.csr_matrix, var_names: pd.Index, *, prefix: str | None, nmads: float | None
) -> tuple[np.ndarray, dict]:
    """Cells whose mitochondrial percentage exceeds median + nmads * MAD (scater ``isOutlier(type="higher")``).

    MAD uses R's consistency constant 1.4826. Returns an all-False mask when there are no genes with ``prefix``
    or the MAD is zero (a gene subset with one sparse mitochondrial gene carries no usable QC signal).
    """
    n = X.shape[0]
    if prefix is None or nmads is None:
        return np.zeros(n, dtype=bool), {"mito_genes": 0}
    is_mito = np.asarray(var_names.str.upper().str.startswith(prefix.upper()), dtype=bool)
    if not is_mito.any():
        return np.zeros(n, dtype=bool), {"mito_genes": 0}
    total = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    mito = np.asarray(X[:, np.flatnonzero(is_mito)].sum(axis=1), dtype=np.float64).ravel()
    pct = 100.0 * mito / np.maximum(total, 1.0)
    median = float(np.median(pct))
    mad = 1.4826 * float(np.median(np.abs(pct - median)))
    info = {"mito_genes": int(is_mito.sum()), "mito_pct_threshold": median + nmads * mad if mad > 0 else None}
    if mad == 0:
        return np.zeros(n, dtype=bool), info
    return pct > median + nmads * mad, info


def _top_dispersion_genes(log_work: ad.AnnData, n_top: int) -> np.ndarray:
    """Exactly ``n_top`` genes by Seurat normalised dispersion (ties and NaN: gene order), as a boolean mask."""
    import scanpy as sc

    table = sc.pp.highly_variable_genes(log_work, flavor="seurat", inplace=False)
    disp = np.nan_to_num(table["dispersions_norm"].to_numpy(dtype=np.float64), nan=-np.inf)
    order = np.argsort(-disp, kind="stable")
    mask = np.zeros(log_work.n_vars, dtype=bool)
    mask[order[:n_top]] = True
    return mask


def treppner(
    adata: ad.AnnData,
    *,
    label_key: str | None = None,
    seed: int = 0,
    min_genes: int = 200,
    min_cells: int = 3,
    mito_prefix: str | None = "MT-",
    mito_nmads: float | None = 3.0,
    n_top_genes: int = 1000,
    n_pcs: int = 50,
    n_neighbors: int = 20,
    resolution: float = 0.4,
    scale_max: float = 10.0,
) -> ad.AnnData:
    """scDBM/scVI pilot-study preparation (Treppner et al. 2021, Methods "Data"; OSCA workflow for PBMC4k).

    1. QC: drop cells with fewer than ``min_genes`` expressed genes and high-mitochondrial outliers (percentage
       above median + ``mito_nmads`` MADs, as scater's ``isOutlier``; skipped without ``mito_prefix`` genes);
       then genes expressed in fewer than ``min_cells`` kept cells.
    2. Highly variable genes: exactly ``n_top_genes`` genes ranked by Seurat-flavour normalised dispersion,
       computed on log1p of counts normalised to the median library size. The paper ranks by scran's
       ``modelGeneVar`` on log-normalised counts; the Seurat flavour is the closest scanpy analogue (also on
       log-normalised data), chosen over ``seurat_v3`` which works on raw counts.
    3. ``X`` = raw counts of the kept cells and the selected genes (the paper trains on raw HVG counts).
    4. Clustering (Seurat-like): the log-normalised values of the selected genes, scaled to unit variance and
       clipped at ``scale_max`` (Seurat ``ScaleData``), PCA with ``min(n_pcs, n_cells - 1, n_genes - 1)``
       components, kNN graph with ``n_neighbors`` = 20 (Seurat ``FindNeighbors`` k), Leiden (igraph, modularity)
       at ``resolution`` = 0.4 (the paper's Seurat ``FindClusters`` resolution for PBMC4k; on the 4,271-cell
       PBMC4k copy it gives 9 clusters, the paper reports 10). Clusters are named ``"0", "1", ...`` by
       decreasing size.

    ``min_genes`` = 200 suits full-transcriptome matrices; lower it for data already reduced to a gene subset.

    No UMAP is computed here; the pilot experiment builds its own embedding.
    """
    import scanpy as sc

    X = _raw_counts(adata, recipe="treppner")
    outliers, mito_info = _mito_outliers(X, adata.var_names, prefix=mito_prefix, nmads=mito_nmads)
    cells, genes = _filter_masks(X, min_genes=min_genes, min_cells=min_cells, cell_mask=~outliers)
    if cells.sum() < 3 or genes.sum() < 2:
        raise DataError(
            f"prepare[treppner]: only {int(cells.sum())} cells x {int(genes.sum())} genes pass QC "
            f"(min_genes={min_genes}, min_cells={min_cells}); lower min_genes for small data"
        )
    kept = X[np.flatnonzero(cells)][:, np.flatnonzero(genes)]
    n_top = min(n_top_genes, kept.shape[1])
    record: dict[str, Any] = {
        **mito_info,
        "n_mito_outliers": int(outliers.sum()),
        "n_top_genes_used": int(n_top),
        "cluster_source": "leiden",
    }
    if n_top < n_top_genes:
        warnings.warn(
            f"prepare[treppner]: only {kept.shape[1]} genes pass QC; keeping all instead of {n_top_genes}", stacklevel=2
        )
    with quiet():
        work = working_copy(kept)
        sc.pp.normalize_total(work)
        sc.pp.log1p(work)
        hvg = _top_dispersion_genes(work, n_top)
        work = work[:, hvg].copy()
        work.X = work.X.toarray()  # dense working copy of cells x selected genes only (Seurat ScaleData centres)
        sc.pp.scale(work, max_value=scale_max)
        conn, graph_info = pca_graph(work, n_pcs=n_pcs, n_neighbors=n_neighbors, seed=seed, recipe="treppner")
    record.update(graph_info)
    membership = graph_communities(conn, method="leiden", resolution=resolution, seed=seed, use_weights=True)
    cluster, _ = by_size(membership)
    genes_final = np.zeros_like(genes)
    genes_final[np.flatnonzero(genes)[hvg]] = True
    return _assemble(adata, X, cells, genes_final, cluster, record)


#: R's consistency constant of the MAD (``mad()``, scater's ``isOutlier``).
MAD_SCALE = 1.4826


def mad_outliers(
    metric: np.ndarray,
    batches: np.ndarray,
    *,
    nmads: float,
    side: str,
    log: bool = False,
    threshold_cells: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """scater ``isOutlier``: per batch, cells more than ``nmads`` MADs (scaled by 1.4826) below (``side="lower"``)
    or above (``"higher"``) the batch median, on ``log`` values if asked (a zero becomes -inf: always low).

    ``threshold_cells``: the cells whose values set the medians and MADs (``subset=``); every cell is judged. A
    batch without such cells takes the median of the other batches' medians and of their MADs (scater's
    ``share.missing``). Returns the outlier mask and each batch's threshold.
    """
    with np.errstate(divide="ignore"):
        values = np.log2(metric.astype(np.float64)) if log else metric.astype(np.float64)
    batches = np.asarray(batches).astype(str)
    basis = np.ones(len(values), dtype=bool) if threshold_cells is None else np.asarray(threshold_cells, dtype=bool)
    names = list(dict.fromkeys(batches))
    stats = {}
    for name in names:
        own = values[basis & (batches == name)]
        if len(own):
            median = float(np.median(own))
            stats[name] = (median, MAD_SCALE * float(np.median(np.abs(own - median))))
    if not stats:
        raise DataError("QC outliers: no cell is left to set the thresholds (threshold batches excluded all)")
    shared = (float(np.median([m for m, _ in stats.values()])), float(np.median([d for _, d in stats.values()])))
    limits = {}
    for name in names:
        median, mad = stats.get(name, shared)
        limits[name] = median - nmads * mad if side == "lower" else median + nmads * mad
    limit = np.array([limits[b] for b in batches])
    outliers = values < limit if side == "lower" else values > limit
    return outliers, {name: (2.0**v if log else v) for name, v in limits.items()}


def _last_duplicates(names: pd.Index) -> np.ndarray:
    """Genes that repeat an earlier gene: ``X-1``, ``X-2`` ... where ``X`` is a gene too (anndata's unique names
    of a symbol listed twice)."""
    base = names.str.replace(r"-\d+$", "", regex=True)
    return np.asarray((base != names) & base.isin(names), dtype=bool)


def treppner_segerstolpe(
    adata: ad.AnnData,
    *,
    label_key: str | None = None,
    seed: int = 0,
    quality_key: str = "well_quality",
    low_quality: str = "low quality cell",
    batch_key: str = "donor",
    spike_prefix: str = "ERCC-",
    threshold_exclude: Sequence[str] = ("HP1504901", "HP1509101"),
    nmads: float = 3.0,
    hvg_exclude: Sequence[str] = ("AZ",),
    n_top_genes: int = 2000,
    drop_duplicate_genes: bool = True,
) -> ad.AnnData:
    """Segerstolpe et al. 2016 as Treppner et al. 2021 prepared it (their R steps, the OSCA book's Segerstolpe
    workflow; MODELS.md section 4 "Data (Segerstolpe)": 2,090 cells x 2,000 genes, 14 cell types).

    1. Genes: later copies of a gene symbol out (``drop_duplicate_genes``; the authors map symbols to Ensembl
       and drop duplicated ids: genes without an Ensembl id stay here).
    2. Cells: the curators' ``low_quality`` wells (``obs[quality_key]``) out, and scater ``quickPerCellQC``
       outliers (:func:`mad_outliers`, ``nmads`` = 3, per ``obs[batch_key]``): library size and detected genes
       below the donor's median on the log scale, spike-in percentage (``spike_prefix`` genes over all counts)
       above it; donors in ``threshold_exclude`` (the authors' two low-quality donors) are judged by thresholds
       from the other donors.
    3. Highly variable genes: ``n_top_genes`` of the endogenous genes by scanpy's Seurat flavour (normalised
       dispersion within bins of mean expression of ``log1p(normalize_total)``), per donor
       (``batch_key``: genes ranked by the number of donors that select them, then by dispersion), on the cells
       the authors' variance model used (donors not in ``hvg_exclude``, cells with spike-in counts). Departures:
       scanpy has no spike-in variance model (scran ``modelGeneVarWithSpikes``: a gene's variance above the
       technical noise fitted to the ERCC spike-ins); the dispersion of genes of similar mean replaces the
       spike-in trend, and library sizes replace scran's deconvolution size factors.
    4. ``X`` = raw counts of the kept cells and selected genes (the spike-ins are not genes of the result);
       ``cluster`` = the cell types in ``label_key`` (the authors' ground truth for Segerstolpe).
    """
    import scanpy as sc

    if label_key is None:
        raise ConfigError("prepare[treppner_segerstolpe]: needs label_key (the cell types are the clusters)")
    for key in (quality_key, batch_key):
        if key not in adata.obs.columns:
            raise DataError(
                f"prepare[treppner_segerstolpe]: no obs column '{key}' (columns: "
                f"{', '.join(map(str, adata.obs.columns))})"
            )
    X = _raw_counts(adata, recipe="treppner_segerstolpe")
    names = pd.Index([str(v) for v in adata.var_names])
    spikes = np.asarray(names.str.startswith(spike_prefix), dtype=bool)
    genes = ~spikes & (~_last_duplicates(names) if drop_duplicate_genes else True)
    donors = adata.obs[batch_key].astype(str).to_numpy()
    library = np.asarray(X[:, np.flatnonzero(~spikes)].sum(axis=1), dtype=np.float64).ravel()
    spike_sum = np.asarray(X[:, np.flatnonzero(spikes)].sum(axis=1), dtype=np.float64).ravel()
    detected = _genes_per_cell(X[:, np.flatnonzero(~spikes)])
    basis = ~np.isin(donors, list(threshold_exclude))
    low_library, library_limits = mad_outliers(
        library, donors, nmads=nmads, side="lower", log=True, threshold_cells=basis
    )
    low_detected, detected_limits = mad_outliers(
        detected, donors, nmads=nmads, side="lower", log=True, threshold_cells=basis
    )
    spike_pct = 100.0 * spike_sum / np.maximum(library + spike_sum, 1.0)
    high_spikes, spike_limits = mad_outliers(spike_pct, donors, nmads=nmads, side="higher", threshold_cells=basis)
    low = adata.obs[quality_key].astype(str).to_numpy() == low_quality
    cells = ~(low | low_library | low_detected | (high_spikes if spikes.any() else False))
    if cells.sum() < 3:
        raise DataError(f"prepare[treppner_segerstolpe]: only {int(cells.sum())} cells pass the QC")
    hvg_cells = cells & ~np.isin(donors, list(hvg_exclude)) & ((spike_sum > 0) if spikes.any() else True)
    candidates = np.flatnonzero(genes)
    n_top = min(n_top_genes, len(candidates))
    with quiet():
        work = working_copy(X[np.flatnonzero(hvg_cells)][:, candidates])
        work.obs["batch"] = donors[hvg_cells]
        sc.pp.normalize_total(work)
        sc.pp.log1p(work)
        table = sc.pp.highly_variable_genes(work, flavor="seurat", n_top_genes=n_top, batch_key="batch", inplace=False)
    chosen = np.zeros_like(genes)
    chosen[candidates[np.asarray(table["highly_variable"], dtype=bool)]] = True
    record: dict[str, Any] = {
        "n_low_quality": int(low.sum()),
        "n_low_library": int(low_library.sum()),
        "n_low_detected": int(low_detected.sum()),
        "n_high_spikes": int(high_spikes.sum()) if spikes.any() else 0,
        "spike_genes": int(spikes.sum()),
        "n_hvg_cells": int(hvg_cells.sum()),
        "n_top_genes_used": int(chosen.sum()),
        "library_limits": library_limits,
        "detected_limits": detected_limits,
        "spike_pct_limits": spike_limits,
        "cluster_source": f"labels:{label_key}",
    }
    cluster = _label_categorical(adata.obs[label_key].iloc[np.flatnonzero(cells)])
    return _assemble(adata, X, cells, chosen, cluster, record)


def scanpy_default(
    adata: ad.AnnData,
    *,
    label_key: str | None = None,
    seed: int = 0,
    min_genes: int = 10,
    min_cells: int = 3,
    n_top_genes: int = 0,
    n_pcs: int = 50,
    n_neighbors: int = 15,
    resolution: float = 1.0,
) -> ad.AnnData:
    """The scanpy tutorial pipeline (Wolf et al. 2018): filters, then clusters unless labels are given.

    Filter cells with fewer than ``min_genes`` genes and genes in fewer than ``min_cells`` kept cells, then keep
    the ``n_top_genes`` genes of highest Seurat normalised dispersion of ``log1p(normalize_total(counts))``
    (0: every kept gene; the realism protocol of this project uses 2,000). With
    ``label_key`` the labels become ``cluster`` (categories = the label strings). Otherwise ``cluster`` =
    Leiden (igraph, modularity, ``resolution`` = scanpy's default 1.0) on the kNN graph (``n_neighbors``) of a
    PCA (``min(n_pcs, n_cells - 1, n_genes - 1)`` components, sparse, implicitly centred) of
    ``log1p(normalize_total(counts))`` (median library size), named ``"0", "1", ...`` by decreasing size.
    """
    import scanpy as sc

    X = _raw_counts(adata, recipe="scanpy_default")
    cells, genes = _filter_masks(X, min_genes=min_genes, min_cells=min_cells)
    record: dict[str, Any] = {}
    if 0 < n_top_genes < genes.sum():
        with quiet():
            work = working_copy(X[np.flatnonzero(cells)][:, np.flatnonzero(genes)])
            sc.pp.normalize_total(work)
            sc.pp.log1p(work)
            top = _top_dispersion_genes(work, n_top_genes)
        genes[np.flatnonzero(genes)[~top]] = False
        record["n_top_genes"] = int(n_top_genes)
    if label_key is not None:
        cluster = _label_categorical(adata.obs[label_key].iloc[np.flatnonzero(cells)])
        record["cluster_source"] = f"labels:{label_key}"
        return _assemble(adata, X, cells, genes, cluster, record)
    with quiet():
        work = working_copy(X[np.flatnonzero(cells)][:, np.flatnonzero(genes)])
        sc.pp.normalize_total(work)
        sc.pp.log1p(work)
        conn, graph_info = pca_graph(work, n_pcs=n_pcs, n_neighbors=n_neighbors, seed=seed, recipe="scanpy_default")
    record.update(graph_info, cluster_source="leiden")
    cluster, _ = by_size(graph_communities(conn, method="leiden", resolution=resolution, seed=seed, use_weights=True))
    return _assemble(adata, X, cells, genes, cluster, record)


#: Recipe name -> function(adata, *, label_key, seed, **params) returning a new prepared AnnData.
RECIPES: dict[str, Callable[..., ad.AnnData]] = {
    "marouf": marouf,
    "treppner": treppner,
    "treppner_segerstolpe": treppner_segerstolpe,
    "scanpy_default": scanpy_default,
}


def recipe_defaults(recipe: str) -> dict[str, Any]:
    """The tunable parameters of ``recipe`` and their defaults (everything except ``label_key`` and ``seed``)."""
    if recipe not in RECIPES:
        raise ConfigError(f"unknown preparation recipe '{recipe}' (available: {', '.join(sorted(RECIPES))})")
    sig = inspect.signature(RECIPES[recipe])
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in {"label_key", "seed"}
    }


def recipe_params(recipe: str, params: dict[str, Any], *, seed: Any, caller: str = "prepare") -> dict[str, Any]:
    """``recipe``'s parameters with ``params`` over its defaults, after checking the names, the values' types and
    the seed (errors name ``caller[recipe]``)."""
    defaults = recipe_defaults(recipe)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(
            f"{caller}[{recipe}]: unknown parameter(s) {', '.join(unknown)} (allowed: {', '.join(sorted(defaults))})"
        )
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"{caller}[{recipe}]: seed must be an integer, got {seed!r}")
    for name, value in params.items():
        _check_param(recipe, name, value, defaults[name])
    # list parameters (tuple defaults) as lists: they are written to uns["scsynth_prepare"]
    return {name: list(v) if isinstance(v, tuple) else v for name, v in {**defaults, **params}.items()}


def _check_param(recipe: str, name: str, value: Any, default: Any) -> None:
    """Require a parameter to have the type of its default (ints accepted for floats; None where the default is)."""
    if isinstance(default, bool):
        ok, expected = isinstance(value, (bool, np.bool_)), "true or false"
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        expected = "a list of strings"
    elif isinstance(default, int):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
        expected = "a non-negative integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        ok = ok or (value is None and name == "mito_nmads")
        ok = ok and (value is None or value >= 0)
        expected = "a non-negative number"
    else:  # str | None options such as mito_prefix
        ok, expected = value is None or isinstance(value, str), "a string or null"
    if not ok:
        raise ConfigError(f"prepare[{recipe}]: parameter {name} must be {expected}, got {value!r}")


def prepare(
    adata: ad.AnnData, *, recipe: str, label_key: str | None = None, seed: int = 0, **params: Any
) -> ad.AnnData:
    """Prepare raw counts with a named recipe; the input is left unchanged.

    Parameters
    ----------
    adata
        Cells x genes raw integer counts in ``X`` (any scipy sparse format or dense).
    recipe
        A key of :data:`RECIPES`: ``"marouf"``, ``"treppner"``, ``"treppner_segerstolpe"`` or
        ``"scanpy_default"``.
    label_key
        Optional obs column with cell-type labels; it must exist and have no missing values. It is kept as-is;
        whether it replaces the computed clustering depends on the recipe (see each recipe).
    seed
        Seed of PCA, the kNN graph and graph clustering.
    **params
        Recipe parameters (see :func:`recipe_defaults`); unknown names raise :class:`ConfigError`.

    Returns
    -------
    anndata.AnnData
        New object: ``X`` = raw counts (CSR, input dtype) of the kept cells and genes; ``obs`` = the input's
        columns (an input ``cluster`` column is renamed ``cluster_input``) plus categorical ``cluster`` with
        string categories; ``var`` = the input's columns; ``uns["scsynth_prepare"]`` = recipe, label_key, seed,
        every parameter (defaults filled in) and what was derived (cells/genes in and out, components used, ...).
    """
    used = recipe_params(recipe, params, seed=seed)
    if label_key is not None:
        check_labels(adata, label_key, where=f"prepare[{recipe}]")
    result = RECIPES[recipe](adata, label_key=label_key, seed=int(seed), **used)
    derived = result.uns["scsynth_prepare"]
    result.uns["scsynth_prepare"] = {
        "recipe": recipe,
        "label_key": label_key,
        "seed": int(seed),
        "params": used,
        "derived": derived,
    }
    return result
