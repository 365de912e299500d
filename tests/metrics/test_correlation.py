"""Known-answer tests of the correlation discrepancy (Heydari 2022 eq. 7), marker heatmap frame and DE genes."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.errors import DataError
from scsynth_core.metrics.correlation import (
    HEATMAPS,
    correlation_discrepancy,
    de_gene_table,
    marker_correlation_frame,
    marker_genes,
    pearson_matrix,
    top_de_genes,
)


def _adata(columns: dict[str, list[float]], sparse: bool = False) -> ad.AnnData:
    X = np.array(list(columns.values()), dtype=np.float64).T
    return ad.AnnData(
        sp.csr_matrix(X) if sparse else X,
        obs=pd.DataFrame(index=[f"c{i}" for i in range(X.shape[0])]),
        var=pd.DataFrame(index=list(columns)),
    )


# real: g2 = 2 g1 (r = 1), g3 = reversed g1 (r = -1); generated: g2 = g1 (r = 1), g3 = [1, 3, 2, 4] (r = 0.8)
REAL = {"g1": [1, 2, 3, 4], "g2": [2, 4, 6, 8], "g3": [4, 3, 2, 1]}
GEN = {"g1": [1, 2, 3, 4], "g2": [1, 2, 3, 4], "g3": [1, 3, 2, 4]}
GENES = ["g1", "g2", "g3"]


def test_pearson_matrix_matches_numpy_and_handles_constant_genes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    np.testing.assert_allclose(pearson_matrix(X), np.corrcoef(X, rowvar=False), atol=1e-12)
    X[:, 2] = 5.0
    corr = pearson_matrix(X)
    assert corr[2, 2] == 1.0 and np.all(corr[2, [0, 1, 3]] == 0) and np.all(corr[[0, 1, 3], 2] == 0)


def test_correlation_discrepancy_hand_example():
    # diff = gen - real = [[0, 0, 1.8], [0, 0, 1.8], [1.8, 1.8, 0]] -> column sums 1.8, 1.8, 3.6
    real, gen = _adata(REAL), _adata(GEN)
    assert correlation_discrepancy(real, gen, GENES, space="raw") == pytest.approx(3.6, abs=1e-12)
    # symmetric in its arguments, and sparse input gives the same value
    assert correlation_discrepancy(gen, real, GENES, space="raw") == pytest.approx(3.6, abs=1e-12)
    assert correlation_discrepancy(_adata(REAL, True), _adata(GEN, True), GENES, space="raw") == pytest.approx(3.6)
    # a subset of genes: only g1, g3 -> diff [[0, 1.8], [1.8, 0]] -> 1.8
    assert correlation_discrepancy(real, gen, ["g1", "g3"], space="raw") == pytest.approx(1.8, abs=1e-12)


def test_correlation_discrepancy_constant_generated_gene():
    # generated g3 constant -> its correlations are 0: column 3 = |0 - (-1)| * 2 = 2, column 1 = |0 - (-1)| = 1
    gen = _adata({"g1": [1, 2, 3, 4], "g2": [1, 2, 3, 4], "g3": [7, 7, 7, 7]})
    assert correlation_discrepancy(_adata(REAL), gen, GENES, space="raw") == pytest.approx(2.0, abs=1e-12)


def test_correlation_discrepancy_with_itself_is_zero(demo_counts):
    genes = list(demo_counts.var_names[:20])
    assert correlation_discrepancy(demo_counts, demo_counts, genes) == 0.0
    # LSN space removes per-cell library size: cells scaled by arbitrary factors have identical correlations.
    scaled = demo_counts.copy()
    factors = np.random.default_rng(1).uniform(0.3, 3.0, scaled.n_obs)
    scaled.X = sp.csr_matrix(sp.diags(factors) @ scaled.X.astype(np.float64))
    assert correlation_discrepancy(demo_counts, scaled, genes, space="lsn") == pytest.approx(0.0, abs=1e-9)
    assert correlation_discrepancy(demo_counts, scaled, genes, space="raw") > 0.1


def test_correlation_discrepancy_errors():
    with pytest.raises(DataError, match="not found"):
        correlation_discrepancy(_adata(REAL), _adata(GEN), ["g1", "nope"])
    with pytest.raises(DataError, match="duplicates"):
        correlation_discrepancy(_adata(REAL), _adata(GEN), ["g1", "g1"])


def test_marker_correlation_frame_triangles():
    frame = marker_correlation_frame(_adata(REAL), _adata(GEN), GENES, space="raw")
    assert list(frame.index) == GENES and list(frame.columns) == GENES
    expected = np.array(
        [
            [1.0, 1.0, -1.0],  # upper triangle: real
            [1.0, 1.0, -1.0],
            [0.8, 0.8, 1.0],  # lower triangle: generated
        ]
    )
    np.testing.assert_allclose(frame.to_numpy(), expected, atol=1e-12)


def test_marker_correlation_frame_is_symmetric_for_identical_sets(demo_counts):
    genes = list(demo_counts.var_names[10:18])
    frame = marker_correlation_frame(demo_counts, demo_counts, genes).to_numpy()
    np.testing.assert_allclose(frame, frame.T, atol=1e-12)
    assert np.all(np.diag(frame) == 1.0)


def test_top_de_genes_toy(tiny_counts):
    # cluster "a" has genes g0-g5 high, cluster "b" g6-g11 (tiny_counts fixture)
    genes = top_de_genes(tiny_counts, groupby="cluster", n_genes=3)
    assert len(genes) == 6
    assert set(genes[:3]) <= {f"g{i}" for i in range(6)}
    assert set(genes[3:]) <= {f"g{i}" for i in range(6, 12)}
    # asking for every gene: each cluster ranks all 12, the union has no duplicates
    all_genes = top_de_genes(tiny_counts, groupby="cluster", n_genes=12)
    assert sorted(all_genes) == sorted(tiny_counts.var_names)
    assert tiny_counts.X.max() > 2  # the input was not normalised in place


def test_top_de_genes_demo_finds_known_markers(demo_counts):
    adata = demo_counts.copy()
    adata.obs["cluster"] = adata.obs["bulk_labels"]
    genes = top_de_genes(adata, n_genes=5)
    assert len(genes) == len(set(genes)) <= 5 * adata.obs["cluster"].nunique()
    b_cell = adata.obs["cluster"].cat.categories.get_loc("CD19+ B")
    # the B-cell markers used in the ACTIVA tutorial are among the top genes, in the B-cell block
    assert {"CD79A", "MS4A1"} <= set(genes)
    assert genes.index("CD79A") >= b_cell  # clusters before it contribute at most 5 genes each
    with pytest.raises(DataError):
        top_de_genes(adata, groupby="nope")


def test_marker_genes_every_cluster_and_the_largest_known_answer():
    """Every cluster: table order, repeats dropped (Heydari's set). Largest k: the k biggest clusters, biggest
    first, ties in table order (Marouf Fig. 1d: two clusters)."""
    table = pd.DataFrame(
        {"cluster": ["a", "a", "b", "b", "c", "c", "d", "d"], "n_cells": [10, 10, 50, 50, 30, 30, 30, 30],
         "rank": [1, 2, 1, 2, 1, 2, 1, 2], "gene": ["g1", "g2", "g3", "g1", "g4", "g5", "g6", "g7"]}
    )  # fmt: skip
    assert marker_genes(table) == ["g1", "g2", "g3", "g4", "g5", "g6", "g7"]
    assert marker_genes(table, largest=2) == ["g3", "g1", "g4", "g5"]
    assert marker_genes(table.iloc[::-1], largest=1) == ["g3", "g1"]  # within a cluster by rank, not row order
    with pytest.raises(DataError, match="n_cells"):
        marker_genes(table.drop(columns="n_cells"))


def test_de_gene_table_gives_marouf_set_of_the_two_largest_clusters(demo_counts):
    """The demo's two largest types are Dendritic (240 cells) and CD14+ Monocyte (129): Marouf's set is their top 5
    genes, each more expressed in its own type than in the rest."""
    adata = demo_counts.copy()
    adata.obs["cluster"] = adata.obs["bulk_labels"]
    table = de_gene_table(adata, n_genes=5)
    assert list(table.columns) == ["cluster", "n_cells", "rank", "gene"]
    assert len(table) == 5 * adata.obs["cluster"].nunique()
    marouf = marker_genes(table, largest=HEATMAPS["marouf"]["largest"])
    assert len(marouf) == 10
    values = np.log1p(adata.to_df() * 20_000 / np.asarray(adata.X.sum(axis=1)))
    for cluster, genes in (("Dendritic", marouf[:5]), ("CD14+ Monocyte", marouf[5:])):
        inside = (adata.obs["cluster"] == cluster).to_numpy()
        assert (values.loc[inside, genes].mean() > values.loc[~inside, genes].mean()).all()


def test_marker_correlation_frame_on_marouf_log_scale():
    """Marouf's heatmap correlates log(LSN + 1) values: a known answer the LSN correlations differ from."""
    cells = {"g1": [1, 2, 3, 9], "g2": [3, 2, 1, 1], "g3": [6, 6, 6, 0]}
    adata = _adata(cells)
    X = np.array(list(cells.values()), dtype=float).T
    logged = np.log1p(X * 20_000 / X.sum(axis=1, keepdims=True))
    frame = marker_correlation_frame(adata, adata, GENES, space=HEATMAPS["marouf"]["space"])
    np.testing.assert_allclose(frame.to_numpy(), np.corrcoef(logged, rowvar=False), atol=1e-12)
    lsn = marker_correlation_frame(adata, adata, GENES, space=HEATMAPS["activa"]["space"]).to_numpy()
    assert np.abs(lsn - frame.to_numpy()).max() > 0.01
