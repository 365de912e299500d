"""kNN precision/recall/density/coverage (Naeem et al. 2020) and the 1-NN two-sample accuracy, known answers."""

from __future__ import annotations

import numpy as np
import pytest

from scsynth_core.errors import DataError
from scsynth_core.metrics.knn_fidelity import (
    knn_fidelity,
    knn_fidelity_per_cell,
    nn_two_sample_accuracy,
)


def test_identical_sets_have_full_precision_recall_and_coverage_and_copies_fool_no_1nn():
    x = np.random.default_rng(0).normal(size=(400, 10))
    out = knn_fidelity(x, x, k=5)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    assert 0.7 < out["density"] < 1.5  # about k balls contain each point of the same distribution
    # Every cell's nearest other cell is its twin in the other set: 1-NN is always wrong.
    assert nn_two_sample_accuracy(x, x) == 0.0


def test_hand_computed_values_in_one_dimension():
    """k = 1: real radii are all 1; the generated outlier at 0.5 has radius 9.5 and so recalls every real cell
    (the recall weakness Naeem et al. fixed with coverage)."""
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    generated = np.array([[0.5], [10.0], [11.0], [12.0]])
    cells = knn_fidelity_per_cell(real, generated, k=1)
    np.testing.assert_array_equal(cells.generated_precise, [True, False, False, False])
    np.testing.assert_array_equal(cells.generated_density, [2.0, 0.0, 0.0, 0.0])  # inside the balls of 0 and 1
    np.testing.assert_array_equal(cells.real_recalled, [True, True, True, True])
    np.testing.assert_array_equal(cells.real_covered, [True, True, False, False])
    assert cells.summary() == {"precision": 0.25, "recall": 1.0, "density": 0.5, "coverage": 0.5}
    # Balls are closed: generated 4.0 lies exactly on the radius (1) of real 3.0 and counts (with "<" it would not).
    assert knn_fidelity_per_cell(real, real + 1.0, k=1).generated_precise.tolist() == [True, True, True, True]
    assert knn_fidelity_per_cell(real, real + 1.01, k=1).generated_precise.tolist() == [True, True, True, False]


def test_dropping_a_mode_lowers_coverage_and_that_modes_recall():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0] * 5, [8.0] * 5])
    labels = np.repeat([0, 1], 300)
    real = centres[labels] + rng.normal(size=(600, 5))
    full = centres[labels] + rng.normal(size=(600, 5))
    only_a = centres[0] + rng.normal(size=(600, 5))
    good, dropped = knn_fidelity_per_cell(real, full), knn_fidelity_per_cell(real, only_a)
    assert good.summary()["coverage"] > 0.9 and dropped.summary()["coverage"] < 0.55
    assert good.summary(real_rows=labels == 1)["recall"] > 0.9
    assert dropped.summary(real_rows=labels == 1)["recall"] == 0.0
    assert dropped.summary(real_rows=labels == 1)["coverage"] == 0.0
    assert dropped.summary()["precision"] > 0.9  # what it does produce is realistic
    assert nn_two_sample_accuracy(real, full) == pytest.approx(0.5, abs=0.07)
    assert nn_two_sample_accuracy(real, only_a) > 0.6  # real B cells are all told apart


def test_separated_sets_are_told_apart_and_empty_groups_give_nan():
    rng = np.random.default_rng(2)
    real, far = rng.normal(size=(100, 3)), rng.normal(50.0, 1.0, size=(100, 3))
    assert nn_two_sample_accuracy(real, far) == 1.0
    out = knn_fidelity(real, far)
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    summary = knn_fidelity_per_cell(real, far).summary(generated_rows=np.zeros(100, bool))
    assert np.isnan(summary["precision"]) and np.isnan(summary["density"]) and summary["recall"] == 0.0


def test_bad_inputs_name_the_problem():
    x = np.zeros((5, 2))
    with pytest.raises(DataError, match="1 <= k < cells"):
        knn_fidelity(x, x, k=5)
    with pytest.raises(DataError, match="different numbers of features"):
        knn_fidelity(x, np.zeros((5, 3)), k=1)
    with pytest.raises(DataError, match="at least 2 cells"):
        nn_two_sample_accuracy(x[:1], x[:1])
