"""SimBench-style marginal and structural scores: each looks at its own property, on sparse counts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scsynth_core.errors import DataError
from scsynth_core.metrics.marginals import (
    SCORES,
    marginal_scores,
    marginal_statistics,
    sliced_w1_2d,
)


def test_statistics_of_a_small_matrix_match_a_dense_computation():
    X = np.array([[1.0, 0.0, 3.0, 0.0], [0.0, 0.0, 2.0, 2.0], [4.0, 0.0, 0.0, 0.0]])
    stored = sp.csr_matrix(X)
    with_explicit_zero = sp.csr_matrix(
        (np.r_[stored.data, 0.0], np.r_[stored.indices, 1], np.r_[stored.indptr[:-1], stored.indptr[-1] + 1]),
        shape=X.shape,
    )
    stats = marginal_statistics(with_explicit_zero)  # the explicit 0 at (2, 1) must count as a zero
    logs = np.log1p(X / X.sum(1, keepdims=True) * 20_000)
    np.testing.assert_allclose(stats["library_size"], [4, 4, 4])
    np.testing.assert_allclose(stats["cell_zero_fraction"], [0.5, 0.5, 0.75])
    np.testing.assert_allclose(stats["gene_zero_fraction"], [1 / 3, 1.0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(stats["gene_mean"], logs.mean(0))
    np.testing.assert_allclose(stats["gene_variance"], logs.var(0), atol=1e-12)
    for key, value in marginal_statistics(X).items():  # dense input, same answer
        np.testing.assert_allclose(value, stats[key], atol=1e-12)


def test_identical_sets_score_zero_everywhere(demo_counts):
    scores = marginal_scores(demo_counts, demo_counts)
    assert list(scores) == list(SCORES)
    assert all(value == 0.0 for value in scores.values())


def test_deeper_sequencing_changes_only_the_library_size(demo_counts):
    """Doubling every count leaves normalised expression, zeros and correlations as they were."""
    doubled = demo_counts.X * 2
    scores = marginal_scores(demo_counts.X, doubled)
    assert scores["ks_library_size"] > 0.5
    assert all(scores[key] < 1e-9 for key in SCORES if key != "ks_library_size")


def test_dropout_raises_the_zero_fraction_scores(demo_counts):
    X = sp.csr_matrix(demo_counts.X, dtype=np.float64, copy=True)
    X.data[np.random.default_rng(0).random(X.nnz) < 0.5] = 0.0  # explicit zeros: must still count
    scores = marginal_scores(demo_counts.X, X)
    assert scores["ks_cell_zero_fraction"] > 0.9
    assert scores["ks_gene_zero_fraction"] > 0.3
    assert scores["w1_mean_zero_fraction"] > scores["w1_mean_variance"] > 0


def test_gene_level_distributions_ignore_gene_identity_but_correlations_do_not(demo_counts):
    """Permuting genes keeps every per-gene distribution (those scores are exactly 0) but breaks the
    correlations among the real cells' top genes (a known blind spot of distribution-level scores)."""
    permuted = demo_counts.X[:, np.random.default_rng(1).permutation(demo_counts.n_vars)]
    scores = marginal_scores(demo_counts, permuted)
    for key in (
        "ks_library_size",
        "ks_cell_zero_fraction",
        "ks_gene_zero_fraction",
        "ks_gene_mean",
        "ks_gene_variance",
        "w1_mean_variance",
        "w1_mean_zero_fraction",
    ):
        assert scores[key] == pytest.approx(0.0, abs=1e-12)
    # 0.08 here; two random halves of the same cells score 0.011 (measured).
    assert scores["ks_gene_correlation"] > 0.05


def test_sliced_w1_of_a_shift_is_its_mean_projected_length():
    """For b = a + s, every projection shifts by <s, u>: the sliced W1 is the mean |<s, u>| over directions,
    2 ||s|| / pi in the limit of many directions."""
    a = np.random.default_rng(2).normal(size=(300, 2))
    shift = np.array([3.0, 4.0])
    assert sliced_w1_2d(a, a) == 0.0
    assert sliced_w1_2d(a, a + shift, n_directions=512) == pytest.approx(2 * 5 / np.pi, rel=1e-3)


def test_different_gene_numbers_are_refused():
    with pytest.raises(DataError, match="different numbers of genes"):
        marginal_scores(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(DataError, match="at least two cells"):
        marginal_scores(np.ones((1, 4)), np.ones((3, 4)))
