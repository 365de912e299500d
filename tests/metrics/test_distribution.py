"""Wasserstein distances and RBF MMD in a PC space (CFGen's distribution distances), with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from scsynth_core.errors import DataError
from scsynth_core.metrics.distribution import (
    CFGEN_SIGMAS,
    equal_subsample,
    rbf_mmd,
    wasserstein,
)


def test_identical_sets_are_at_distance_zero():
    x = np.random.default_rng(0).normal(size=(300, 30))
    assert wasserstein(x, x, p=1) == 0.0
    assert wasserstein(x, x, p=2) == 0.0
    assert rbf_mmd(x, x) == 0.0
    assert rbf_mmd(x, x, bandwidths=CFGEN_SIGMAS) == 0.0


def test_a_shifted_copy_is_exactly_the_shift_away():
    """For y = x + mu the identity coupling is optimal for W1 and W2 alike: W = ||mu||, in any dimension."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 30))
    mu = rng.normal(size=30)
    y = rng.permutation(x + mu)  # row order must not matter
    assert wasserstein(x, y, p=2) == pytest.approx(np.linalg.norm(mu), rel=1e-9)
    assert wasserstein(x, y, p=1) == pytest.approx(np.linalg.norm(mu), rel=1e-9)


def test_independent_gaussians_with_equal_covariance_give_the_closed_form_w2():
    """W2(N(m1, S), N(m2, S)) = ||m1 - m2||. Two independent samples add their sampling noise: their W2^2 is the
    squared gap of the sample means plus the (small, in 2-D) W2^2 between the centred samples."""
    rng = np.random.default_rng(2)
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    mu = np.array([3.0, -1.5])
    x = rng.multivariate_normal([0.0, 0.0], cov, size=600)
    y = rng.multivariate_normal(mu, cov, size=600)
    w1, w2 = wasserstein(x, y, p=1), wasserstein(x, y, p=2)
    gap = np.linalg.norm(x.mean(0) - y.mean(0))
    assert gap == pytest.approx(np.linalg.norm(mu), abs=0.15)  # the samples' own means
    assert w2 == pytest.approx(np.linalg.norm(mu), rel=0.05)
    assert gap <= w1 <= w2 <= np.sqrt(gap**2 + 0.1)  # ||mean gap|| <= W1 <= W2, and W2 near the closed form


def test_w1_in_one_dimension_matches_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.exponential(size=(500, 1)), rng.normal(1.0, 2.0, size=(500, 1))
    assert wasserstein(x, y, p=1) == pytest.approx(wasserstein_distance(x[:, 0], y[:, 0]), rel=1e-9)


def test_unequal_sets_are_drawn_down_to_one_size_reproducibly():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(900, 5)), rng.normal(size=(300, 5))
    assert wasserstein(x, y, seed=7) == wasserstein(x, y, seed=7)
    assert wasserstein(x, y, seed=7) != wasserstein(x, y, seed=8)
    ix, iy = equal_subsample(900, 300, max_cells=200, rng=np.random.default_rng(0))
    assert len(ix) == len(iy) == 200 and len(set(ix)) == 200
    assert np.all(np.diff(ix) > 0) and ix.max() < 900 and iy.max() < 300
    ix, iy = equal_subsample(900, 300, max_cells=None, rng=np.random.default_rng(0))
    assert len(ix) == 300 and np.array_equal(iy, np.arange(300))


def test_mmd_of_two_points_is_the_closed_form_and_grows_with_the_shift():
    """One point per set: MMD^2 = k(x,x) + k(y,y) - 2 k(x,y) = 2 - 2 exp(-d^2 / (2 sigma^2)), averaged over sigmas."""
    x, y = np.zeros((1, 3)), np.array([[3.0, 0.0, 4.0]])  # d = 5
    assert rbf_mmd(x, y, bandwidths=[5.0]) == pytest.approx(2 - 2 * np.exp(-0.5))
    expected = np.mean([2 - 2 * np.exp(-25 / (2 * s * s)) for s in (1.0, 10.0)])
    assert rbf_mmd(x, y, bandwidths=[1.0, 10.0]) == pytest.approx(expected)
    rng = np.random.default_rng(5)
    a = rng.normal(size=(300, 10))
    b = rng.normal(size=(300, 10))
    near, far = rbf_mmd(a, b + 0.3), rbf_mmd(a, b + 2.0)
    assert 0 < near < far <= 2


def test_bad_inputs_name_the_problem():
    x = np.zeros((5, 3))
    with pytest.raises(DataError, match="different numbers of features"):
        wasserstein(x, np.zeros((5, 4)))
    with pytest.raises(DataError, match="p must be 1 or 2"):
        wasserstein(x, x, p=3)
    with pytest.raises(DataError, match="bandwidth is 0"):
        rbf_mmd(x, x)
    with pytest.raises(DataError, match="positive"):
        rbf_mmd(x, x + 1, bandwidths=[1.0, -2.0])
    with pytest.raises(DataError, match="NaN"):
        wasserstein(x, np.full((5, 3), np.nan))
