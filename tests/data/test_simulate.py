"""Splat simulation (scsynth_core.data.simulate): structure, determinism and the model's known behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from scsynth_core.data.simulate import SplatterParams, default_branch_from, simulate_prosstt, simulate_splatter
from scsynth_core.errors import ConfigError


def _dense(adata) -> np.ndarray:
    return adata.X.toarray().astype(np.float64)


def test_structure_counts_and_factors(tmp_path):
    import anndata as ad

    sim = simulate_splatter(n_cells=400, n_genes=150, seed=1)
    assert sim.shape == (400, 150)
    assert sp.isspmatrix_csr(sim.X) and sim.X.dtype == np.float32
    values = sim.X.data
    assert values.min() >= 0 and np.array_equal(values, np.round(values))
    assert list(sim.var_names[:2]) == ["Gene1", "Gene2"] and sim.obs_names[-1] == "Cell400"
    assert list(sim.obs["batch"].cat.categories) == ["Batch1", "Batch2"]
    assert list(sim.obs["path"].cat.categories) == ["Path1", "Path2"]
    # Batches are contiguous equal blocks (Splatter's batchCells); steps run 1..20.
    assert (sim.obs["batch"].iloc[:200] == "Batch1").all() and (sim.obs["batch"].iloc[200:] == "Batch2").all()
    assert sim.obs["step"].dtype.kind == "i" and sim.obs["step"].between(1, 20).all()
    assert set(sim.obs["step"]) == set(range(1, 21))
    assert (sim.obs["library_size"] > 0).all()
    assert (sim.obs["cluster"].astype(str) == sim.obs["path"].astype(str)).all()
    # Outlier genes sit at median(base means) x a factor > 1.
    var = sim.var
    outliers = var["outlier_factor"] != 1
    assert outliers.any() and (var.loc[outliers, "outlier_factor"] > 1).all()
    np.testing.assert_allclose(
        var.loc[outliers, "gene_mean"], np.median(var["base_gene_mean"]) * var.loc[outliers, "outlier_factor"]
    )
    assert sim.varm["path_factors_Path1"].shape == (150, 20)
    settings = sim.uns["simulation"]
    assert settings["de_prob"] == [0.5, 0.5] and settings["bcv_common"] == 0.1 and settings["seed"] == 1
    # Writable as h5ad (no None values in uns) and read back unchanged.
    sim.write_h5ad(tmp_path / "sim.h5ad")
    back = ad.read_h5ad(tmp_path / "sim.h5ad")
    assert (back.X != sim.X).nnz == 0 and back.uns["simulation"]["step"] == "linear"


def test_cluster_by_batch_and_path():
    sim = simulate_splatter(n_cells=200, n_genes=50, cluster_by="batch_path", seed=0)
    expected = sim.obs["batch"].astype(str) + "_" + sim.obs["path"].astype(str)
    assert (sim.obs["cluster"].astype(str) == expected).all()
    assert len(sim.obs["cluster"].cat.categories) == 4


def test_same_seed_identical_other_seed_differs():
    a = simulate_splatter(n_cells=300, n_genes=80, step="nonlinear", seed=7)
    b = simulate_splatter(SplatterParams(n_cells=300, n_genes=80, step="nonlinear"), seed=7)
    c = simulate_splatter(n_cells=300, n_genes=80, step="nonlinear", seed=8)
    assert (a.X != b.X).nnz == 0 and a.obs.equals(b.obs) and a.var.equals(b.var)
    assert (a.X != c.X).nnz > 0


def _path_log_ratio(sim) -> np.ndarray:
    """log2 of Path2 / Path1 mean library-normalised expression per gene (genes with >= 5 counts per cell)."""
    X = _dense(sim)
    norm = X / X.sum(axis=1, keepdims=True) * 1e4
    path = sim.obs["path"].to_numpy()
    means = [norm[path == name].mean(axis=0) for name in ("Path1", "Path2")]
    expressed = X.mean(axis=0) >= 5
    return np.log2(means[1][expressed] / means[0][expressed])


def test_de_probability_controls_path_differences():
    common = {"n_cells": 2000, "n_genes": 300, "n_batches": 1, "seed": 3}
    same = simulate_splatter(de_prob=0.0, **common)
    assert (same.var[["de_factor_Path1", "de_factor_Path2"]] == 1).all().all()
    different = simulate_splatter(de_prob=0.5, **common)
    de_share = (different.var["de_factor_Path1"] != 1).mean()
    assert 0.4 < de_share < 0.6
    # No DE: paths agree up to sampling noise; de_prob 0.5 (factors exp(+-|N(0.01, 0.5)|)): many genes differ.
    assert np.mean(np.abs(_path_log_ratio(same)) > 0.25) < 0.02
    assert np.mean(np.abs(_path_log_ratio(different)) > 0.25) > 0.25


def test_linear_paths_move_monotonically_from_start_to_end():
    sim = simulate_splatter(n_cells=3000, n_genes=300, n_batches=1, de_fac_loc=0.5, seed=4)
    table = sim.varm["path_factors_Path1"]  # genes x steps, the ground truth
    end = sim.var["de_factor_Path1"].to_numpy()
    np.testing.assert_allclose(table[:, 0], 1.0)
    np.testing.assert_allclose(table[:, -1], end)
    diffs = np.diff(table, axis=1)
    assert np.all(diffs * np.sign(end - 1)[:, None] >= -1e-12)  # never moves against the end point
    np.testing.assert_allclose(diffs, diffs[:, :1] * np.ones_like(diffs), atol=1e-12)  # equal steps: linear
    # In the counts: mean expression of Path1 cells in 5 step bins follows the DE direction of strong DE genes.
    X = _dense(sim)
    norm = X / X.sum(axis=1, keepdims=True) * 1e4
    in_path = (sim.obs["path"] == "Path1").to_numpy()
    bins = (sim.obs["step"].to_numpy()[in_path] - 1) // 4
    profile = np.vstack([norm[in_path][bins == b].mean(axis=0) for b in range(5)])
    strong = (np.abs(np.log(end)) > 1.0) & (X.mean(axis=0) >= 2)
    assert strong.sum() >= 10
    rho = np.array([stats.spearmanr(np.arange(5), profile[:, g])[0] for g in np.flatnonzero(strong)])
    agree = np.sign(rho) == np.sign(np.log(end[strong]))
    assert agree.mean() > 0.9 and np.median(np.abs(rho)) >= 0.9


def test_nonlinear_genes_bend_but_keep_their_end_points():
    sim = simulate_splatter(n_cells=200, n_genes=400, step="nonlinear", path_nonlinear_prob=0.3, seed=5)
    table = sim.varm["path_factors_Path2"]
    bent = sim.var["nonlinear_Path2"].to_numpy()
    assert 0.2 < bent.mean() < 0.4
    np.testing.assert_allclose(table[:, 0], 1.0)
    np.testing.assert_allclose(table[:, -1], sim.var["de_factor_Path2"], rtol=1e-9)
    curvature = np.abs(np.diff(table, n=2, axis=1)).max(axis=1)
    assert np.all(curvature[~bent] < 1e-9)
    assert np.median(curvature[bent]) > 1e-3
    assert table.min() > 0


def test_chained_path_starts_where_its_origin_ends():
    sim = simulate_splatter(n_cells=200, n_genes=100, path_from=[0, 1], seed=6)
    np.testing.assert_allclose(sim.varm["path_factors_Path2"][:, 0], sim.varm["path_factors_Path1"][:, -1])


def test_total_counts_follow_library_size():
    sim = simulate_splatter(n_cells=1000, n_genes=200, seed=2)
    totals = np.asarray(sim.X.sum(axis=1)).ravel()
    lib = sim.obs["library_size"].to_numpy()
    assert np.corrcoef(totals, lib)[0, 1] > 0.95
    assert abs(totals.mean() / lib.mean() - 1) < 0.05


@pytest.mark.parametrize("bcv_common", [0.1, 0.5])
def test_bcv_sets_gene_dispersion(bcv_common):
    # One population, fixed library size, no chi-squared noise: counts are NB with dispersion
    # (bcv_common + 1 / sqrt(mu))^2, so the method-of-moments estimate must match it.
    sim = simulate_splatter(
        n_cells=3000,
        n_genes=150,
        n_batches=1,
        n_paths=1,
        de_prob=0.0,
        out_prob=0.0,
        lib_scale=0.0,
        bcv_df=np.inf,
        bcv_common=bcv_common,
        seed=9,
    )
    X = _dense(sim)
    mean, var = X.mean(axis=0), X.var(axis=0, ddof=1)
    mu = sim.var["gene_mean"].to_numpy() / sim.var["gene_mean"].sum() * np.exp(11.0)
    keep = (mu > 5) & (mu < 2000)
    assert keep.sum() > 30
    observed = (var[keep] - mean[keep]) / mean[keep] ** 2
    expected = (bcv_common + 1 / np.sqrt(mu[keep])) ** 2
    assert abs(np.median(observed / expected) - 1) < 0.1


def test_higher_common_bcv_gives_higher_dispersion():
    def median_dispersion(bcv_common):
        sim = simulate_splatter(
            n_cells=1500,
            n_genes=150,
            n_batches=1,
            n_paths=1,
            de_prob=0.0,
            lib_scale=0.0,
            bcv_common=bcv_common,
            seed=10,
        )
        X = _dense(sim)
        mean, var = X.mean(axis=0), X.var(axis=0, ddof=1)
        keep = mean > 5
        return np.median((var[keep] - mean[keep]) / mean[keep] ** 2)

    low, high = median_dispersion(0.1), median_dispersion(0.4)
    assert high > 2 * low


def test_experiment_dropout_only_removes_counts():
    common = {"n_cells": 500, "n_genes": 200, "seed": 11}
    none = simulate_splatter(**common)
    dropped = simulate_splatter(dropout_type="experiment", **common)
    later = simulate_splatter(dropout_type="experiment", dropout_mid=3.0, **common)
    a, b, c = _dense(none), _dense(dropped), _dense(later)
    # Same seed: identical true counts; dropout only zeroes entries.
    assert np.all((b == a) | (b == 0)) and np.all((c == a) | (c == 0))
    zeros = [np.mean(m == 0) for m in (a, b, c)]
    assert zeros[0] < zeros[1] < zeros[2]
    assert zeros[1] - zeros[0] > 0.01


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"de_prob": 1.5}, "de_prob"),
        ({"bcv_common": -0.1}, "bcv_common"),
        ({"dropout_type": "cell"}, "dropout_type"),
        ({"step": "curvy"}, "step"),
        ({"n_cells": 0}, "n_cells"),
        ({"path_n_steps": 1}, "path_n_steps"),
        ({"path_prob": [0.2, 0.2]}, "path_prob"),
        ({"batch_fac_loc": [0.1, 0.1, 0.1]}, "batch_fac_loc"),
        ({"path_from": [2, 1]}, "path_from"),
        ({"path_nonlinear_prob": 0.2}, "path_nonlinear_prob"),
        ({"mean_rate": 0}, "mean_rate"),
        ({"n_genes": 2.5}, "n_genes"),
        ({"no_such_parameter": 1}, "no_such_parameter"),
    ],
)
def test_bad_parameter_is_named(overrides, name):
    with pytest.raises(ConfigError, match=name):
        simulate_splatter(**{"n_cells": 50, "n_genes": 20, **overrides})


# ------------------------------------------------------------------------------- PROSSTT-style trees (MichiGAN Table 3)
def test_prosstt_tree_counts_factors_and_continuity():
    sim = simulate_prosstt(n_cells=600, n_genes=80, n_branches=5, branch_length=20, seed=2)
    assert sim.shape == (600, 80) and sp.isspmatrix_csr(sim.X) and sim.X.dtype == np.float32
    values = sim.X.data
    assert values.min() >= 0 and np.array_equal(values, np.round(values)) and sim.X.nnz > 0
    assert sim.uns["simulation"]["factors"] == ["branch", "step"] and {"branch", "step"} <= set(sim.obs)
    assert list(sim.obs["branch"].cat.categories) == [f"Branch{b}" for b in range(1, 6)]
    # default topology: root -> 2, 3; branch 2 -> 4, 5; steps continue from the parent's end
    assert sim.uns["simulation"]["branch_from"] == [1, 1, 2, 2]
    assert sim.uns["simulation"]["branch_start"] == [0, 20, 20, 40, 40]
    start = np.asarray(sim.uns["simulation"]["branch_start"])[sim.obs["branch"].cat.codes.to_numpy()]
    assert (sim.obs["step"] - start).between(1, 20).all() and sim.obs["step"].max() > 55
    assert (sim.obs["step"] - sim.obs["branch_step"]).groupby(sim.obs["branch"], observed=True).nunique().eq(1).all()
    means = {b: sim.varm[f"log_means_Branch{b}"] for b in range(1, 6)}
    for child, parent in ((2, 1), (3, 1), (4, 2), (5, 2)):  # a child starts where its parent ends
        np.testing.assert_allclose(means[child][:, 0], means[parent][:, -1])
    # sibling branches diverge: by their ends they differ in log mean expression
    assert np.abs(means[2][:, -1] - means[3][:, -1]).mean() > 0.05
    assert np.abs(means[4][:, -1] - means[5][:, -1]).mean() > 0.05
    same = simulate_prosstt(n_cells=600, n_genes=80, n_branches=5, branch_length=20, seed=2)
    other = simulate_prosstt(n_cells=600, n_genes=80, n_branches=5, branch_length=20, seed=3)
    assert (same.X != sim.X).nnz == 0 and (other.X != sim.X).nnz > 0


def test_prosstt_counts_are_negative_binomial_with_the_stated_mean_and_variance():
    """One branch of 2 steps, no library-size spread: per gene and step the counts have mean ``base x
    exp(log mean)`` and variance ``alpha mu^2 + beta mu`` (PROSSTT's count model)."""
    sim = simulate_prosstt(n_cells=6000, n_genes=40, n_branches=1, branch_length=2, lib_scale=0.0, seed=4)
    X, var = _dense(sim), sim.var
    at_first = sim.obs["branch_step"].to_numpy() == 1
    mu = var["base_gene_mean"].to_numpy() * np.exp(sim.varm["log_means_Branch1"][:, 0])
    counts = X[at_first]
    assert np.median(counts.mean(axis=0) / mu) == pytest.approx(1.0, abs=0.03)
    expected = var["nb_alpha"].to_numpy() * mu**2 + var["nb_beta"].to_numpy() * mu
    assert np.median(counts.var(axis=0, ddof=1) / expected) == pytest.approx(1.0, abs=0.1)


def test_prosstt_default_topologies_and_bad_parameters():
    assert default_branch_from(3) == [1, 1] and default_branch_from(4) == [1, 1, 1]  # a trifurcation
    assert default_branch_from(5) == [1, 1, 2, 2] and default_branch_from(1) == []
    chained = simulate_prosstt(n_cells=60, n_genes=10, n_branches=3, branch_from=[1, 2], branch_length=[5, 6, 7])
    assert chained.obs.groupby("branch", observed=True)["step"].max().tolist() == [5, 11, 18]
    for overrides, name in (
        ({"branch_from": [2, 1]}, "branch_from"),
        ({"branch_length": 1}, "branch_length"),
        ({"alpha_scale": 0.5}, "alpha_scale"),
        ({"tree": 3}, "tree"),
    ):
        with pytest.raises(ConfigError, match=name):
            simulate_prosstt(**{"n_cells": 50, "n_genes": 20, "n_branches": 3, **overrides})
