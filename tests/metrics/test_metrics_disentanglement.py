"""Known-answer and invariant tests of the MichiGAN disentanglement metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mutual_info_score

from scsynth_core.errors import DataError
from scsynth_core.metrics.disentanglement import (
    code_factor_gaps,
    code_factor_spearman,
    discretize,
    factorvae_metric,
    inception_score,
    knn_factor_regression,
    mig,
    mutual_information_matrix,
    posterior_mig,
    rf_inception_score,
    spearman_correlation_gap,
)


@pytest.fixture
def two_factors() -> pd.DataFrame:
    """Two independent uniform factors with 10 levels each, 20,000 cells."""
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.integers(10, size=20_000), "b": rng.integers(10, size=20_000)})


# ------------------------------------------------------------------------------------------------ discretize
def test_discretize_uniform_known_bins():
    x = np.array([0.0, 0.24, 0.25, 0.5, 0.99, 1.0])
    assert discretize(x, 4).tolist() == [0, 0, 1, 2, 3, 3]
    # columns are binned independently and a constant column is all zeros
    X = np.column_stack([x, 10 * x + 3, np.ones(6)])
    codes = discretize(X, 4)
    assert codes[:, 0].tolist() == codes[:, 1].tolist() == [0, 0, 1, 2, 3, 3]
    assert codes[:, 2].tolist() == [0] * 6


def test_discretize_quantile_equal_frequency():
    x = np.random.default_rng(0).exponential(size=1000)
    counts = np.bincount(discretize(x, 10, strategy="quantile"))
    assert counts.tolist() == [100] * 10
    # uniform bins on a skewed variable are far from equal frequency
    assert np.bincount(discretize(x, 10))[0] > 400


# ------------------------------------------------------------------------------------------- mutual information
def test_mi_matrix_matches_sklearn_per_pair():
    rng = np.random.default_rng(0)
    f = pd.DataFrame({"batch": rng.choice(["x", "y"], 500), "step": rng.integers(5, size=500)})
    z = rng.normal(size=(500, 3)) + np.column_stack([f["step"], (f["batch"] == "y") * 2.0, np.zeros(500)])
    mi = mutual_information_matrix(z, f)
    codes = discretize(z, 20)
    for i, name in enumerate(f.columns):
        for j in range(3):
            assert mi.iloc[i, j] == pytest.approx(mutual_info_score(f[name], codes[:, j]), abs=1e-12)
    assert list(mi.index) == ["batch", "step"]


def test_mig_identity_latents_near_one(two_factors):
    res = mig(two_factors.to_numpy().astype(float), two_factors)
    assert res["mig"] > 0.98
    assert set(res["gaps"]) == {"a", "b"}
    # the factor's own dim carries all its entropy
    assert res["mi"].loc["a", "z0"] == pytest.approx(res["normaliser"]["a"])
    # balanced variant: uniform factor, so log(levels) ~ H
    assert mig(two_factors.to_numpy().astype(float), two_factors, normalise="levels")["mig"] > 0.97


def test_mig_rotation_near_zero(two_factors):
    f = two_factors.to_numpy().astype(float)
    rot = f @ (np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2))  # 45 degrees
    res = mig(rot, two_factors)
    assert abs(res["mig"]) < 0.02
    # both dims carry information about each factor, just not separately
    assert (res["mi"].to_numpy() > 0.3).all()


def test_mig_continuous_rotation_and_noise_dims():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(20_000, 2))  # continuous factors are discretised
    aligned = np.column_stack([f, rng.normal(size=20_000)])
    assert mig(aligned, f)["mig"] > 0.95
    rot = np.column_stack([f @ (np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)), rng.normal(size=20_000)])
    assert abs(mig(rot, f)["mig"]) < 0.03


def test_mig_errors():
    z = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(DataError, match="factor 'const'"):
        mig(z, pd.DataFrame({"const": np.ones(50, dtype=int)}))
    with pytest.raises(DataError, match="49 values"):
        mig(z, np.arange(49))
    with pytest.raises(DataError, match="at least 2 latent"):
        mig(z[:, :1], np.arange(50) % 2)


# ------------------------------------------------------------------------------------- MIG through q(z|x)
def test_posterior_mig_known_answer_two_gaussians():
    """Codes mu = +-1 by a balanced binary factor, posterior s.d. 0.5: I(z; v) = H(mixture) - H(N(0, 0.25)),
    by numerical integration; a second dim equal to the prior for every cell carries exactly nothing."""
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    v = rng.integers(2, size=6_000)
    mu = np.column_stack([2.0 * v - 1.0, np.zeros(v.size)])
    logvar = np.column_stack([np.full(v.size, np.log(0.25)), np.zeros(v.size)])
    grid = np.linspace(-6, 6, 24_001)
    mixture = 0.5 * (norm.pdf(grid, -1, 0.5) + norm.pdf(grid, 1, 0.5))
    h_mixture = -np.sum(mixture * np.log(mixture)) * (grid[1] - grid[0])
    expected = h_mixture - 0.5 * np.log(2 * np.pi * np.e * 0.25)  # ~0.58 of H(v) = log 2 nats
    result = posterior_mig(mu, logvar, v, seed=1)
    assert result["mi"].loc["factor0", "z0"] == pytest.approx(expected, abs=0.02)
    assert result["mi"].loc["factor0", "z1"] == 0.0  # identical components: the same density with or without v
    assert result["mig"] == pytest.approx(expected / np.log(2), abs=0.03)


def test_posterior_mig_narrow_posteriors_match_histogram_mig(two_factors):
    """Near-deterministic, axis-aligned codes: both estimators find each factor's whole entropy in one dim."""
    latents = two_factors.to_numpy(float) + np.random.default_rng(2).normal(0, 0.01, (20_000, 2))
    logvar = np.full(latents.shape, np.log(1e-4))
    result = posterior_mig(latents, logvar, two_factors, max_cells=3_000, seed=0)
    assert result["mig"] > 0.97 and mig(latents, two_factors)["mig"] > 0.97
    # The posterior estimator sees the encoder's uncertainty: the same means with wide posteriors carry little.
    assert posterior_mig(latents, np.zeros_like(latents), two_factors, max_cells=3_000)["mig"] < 0.5
    with pytest.raises(DataError, match="differ in shape"):
        posterior_mig(latents, logvar[:, :1], two_factors)


# ------------------------------------------------------------------------------------------- FactorVAE metric
def test_factorvae_aligned_near_one(two_factors):
    rng = np.random.default_rng(3)
    f = two_factors.to_numpy().astype(float)
    z = np.column_stack([f + 0.1 * rng.normal(size=f.shape), rng.normal(size=(len(f), 2))])
    # dims on different scales: the global-sd normalisation makes the metric scale-invariant
    z *= np.array([100.0, 0.01, 1.0, 5.0])
    assert factorvae_metric(z, two_factors, n_votes=2000, n_train=1500) > 0.99


def test_factorvae_noise_near_chance():
    rng = np.random.default_rng(4)
    f = rng.integers(5, size=(20_000, 4))
    z = rng.normal(size=(20_000, 6))
    acc = factorvae_metric(z, f, n_votes=4000, n_train=3000)
    assert abs(acc - 0.25) < 0.06


def test_factorvae_uses_argmin_not_argmax():
    """Three factors, each in its own dim: fixing one leaves the OTHER two dims equally variable, so an argmax
    rule cannot tell which factor was fixed (~0.5), while argmin always can."""
    rng = np.random.default_rng(5)
    f = rng.integers(8, size=(20_000, 3))
    z = f + 0.1 * rng.normal(size=f.shape)
    assert factorvae_metric(z, f, n_votes=2000, n_train=1500) > 0.99


def test_factorvae_seeded_and_constant_dims(two_factors):
    f = two_factors.to_numpy().astype(float)
    z = np.column_stack([f, np.zeros(len(f))])  # a constant dim is never chosen
    kw = {"n_votes": 1000, "n_train": 800}
    assert factorvae_metric(z, two_factors, seed=7, **kw) == factorvae_metric(z, two_factors, seed=7, **kw) == 1.0
    with pytest.raises(DataError, match="n_train"):
        factorvae_metric(z, two_factors, n_votes=100, n_train=100)


# ----------------------------------------------------------------------------------------- correlation gap
def test_correlation_gap_known_answers():
    rng = np.random.default_rng(6)
    f = pd.DataFrame({"step": rng.normal(size=3000), "path": rng.choice(["p1", "p2"], 3000)})
    codes = (f["path"] == "p2").to_numpy() * 1.0
    aligned = np.column_stack([np.exp(f["step"]), codes, np.zeros(3000)])  # monotone map: rho = 1
    res = spearman_correlation_gap(aligned, f)
    rho = res["abs_rho"]
    assert rho.loc["step", "z0"] == pytest.approx(1.0) and rho.loc["path", "z1"] == pytest.approx(1.0)
    assert res["gaps"]["step"] == pytest.approx(1.0 - rho.loc["step", "z1"])
    assert res["gaps"]["path"] == pytest.approx(1.0 - rho.loc["path", "z0"])
    assert res["gap"] > 0.95
    assert res["abs_rho"].loc["step", "z2"] == 0.0  # constant dim counts as 0
    # identical copies of a factor in two dims: no gap
    dup = np.column_stack([f["step"], f["step"]])
    assert spearman_correlation_gap(dup, f[["step"]])["gap"] == pytest.approx(0.0)


# ------------------------------------------------------------------------------------------ inception score
def test_inception_score_known_answers():
    C = 5
    onehot = np.eye(C)[np.arange(3000) % C]
    mean, sd = inception_score(onehot, seed=None)
    assert mean == pytest.approx(C, rel=1e-4)
    assert sd == pytest.approx(0.0, abs=1e-6)
    # shuffled splits are not perfectly balanced, but close
    assert inception_score(onehot, seed=0)[0] == pytest.approx(C, rel=0.01)
    uniform = np.full((300, C), 1.0 / C)
    assert inception_score(uniform)[0] == pytest.approx(1.0)
    # one class only: p(y|x) = p(y), IS = 1
    assert inception_score(np.eye(C)[np.zeros(300, dtype=int)])[0] == pytest.approx(1.0)


def test_inception_score_marginal_choice_on_sorted_cells():
    onehot = np.eye(3)[np.repeat(np.arange(3), 100)]  # label-sorted, as conditional generators emit
    # unshuffled per-split marginals see one class per split -> 1; whole-set marginal -> 3
    assert inception_score(onehot, seed=None)[0] == pytest.approx(1.0, rel=1e-4)
    assert inception_score(onehot, seed=None, marginal="all")[0] == pytest.approx(3.0, rel=1e-4)
    assert inception_score(onehot, seed=0)[0] == pytest.approx(3.0, rel=0.02)


def test_inception_score_rejects_non_probabilities():
    with pytest.raises(DataError, match="sum to 1"):
        inception_score(np.ones((10, 3)))


def test_rf_inception_score_separable_clusters():
    rng = np.random.default_rng(7)
    centres = np.eye(3, 4) * 20
    labels = np.repeat(["t0", "t1", "t2"], 100)
    real = centres[np.repeat(np.arange(3), 100)] + rng.normal(size=(300, 4))
    gen_spread = centres[np.arange(300) % 3] + rng.normal(size=(300, 4))
    gen_collapsed = centres[np.zeros(300, dtype=int)] + rng.normal(size=(300, 4))
    mean, _ = rf_inception_score(real, labels, gen_spread, n_trees=20)
    assert mean > 2.8
    assert rf_inception_score(real, labels, gen_collapsed, n_trees=20)[0] < 1.1


# -------------------------------------------------------------------------------------- code-data correlation
def test_knn_factor_regression_recovers_nearby_factors():
    rng = np.random.default_rng(8)
    real = rng.uniform(0, 10, size=(2000, 2))
    factors = pd.DataFrame({"x": real[:, 0], "grid": np.floor(real[:, 1])})
    gen = rng.uniform(1, 9, size=(200, 2))
    pred = knn_factor_regression(real, factors, gen, k=3)
    assert pred.shape == (200, 2)
    assert np.abs(pred[:, 0] - gen[:, 0]).max() < 0.5
    # exact known answer: k=1 on a query equal to a real cell returns that cell's factor
    assert knn_factor_regression(real, factors["x"], real[:5], k=1) == pytest.approx(real[:5, 0])
    table = code_factor_spearman(gen, pd.DataFrame(pred, columns=["x", "grid"]))
    assert table.shape == (2, 2)
    assert table.loc["x", "z0"] > 0.95 and table.loc["grid", "z1"] > 0.95
    assert abs(table.loc["x", "z1"]) < 0.25
    # sign is kept
    assert code_factor_spearman(-gen, pred).iloc[0, 0] < -0.95


def test_code_factor_gaps_known_answers():
    """Table 4's gap: a code dim equal to one factor and independent of the rest gives gap ~1; two dims equally
    correlated with a factor give gap ~0 although the largest |rho| (today's Fig. 4 summary) stays high."""
    rng = np.random.default_rng(3)
    n = 5000
    factors = pd.DataFrame({"step": rng.uniform(0, 20, n), "path": rng.integers(2, size=n).astype(float)})
    own = np.column_stack([factors["step"], rng.normal(size=(n, 3))])  # z0 = step, the others noise
    table = code_factor_gaps(own, factors)
    assert list(table.index) == ["step", "path"] and table.loc["step", "top_dim"] == "z0"
    assert table.loc["step", "gap"] == pytest.approx(1.0, abs=0.05)
    assert table.loc["step", "abs_rho"] == pytest.approx(1.0)
    assert table.loc["path", "abs_rho"] < 0.1  # no dim carries path
    shared = factors["step"].to_numpy()[:, None] + rng.normal(0, 2.0, (n, 2))  # two equally noisy copies
    twin = code_factor_gaps(np.column_stack([shared, rng.normal(size=n)]), factors)
    assert twin.loc["step", "abs_rho"] > 0.9 and twin.loc["step", "gap"] < 0.03
    # a constant code dim or a constant predicted factor relates to nothing: |rho| 0, not NaN
    constant = code_factor_gaps(np.column_stack([np.zeros(n), own[:, :2]]), factors.assign(path=1.0))
    assert constant.loc["path", "abs_rho"] == 0.0 and constant.loc["path", "gap"] == 0.0
    assert constant.loc["step", "top_dim"] == "z1"
    with pytest.raises(DataError, match="at least 2 code dimensions"):
        code_factor_gaps(own[:, :1], factors)
