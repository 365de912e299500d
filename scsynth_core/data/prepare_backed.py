"""The ``marouf`` preparation recipe on an h5ad file larger than memory (see docs/scale.md).

Same steps and order as :func:`scsynth_core.data.preprocess.marouf`, with the whole-matrix steps replaced by
streamed ones:

1. one pass over row chunks (:class:`~scsynth_core.data.backed.GeneStatistics`): library sizes, detected genes,
   and the per-gene mean and variance of normalised counts, from which the Cell Ranger dispersion ranking
   (``recipe_zheng17``'s HVG step) picks the top genes (:func:`~scsynth_core.data.backed.hvg_from_mean_var`);
2. clustering of a **sketch** of ``sketch_cells`` random cells with exactly the in-memory steps (normalise to the
   median library of all cells, the selected genes, renormalise, log1p, scale, PCA, kNN graph, Louvain); every
   other cell gets the majority cluster of its ``n_neighbors`` nearest sketch cells in the sketch's PCA space
   (label transfer, as scanpy's ``ingest``). With ``sketch_cells`` >= the number of cells nothing is transferred
   and the result equals the in-memory recipe's;
3. a pass writing the kept cells and genes (the recipe's filters, from the counts of pass 1) with their
   clusters to the output, chunk by chunk (:class:`~scsynth_core.data.h5ad_stream.H5adStreamWriter`).

Memory: one chunk of rows, a few numbers per cell and gene, and the sketch (50,000 cells x 1,000 genes dense:
200 MB). Only ``marouf`` streams; ``treppner`` and ``scanpy_default`` cluster every kept cell in memory (their
HVG selection, seurat flavour, streams with the same statistics, but their clustering is not sketched yet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.data.backed import (
    CHUNK_ROWS,
    BackedRows,
    GeneStatistics,
    check_counts_chunked,
    hvg_from_mean_var,
    iter_row_chunks,
    subsample_rows,
)
from scsynth_core.data.preprocess import (
    by_size,
    graph_communities,
    pca_components,
    pca_graph,
    quiet,
    recipe_params,
    working_copy,
)
from scsynth_core.errors import ConfigError, DataError

#: Cells clustered exactly before the labels are transferred to the rest (scanpy clusters this many in minutes).
SKETCH_CELLS = 50_000
STREAMED_RECIPES = ("marouf",)


def _lognorm(
    counts: sp.csr_matrix, library: np.ndarray, target: float, genes: np.ndarray, hvg_target: float
) -> np.ndarray:
    """``recipe_zheng17``'s values before scaling: normalise to ``target``, keep ``genes``, renormalise to
    ``hvg_target``, log1p (dense float64, one chunk)."""
    X = sp.csr_matrix(counts, dtype=np.float64)
    X = sp.csr_matrix(sp.diags(target / np.where(library > 0, library, 1.0)) @ X)[:, genes]
    sums = np.asarray(X.sum(axis=1)).ravel()
    X = sp.csr_matrix(sp.diags(hvg_target / np.where(sums > 0, sums, 1.0)) @ X)
    return np.log1p(X.toarray())


def _sketch_clusters(
    source: BackedRows,
    stats: GeneStatistics,
    expressed: np.ndarray,
    hvg: np.ndarray,
    *,
    sketch_cells: int,
    chunk_rows: int,
    seed: int,
    p: dict[str, Any],
) -> tuple[np.ndarray, dict]:
    """Louvain clusters of a sketch (``recipe_zheng17`` after its HVG step, then marouf's graph) for every cell.

    ``expressed``: file positions of the expressed genes; ``hvg``: the selected ones among them (mask). The
    sketch is normalised over the expressed genes to the median library of all cells, as the in-memory recipe
    normalises every cell, with the same scanpy calls (so a sketch of every cell gives the in-memory result).
    """
    import scanpy as sc
    from sklearn.neighbors import KNeighborsClassifier

    n = source.shape[0]
    sketch = subsample_rows(np.arange(n), sketch_cells, seed=seed)
    target = stats.target_sum()
    with quiet():
        work = working_copy(source[sketch][:, expressed])
        sc.pp.normalize_total(work, target_sum=target)
        work = work[:, hvg].copy()
        hvg_target = float(np.median(np.asarray(work.X.sum(axis=1), dtype=np.float64).ravel()))
        sc.pp.normalize_total(work)
        sc.pp.log1p(work)
        sc.pp.scale(work)
        conn, info = pca_graph(work, n_pcs=p["n_pcs"], n_neighbors=p["n_neighbors"], seed=seed, recipe="marouf")
    membership = graph_communities(
        conn, method="louvain", resolution=p["resolution"], seed=seed, use_weights=p["use_weights"]
    )
    info |= {"sketch_cells": len(sketch)}
    if len(sketch) == n:
        return membership, info
    # Label transfer: every cell through the sketch's normalisation, scaling and PCA, then a kNN vote.
    mean, std = work.var["mean"].to_numpy(), work.var["std"].to_numpy()
    loadings, centre = work.varm["PCs"], np.asarray(work.X).mean(axis=0)
    genes = expressed[hvg]
    knn = KNeighborsClassifier(n_neighbors=info["n_neighbors_used"]).fit(work.obsm["X_pca"], membership)
    labels = np.empty(n, dtype=membership.dtype)
    for start, block in iter_row_chunks(source, chunk_rows=chunk_rows):
        stop = start + block.shape[0]
        values = (_lognorm(block, stats.library[start:stop], target, genes, hvg_target) - mean) / std
        labels[start:stop] = knn.predict((values - centre) @ loadings)
    labels[sketch] = membership
    return labels, info | {"label_transfer": f"kNN vote ({info['n_neighbors_used']} sketch neighbours, PCA)"}


def _stream_obs(obs: pd.DataFrame) -> pd.DataFrame:
    """Input obs with text columns as categoricals (fixed categories, so they can be written chunk by chunk)."""
    out = obs.copy()
    for col in out.columns:
        if not (isinstance(out[col].dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(out[col].dtype)):
            out[col] = pd.Categorical(out[col].astype(str))
    if "cluster" in out.columns:
        out = out.rename(columns={"cluster": "cluster_input"})
    return out


def prepare_backed(
    input: str | Path,
    output: str | Path,
    *,
    recipe: str = "marouf",
    label_key: str | None = None,
    seed: int = 0,
    sketch_cells: int = SKETCH_CELLS,
    chunk_rows: int = CHUNK_ROWS,
    **params: Any,
) -> dict[str, Any]:
    """Prepare the raw counts of the h5ad file ``input`` into ``output`` without loading the matrix.

    ``recipe`` must be one of :data:`STREAMED_RECIPES`; ``params`` are the recipe's (as :func:`~scsynth_core.
    data.preprocess.prepare`), ``sketch_cells`` and ``chunk_rows`` say how much is held at once. The output has
    the layout :func:`~scsynth_core.data.preprocess.prepare` writes (counts of the kept cells and genes in ``X``,
    categorical ``obs['cluster']``, ``uns['scsynth_prepare']``; text obs columns become categorical). Written
    atomically. Returns the ``uns['scsynth_prepare']`` record.
    """
    from scsynth_core.atomic import atomic_path
    from scsynth_core.data.checks import check_labels, read_h5ad
    from scsynth_core.data.h5ad_stream import H5adStreamWriter

    if recipe not in STREAMED_RECIPES:
        raise ConfigError(
            f"prepare_backed: recipe '{recipe}' does not stream (streamed: "
            f"{', '.join(STREAMED_RECIPES)}); prepare it in memory with prepare()"
        )
    p = recipe_params(recipe, params, seed=seed, caller="prepare_backed")
    for name, value in (("sketch_cells", sketch_cells), ("chunk_rows", chunk_rows)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"prepare_backed: {name} must be a positive integer, got {value!r}")
    where = f"prepare_backed[{recipe}]: {input}"
    meta = read_h5ad(input, backed=True)  # obs and var only; X stays on disk
    meta.file.close()
    if p["cluster_from_labels"] and label_key is None:
        raise ConfigError(f"{where}: cluster_from_labels=True needs label_key (the obs column to use)")
    if label_key is not None:
        check_labels(meta, label_key, where=where)
    record: dict[str, Any] = {"streamed": {"chunk_rows": int(chunk_rows)}}
    with BackedRows(input) as source:
        n, g = source.shape
        check_counts_chunked(source, where=f"{input} (X)", chunk_rows=chunk_rows)
        stats = GeneStatistics.collect(source, min_genes=p["min_genes"], chunk_rows=chunk_rows)
        if p["cluster_from_labels"]:
            raw = meta.obs[label_key].astype(str).to_numpy()
            record["cluster_source"] = f"labels:{label_key}"
        else:
            pca_components(p["n_pcs"], n, g, recipe="marouf")
            expressed = stats.cells_per_gene > 0
            n_top = min(p["n_top_genes"], int(expressed.sum()) - 1)
            if n_top < 2:
                raise DataError(f"{where}: only {int(expressed.sum())} expressed genes; prepare it in memory")
            mean, var = stats.mean_var()
            hvg = hvg_from_mean_var(mean[expressed], var[expressed], flavor="cell_ranger", n_top_genes=n_top)
            raw, info = _sketch_clusters(
                source,
                stats,
                np.flatnonzero(expressed),
                hvg["highly_variable"].to_numpy(),
                sketch_cells=int(sketch_cells),
                chunk_rows=chunk_rows,
                seed=seed,
                p=p,
            )
            record |= {"zheng17_n_top_genes_used": int(n_top), **info, "cluster_source": "louvain"}
            record["streamed"]["sketch_cells"] = int(sketch_cells)
        cells = stats.genes_per_cell >= p["min_genes"]
        genes = stats.cells_per_gene_kept >= p["min_cells"]
        cluster, names = by_size(raw[cells])
        if p["cluster_from_labels"]:
            record["cluster_names"] = names
        cluster = cluster.remove_unused_categories()
        obs = _stream_obs(meta.obs)
        obs_kept = obs.iloc[np.flatnonzero(cells)].copy()
        obs_kept["cluster"] = cluster
        record.update(
            n_cells_in=int(n),
            n_genes_in=int(g),
            n_cells_out=int(cells.sum()),
            n_genes_out=int(genes.sum()),
            n_clusters=len(cluster.categories),
        )
        gene_idx, done = np.flatnonzero(genes), 0
        with atomic_path(output) as tmp, H5adStreamWriter(tmp, meta.var.iloc[gene_idx].copy()) as out:
            for start, block in iter_row_chunks(source, chunk_rows=chunk_rows):
                keep = np.flatnonzero(cells[start : start + block.shape[0]])
                if not keep.size:
                    continue
                part = sp.csr_matrix(block[keep][:, gene_idx])
                part.sort_indices()
                out.append(part, obs_kept.iloc[done : done + keep.size])
                done += keep.size
            if out.n_rows == 0:
                raise DataError(f"{where}: no cell passes min_genes={p['min_genes']}")
            full = {"recipe": recipe, "label_key": label_key, "seed": int(seed), "params": p, "derived": record}
            out.finish({"scsynth_prepare": full})
    return full


__all__ = ["SKETCH_CELLS", "STREAMED_RECIPES", "prepare_backed"]
