"""Known-answer tests of label transfer, Davies-Bouldin index, cluster count difference and ARI (Treppner 2021)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import davies_bouldin_score

from scsynth_core.errors import DataError
from scsynth_core.metrics.clustering import (
    adjusted_rand,
    cluster_count_difference,
    davies_bouldin,
    label_transfer_metrics,
    transfer_labels,
)

# Cluster A: (0,0), (1,0), (5,0): centroid (2,0), distances 2, 1, 3 -> mean 2, RMS sqrt(14/3)
# Cluster B: (20,0), (20,2): centroid (20,1), distances 1, 1 -> mean 1, RMS 1
# Centroid distance sqrt(18^2 + 1^2) = sqrt(325)
TOY = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [20.0, 0.0], [20.0, 2.0]])
TOY_LABELS = np.array(["A", "A", "A", "B", "B"])


def _reference_dbi(X, labels, q):
    """Direct loop over clusters (the definition, for a 3+ cluster check)."""
    ks = np.unique(labels)
    cents = np.array([X[labels == k].mean(axis=0) for k in ks])
    if q == 1:
        s = np.array([np.linalg.norm(X[labels == k] - c, axis=1).mean() for k, c in zip(ks, cents)])
    else:
        s = np.array([np.sqrt((np.linalg.norm(X[labels == k] - c, axis=1) ** 2).mean()) for k, c in zip(ks, cents)])
    worst = []
    for i in range(len(ks)):
        worst.append(max((s[i] + s[j]) / np.linalg.norm(cents[i] - cents[j]) for j in range(len(ks)) if j != i))
    return float(np.mean(worst))


def test_dbi_hand_computation_two_clusters():
    m = np.sqrt(325.0)
    assert davies_bouldin(TOY, TOY_LABELS, q=1) == pytest.approx((2 + 1) / m, rel=1e-12)
    assert davies_bouldin(TOY, TOY_LABELS, q=1) == pytest.approx(davies_bouldin_score(TOY, TOY_LABELS), rel=1e-12)
    assert davies_bouldin(TOY, TOY_LABELS) == pytest.approx((np.sqrt(14 / 3) + 1) / m, rel=1e-12)  # q = 2 default


def test_dbi_matches_definition_and_sklearn_on_random_clusters():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, s, size=(n, 3)) for c, s, n in [(0, 1, 40), (4, 0.5, 25), (-3, 2, 30), (8, 1, 5)]])
    labels = np.repeat([3, 1, 2, 0], [40, 25, 30, 5])
    assert davies_bouldin(X, labels, q=1) == pytest.approx(davies_bouldin_score(X, labels), rel=1e-10)
    assert davies_bouldin(X, labels, q=1) == pytest.approx(_reference_dbi(X, labels, 1), rel=1e-10)
    assert davies_bouldin(X, labels, q=2) == pytest.approx(_reference_dbi(X, labels, 2), rel=1e-10)
    assert davies_bouldin(sp.csr_matrix(X), labels) == pytest.approx(_reference_dbi(X, labels, 2), rel=1e-10)
    # RMS >= mean distance, so the q = 2 index is never smaller
    assert davies_bouldin(X, labels, q=2) >= davies_bouldin(X, labels, q=1)


def test_dbi_undefined_cases_are_nan_and_coinciding_centroids_infinite():
    assert np.isnan(davies_bouldin(TOY, ["A"] * 5))
    assert np.isnan(davies_bouldin(TOY, list("abcde")))
    # clusters {(-1,0),(1,0)} and {(0,-1),(0,1)} share the centroid (0, 0)
    X = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    assert davies_bouldin(X, [0, 0, 1, 1]) == np.inf
    with pytest.raises(DataError):
        davies_bouldin(TOY, TOY_LABELS[:3])


def test_transfer_labels_nearest_original_cell():
    original = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.array(["a", "b", "c"])
    synthetic = np.array([[1.0, 1.0], [9.0, -2.0], [6.0, 0.0], [2.0, 7.0], [0.0, 0.0]])
    np.testing.assert_array_equal(transfer_labels(original, labels, synthetic), ["a", "b", "b", "c", "a"])
    assert transfer_labels(original, [5, 6, 7], synthetic).dtype.kind == "i"  # label type kept
    with pytest.raises(DataError):
        transfer_labels(original, labels[:2], synthetic)


def test_cluster_count_difference_hand_example():
    original = ["a"] * 3 + ["b"] * 2 + ["c"]
    synthetic = ["a"] + ["b"] * 4 + ["d"]
    # |3-1| + |2-4| + |1-0| + |0-1| = 6 over 4 clusters
    assert cluster_count_difference(original, synthetic) == 6.0
    assert cluster_count_difference(original, synthetic, reduce="mean") == 1.5
    assert cluster_count_difference(original, list(reversed(original))) == 0.0


def test_adjusted_rand_known_values():
    # contingency [[2,0,0],[0,1,1]]: index 1, expected 1/3, max 3/2 -> (1 - 1/3) / (3/2 - 1/3) = 4/7
    assert adjusted_rand([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    assert adjusted_rand(["x", "x", "y", "y"], [5, 5, 9, 9]) == 1.0  # invariant to renaming
    with pytest.raises(DataError):
        adjusted_rand([0, 1], [0, 1, 1])


def test_label_transfer_metrics_on_a_faithful_copy():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.repeat(["a", "b", "c"], [50, 30, 20])
    original = centres[np.searchsorted(["a", "b", "c"], labels)] + rng.normal(size=(100, 2))
    synthetic = original + rng.normal(scale=0.01, size=original.shape)
    out = label_transfer_metrics(original, labels, synthetic, synthetic_clusters=labels)
    assert out["count_difference"] == 0.0 and out["count_difference_per_cluster"] == 0.0
    assert out["ari"] == 1.0
    assert out["dbi_synthetic"] == pytest.approx(out["dbi_original"], rel=0.01)
    # a synthetic set that drops cluster "c" and doubles "a": counts differ and the ARI key is absent
    biased = np.vstack([original[:50], original[:50]])
    out2 = label_transfer_metrics(original, labels, biased)
    assert "ari" not in out2
    assert out2["count_difference"] == 50 + 30 + 20  # |50-100| + |30-0| + |20-0|
