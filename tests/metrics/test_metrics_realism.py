"""Known-answer and invariant tests of the realism metrics (RF AUC/error, MMD, controls)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scsynth_core.errors import DataError
from scsynth_core.metrics import realism
from scsynth_core.metrics.realism import (
    mmd,
    mmd_bandwidth,
    positive_control,
    realism_metrics,
    rf_real_vs_generated,
    shuffled_genes_control,
)
from scsynth_core.metrics.representation import fit_representation

N_TREES = 50


# ------------------------------------------------------------------------------------------ references
def _brute_bandwidth(z: np.ndarray, k: int) -> float:
    n = len(z)
    means = []
    for i in range(n):
        d = [np.sqrt(np.sum((z[i] - z[j]) ** 2)) for j in range(n) if j != i]
        means.append(np.mean(sorted(d)[:k]))
    return float(np.median(means))


def _slow_mmd(x: np.ndarray, y: np.ndarray, k: int = 25) -> float:
    m = _brute_bandwidth(np.vstack([x, y]), k)

    def kern(a, b):
        d2 = np.sum((a - b) ** 2)
        return sum(np.exp(-d2 / s**2) for s in (m / 2, m, 2 * m))

    nx, ny = len(x), len(y)
    kxx = sum(kern(x[i], x[j]) for i in range(nx) for j in range(nx) if i != j) / (nx * (nx - 1))
    kyy = sum(kern(y[i], y[j]) for i in range(ny) for j in range(ny) if i != j) / (ny * (ny - 1))
    kxy = sum(kern(x[i], y[j]) for i in range(nx) for j in range(ny)) / (nx * ny)
    return kxx + kyy - 2 * kxy


@pytest.fixture(scope="module")
def small_sets():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    y = rng.normal(size=(30, 6)) * 1.3 + 0.4
    return x, y


# ------------------------------------------------------------------------------------------------- MMD
def test_bandwidth_matches_brute_force(small_sets):
    x, y = small_sets
    for k in (1, 5, 25):
        assert mmd_bandwidth(x, y, k) == pytest.approx(_brute_bandwidth(np.vstack([x, y]), k), rel=1e-12)


def test_bandwidth_with_duplicate_points_excludes_only_self():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    y = np.array([[3.0, 4.0]])
    # k=1: each point's nearest other point is its duplicate -> all distances 0.
    assert mmd_bandwidth(x, y, 1) == 0.0
    # k=2: means are (0+5)/2 for all four points.
    assert mmd_bandwidth(x, y, 2) == pytest.approx(2.5)


def test_mmd_matches_double_loop_reference(small_sets):
    x, y = small_sets
    assert mmd(x, y) == pytest.approx(_slow_mmd(x, y), abs=1e-10)
    assert mmd(x, y, k=5) == pytest.approx(_slow_mmd(x, y, k=5), abs=1e-10)


def test_mmd_tiling_gives_the_same_value(small_sets, monkeypatch):
    x, y = small_sets
    whole = mmd(x, y)
    monkeypatch.setattr(realism, "_MMD_TILE_ENTRIES", 49)  # 7 x 7 tiles: diagonal and off-diagonal tiles
    assert mmd(x, y) == pytest.approx(whole, abs=1e-12)


def test_mmd_of_a_set_with_itself_has_the_closed_form():
    # Unbiased estimator with y == x: kxy contains the n diagonal terms k = 3, so MMD^2 = (2 kxx - 6) / n.
    x = np.random.default_rng(2).normal(size=(50, 4))
    m = mmd_bandwidth(x, x)
    kxx = realism._kernel_sum(x, x, m, same=True) / (50 * 49)
    assert mmd(x, x) == pytest.approx((2 * kxx - 6) / 50, abs=1e-12)
    assert -6 / 50 <= mmd(x, x) < 0


def test_biased_mmd_is_the_v_statistic():
    """Known answers: 0 for a set against itself; on two points per set the hand-computed V-statistic; on any
    sets the double-loop reference with the i == j terms (k = 3) in the within-set means."""
    x = np.random.default_rng(5).normal(size=(30, 3))
    assert mmd(x, x, biased=True) == pytest.approx(0.0, abs=1e-12)
    a, b = np.array([[0.0], [1.0]]), np.array([[0.0], [3.0]])

    def kern(d):  # Marouf's kernel at distance d with bandwidth m = 1
        return sum(np.exp(-(d**2) / s**2) for s in (0.5, 1.0, 2.0))

    expected = (6 + 2 * kern(1)) / 4 + (6 + 2 * kern(3)) / 4 - 2 * (kern(0) + kern(3) + kern(1) + kern(2)) / 4
    assert mmd(a, b, bandwidth=1.0, biased=True) == pytest.approx(expected, abs=1e-12)
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(9, 4)) + 0.5
    m = mmd_bandwidth(x, y)
    kxx, kyy = (realism._kernel_sum(z, z, m, same=True) for z in (x, y))
    kxy = realism._kernel_sum(x, y, m, same=False)
    assert mmd(x, y, biased=True) == pytest.approx((kxx + 36) / 144 + (kyy + 27) / 81 - 2 * kxy / 108, abs=1e-12)
    assert mmd(x, y, biased=True) > mmd(x, y)


def test_mmd_near_zero_for_same_distribution_and_large_for_shift():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 10)), rng.normal(size=(400, 10))
    assert abs(mmd(a, b)) < 0.01
    assert mmd(a, b + 1.0) > 0.2
    assert mmd(a, b + 1.0) < mmd(a, b + 3.0)


def test_mmd_invariant_to_rigid_motion_and_scale(small_sets):
    x, y = small_sets
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    shift = rng.normal(size=6)
    base = mmd(x, y)
    assert mmd(x @ q + shift, y @ q + shift) == pytest.approx(base, abs=1e-10)
    assert mmd(7.5 * x, 7.5 * y) == pytest.approx(base, abs=1e-10)  # bandwidth scales with the data
    assert mmd(y, x) == pytest.approx(base, abs=1e-12)


def test_mmd_float32_input_close_to_float64(small_sets):
    x, y = small_sets
    assert mmd(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(mmd(x, y), abs=1e-6)


def test_mmd_rejects_bad_input():
    with pytest.raises(DataError):
        mmd(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(DataError):
        mmd(np.zeros((1, 3)), np.zeros((5, 3)))


# ----------------------------------------------------------------------------------------- random forest
def test_rf_same_distribution_near_half():
    rng = np.random.default_rng(5)
    res = rf_real_vs_generated(rng.normal(size=(300, 10)), rng.normal(size=(300, 10)), n_trees=N_TREES, seed=0)
    assert 0.4 < res.auc_mean < 0.6
    assert 0.4 < res.error < 0.6
    assert len(res.fold_aucs) == 5 and len(res.fpr) == 5 and len(res.tpr) == 5


def test_rf_separated_clouds_and_result_structure():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(200, 8))
    gen = rng.normal(size=(260, 8)) + 4.0
    res = rf_real_vs_generated(real, gen, n_trees=N_TREES, seed=0)
    assert res.auc_mean > 0.99 and res.error < 0.05
    assert res.n_per_class == 200  # the larger set is subsampled
    assert res.auc_sd == pytest.approx(np.std(res.fold_aucs, ddof=1))
    assert res.error == pytest.approx(res.fold_errors.mean())
    for fpr, tpr in zip(res.fpr, res.tpr):
        assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
        assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert set(res.as_dict()) == {"rf_auc_mean", "rf_auc_sd", "rf_error", "rf_n_per_class"}


def test_rf_is_reproducible_and_seed_dependent():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(120, 5)), rng.normal(size=(150, 5)) + 0.3
    r1 = rf_real_vs_generated(a, b, n_trees=20, seed=3)
    r2 = rf_real_vs_generated(a, b, n_trees=20, seed=3)
    r3 = rf_real_vs_generated(a, b, n_trees=20, seed=4)
    np.testing.assert_array_equal(r1.fold_aucs, r2.fold_aucs)
    assert not np.array_equal(r1.fold_aucs, r3.fold_aucs)


def test_rf_rejects_mismatched_features():
    with pytest.raises(DataError):
        rf_real_vs_generated(np.zeros((20, 3)), np.zeros((20, 4)), n_trees=5)


# -------------------------------------------------------------------------------------------- controls
def test_shuffled_genes_control_keeps_marginals_and_destroys_correlation(demo_counts):
    shuffled = shuffled_genes_control(demo_counts, seed=0)
    X, S = demo_counts.X.toarray(), shuffled.X.toarray()
    assert sp.isspmatrix_csr(shuffled.X) and S.dtype == X.dtype
    assert list(shuffled.var_names) == list(demo_counts.var_names)
    np.testing.assert_array_equal(np.sort(S, axis=0), np.sort(X, axis=0))  # every gene's values kept
    assert (S != X).mean() > 0.05
    # Two strongly co-expressed genes lose their correlation.
    corr = np.corrcoef(X, rowvar=False)
    np.fill_diagonal(corr, 0)
    i, j = np.unravel_index(np.nanargmax(corr), corr.shape)
    assert corr[i, j] > 0.5
    assert abs(np.corrcoef(S[:, i], S[:, j])[0, 1]) < 0.2
    # Reproducible, and the dense path gives the same permutations.
    np.testing.assert_array_equal(shuffled_genes_control(demo_counts, seed=0).X.toarray(), S)
    dense = demo_counts.copy()
    dense.X = X
    np.testing.assert_array_equal(shuffled_genes_control(dense, seed=0).X, S)


def test_demo_controls_real_vs_real_near_half_and_shuffled_detected(demo_counts):
    rep = fit_representation(demo_counts, seed=0)
    order = np.random.default_rng(0).permutation(demo_counts.n_obs)
    half_a, half_b = demo_counts[order[:350]], demo_counts[order[350:]]
    pcs_a = rep.transform(half_a)
    control = positive_control(pcs_a, rep.transform(half_b), n_trees=N_TREES, seed=0)
    assert 0.35 <= control.auc_mean <= 0.65
    negative = rf_real_vs_generated(pcs_a, rep.transform(shuffled_genes_control(half_b, seed=1)), n_trees=N_TREES)
    assert negative.auc_mean > 0.8
    assert mmd(pcs_a, rep.transform(half_b)) < 0.05 < mmd(pcs_a, rep.transform(shuffled_genes_control(half_b)))


def test_realism_metrics_combines_the_pieces(demo_counts):
    rep = fit_representation(demo_counts, seed=0)
    real, gen = demo_counts[:300], shuffled_genes_control(demo_counts[300:], seed=2)  # 400 generated cells
    out = realism_metrics(real, gen, representation=rep, n_trees=N_TREES, seed=0)
    assert set(out) == {"rf_auc_mean", "rf_auc_sd", "rf_error", "mmd", "n_real", "n_generated"}
    assert out["n_real"] == 300 and out["n_generated"] == 400
    assert out["rf_auc_mean"] > 0.8 and out["rf_error"] < 0.3 and out["mmd"] > 0.05
    # Same numbers as the pieces on the same equal-size subsample.
    real_pcs, gen_pcs = rep.transform(real), rep.transform(gen)
    _, gen_eq = realism._equal_sizes(real_pcs, gen_pcs, np.random.default_rng(0))
    assert out["mmd"] == pytest.approx(mmd(real_pcs, gen_eq), abs=1e-12)
    assert out["rf_auc_mean"] == rf_real_vs_generated(real_pcs, gen_eq, n_trees=N_TREES, seed=0).auc_mean


def test_inception_score_added_when_the_real_cells_have_types(demo_counts):
    """Yu & Welch 2021: real cells under a forest trained on real cells of the same types score well above
    cells whose gene-gene structure is destroyed (the forest cannot assign them confidently)."""
    rep = fit_representation(demo_counts, seed=0)
    real, other = demo_counts[:350], demo_counts[350:]
    scored = {
        name: realism_metrics(real, cells, representation=rep, n_trees=N_TREES, seed=0, label_key="bulk_labels")
        for name, cells in {"real": other, "shuffled": shuffled_genes_control(other, seed=2)}.items()
    }
    n_types = real.obs["bulk_labels"].nunique()
    # measured: real 2.11, shuffled 1.19 (10 types)
    assert scored["shuffled"]["inception_score"] >= 1.0  # uniform predictions give exactly 1
    assert scored["real"]["inception_score"] > 1.5 * scored["shuffled"]["inception_score"]
    assert scored["real"]["inception_score"] <= n_types
    assert scored["real"]["inception_score_sd"] >= 0
    without = realism_metrics(real, other, representation=rep, n_trees=N_TREES, seed=0)
    assert "inception_score" not in without and without["rf_auc_mean"] == scored["real"]["rf_auc_mean"]
