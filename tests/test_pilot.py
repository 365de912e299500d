"""The pilot experiment's library parts (Treppner 2021): pilot draws, the reference embedding, the evaluation of one
synthetic set (known answers on constructed data), the tables and figures."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, DataError
from scsynth_core.metrics.pilot import build_pilot_reference, evaluate_pilot_set
from scsynth_core.pilot import count_difference_table, draw_pilot, pilot_indices


@pytest.fixture(scope="module")
def three_clusters() -> ad.AnnData:
    """300 cells x 60 genes: three NB clusters of 100 cells, each with its own 20 marker genes."""
    rng = np.random.default_rng(0)
    means = np.full((3, 60), 0.3)
    for k in range(3):
        means[k, 20 * k : 20 * (k + 1)] = 8.0
    labels = np.repeat(["0", "1", "2"], 100)
    mu = means[labels.astype(int)]
    X = rng.negative_binomial(5, 5 / (5 + mu)).astype(np.float32)
    obs = pd.DataFrame({"cluster": pd.Categorical(labels)}, index=[f"c{i}" for i in range(300)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(60)]))


@pytest.fixture(scope="module")
def reference(three_clusters):
    return build_pilot_reference(three_clusters, n_pcs=10, n_neighbors=15, seed=0)


def test_pilot_indices_are_seeded_and_respect_replacement():
    a = pilot_indices(1000, 384, seed=3)
    np.testing.assert_array_equal(a, pilot_indices(1000, 384, seed=3))
    assert not np.array_equal(a, pilot_indices(1000, 384, seed=4))
    assert len(np.unique(a)) < 384  # with replacement (the authors' code): 384 of 1000 repeat some cells
    b = pilot_indices(1000, 384, seed=3, replace=False)
    assert len(np.unique(b)) == 384 and b.max() < 1000
    with pytest.raises(DataError, match="without replacement"):
        pilot_indices(100, 384, seed=0, replace=False)
    with pytest.raises(ConfigError):
        pilot_indices(100, 1, seed=0)


def test_draw_pilot_makes_repeated_cells_unique(three_clusters):
    pilot = draw_pilot(three_clusters, 250, seed=0)
    assert pilot.n_obs == 250 and pilot.obs_names.is_unique
    assert set(pilot.obs_names.str.replace(r"-\d+$", "", regex=True)) <= set(three_clusters.obs_names)


def test_reference_holds_what_projection_and_the_metrics_need(reference, three_clusters):
    from scsynth_core.metrics.pilot import ReferenceSpace

    assert reference.obsm["X_umap"].shape == (300, 2) and reference.obsm["X_pca"].shape == (300, 10)
    space = ReferenceSpace(reference)  # the refitted UMAP is the reference's embedding (seeded)
    np.testing.assert_allclose(space.umap.embedding_, reference.obsm["X_umap"], rtol=1e-5)
    # projecting the original cells with the stored mean and loadings gives their PCs back
    np.testing.assert_allclose(space.embed(three_clusters).obsm["X_pca"], reference.obsm["X_pca"], atol=1e-3)
    assert (reference.obs["ground_truth"].astype(str).to_numpy() == three_clusters.obs["cluster"].to_numpy()).all()
    assert (reference.layers["counts"] != three_clusters.X).nnz == 0


def test_a_faithful_copy_scores_like_the_original(reference, three_clusters):
    out = evaluate_pilot_set(reference, three_clusters, resolution=0.4, n_neighbors=15, seed=0)
    assert out["count_difference"] == 0.0  # every copied cell finds its cluster
    assert out["ari"] > 0.95  # the fresh clustering recovers the three clusters
    # UMAP's transform places copies near, not on, their originals: same order of magnitude (0.18 vs 0.13)
    assert out["dbi_synthetic"] == pytest.approx(out["dbi_original"], rel=0.5)
    assert out["mad_median"] == out["mad_iqr"] == out["mad_zero_fraction"] == 0.0
    embedded = out["embedded"]
    assert (embedded.obs["transferred"].to_numpy() == three_clusters.obs["cluster"].to_numpy()).all()


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_a_set_of_one_cluster_has_the_known_count_difference(reference, three_clusters):
    only_first = three_clusters[np.r_[np.arange(100), np.arange(100), np.arange(100)]].copy()
    only_first.obs_names_make_unique()
    out = evaluate_pilot_set(reference, only_first, resolution=0.4, n_neighbors=15, seed=0)
    assert out["count_difference"] == 200 + 100 + 100  # |100 - 300| + |100 - 0| + |100 - 0|
    assert out["n_synthetic"] == 300 and out["mad_zero_fraction"] > 0.1


def test_wrong_genes_and_non_counts_are_refused(reference, three_clusters):
    with pytest.raises(DataError, match="genes"):
        evaluate_pilot_set(reference, three_clusters[:, ::-1].copy(), resolution=0.4)
    fractional = three_clusters.copy()
    fractional.X = fractional.X * 0.5
    with pytest.raises(DataError):
        evaluate_pilot_set(reference, fractional, resolution=0.4)


def test_count_difference_table_means_and_sds_by_size():
    table = pd.DataFrame({"model": ["a", "a", "a", "b"], "pilot_size": [384, 384, 768, 384],
                          "seed": [0, 1, 0, 0], "count_difference": [10.0, 20.0, 5.0, 7.0]})
    out = count_difference_table(table).set_index("model")
    assert out.loc["a", "mean_384"] == 15.0 and out.loc["a", "sd_384"] == pytest.approx(7.1, abs=0.05)
    assert out.loc["a", "mean_768"] == 5.0 and out.loc["b", "mean_384"] == 7.0
    assert list(out.columns) == ["mean_384", "mean_768", "sd_384", "sd_768"]


def test_count_difference_table_keeps_sd_columns_with_one_seed():
    table = pd.DataFrame({"model": ["a", "a"], "pilot_size": [96, 192], "seed": [0, 0],
                          "count_difference": [3.0, 4.0]})
    out = count_difference_table(table)
    assert list(out.columns) == ["model", "mean_96", "mean_192", "sd_96", "sd_192"]
    assert out[["sd_96", "sd_192"]].isna().all().all()


def test_gene_marginal_figure_picks_genes_from_high_to_low_expression(three_clusters):
    from scsynth_core.plots.pilot import example_genes, plot_gene_marginals

    X = sp.csr_matrix(np.array([[5, 0, 1, 0], [7, 0, 0, 0], [6, 2, 0, 0]], dtype=np.float32))
    np.testing.assert_array_equal(example_genes(X, 3), [0, 1, 2])  # most to least expressed; gene 3 is all zero
    fig = plot_gene_marginals({"original": three_clusters.X, "copy": three_clusters.X}, three_clusters.var_names,
                              n_genes=3)
    assert len(fig.axes) == 3 and all(len(ax.patches) == 2 for ax in fig.axes)


def test_gene_marginals_of_a_diverged_model_draw_a_bounded_number_of_bins(three_clusters):
    """A synthetic set with huge counts (a too-short scVI training drew up to its 1e8 clamp, and one bin per count
    took 11 GB) is drawn with at most MAX_COUNT_BINS bins."""
    from scsynth_core.plots.pilot import MAX_COUNT_BINS, plot_gene_marginals

    real = three_clusters.X
    diverged = real.copy()
    diverged.data = np.full_like(diverged.data, 1e6)
    fig = plot_gene_marginals({"original": real, "diverged": diverged}, three_clusters.var_names, genes=[0])
    patches = fig.axes[0].patches
    assert len(patches) == 2
    # a filled step histogram's outline has at most four vertices per bin: bounded by the cap, not by 1e6
    assert all(len(p.get_xy()) <= 4 * (MAX_COUNT_BINS + 1) + 1 for p in patches)
    assert fig.axes[0].get_xlim()[1] > 1e6
