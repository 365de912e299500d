"""Recovery of one-vs-rest log fold changes: identical cells recover everything, permuted genes nothing."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.errors import DataError
from scsynth_core.metrics.de_recovery import de_recovery, one_vs_rest_lfc


def test_lfc_matches_a_dense_group_mean_computation():
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(30, 6)).astype(float)
    labels = np.array(list("abc") * 10)
    logs = np.log1p(X / X.sum(1, keepdims=True) * 20_000)
    expected = [logs[labels == g].mean(0) - logs[labels != g].mean(0) for g in ("c", "a")]
    np.testing.assert_allclose(one_vs_rest_lfc(sp.csr_matrix(X), labels, ["c", "a"]), expected)
    assert np.isnan(one_vs_rest_lfc(X, labels, ["z"])).all()  # a group without cells
    assert np.isnan(one_vs_rest_lfc(X, np.full(30, "a"), ["a"])).all()  # nothing outside the group


def test_identical_cells_recover_every_type_perfectly(demo_counts):
    frame = de_recovery(demo_counts, demo_counts, label_key="bulk_labels", min_cells=20)
    counts = demo_counts.obs["bulk_labels"].value_counts()
    assert sorted(frame.index) == sorted(counts.index[counts >= 20])
    np.testing.assert_allclose(frame[["lfc_pearson", "lfc_spearman", "top_k_jaccard"]].to_numpy(), 1.0)
    assert frame.loc["CD14+ Monocyte", "n_real"] == counts["CD14+ Monocyte"]


def test_permuted_genes_recover_nothing(demo_counts):
    permuted = demo_counts.copy()
    permuted.X = demo_counts.X[:, np.random.default_rng(1).permutation(demo_counts.n_vars)]
    frame = de_recovery(demo_counts, permuted, label_key="bulk_labels", min_cells=20)
    assert len(frame) >= 5
    assert frame["lfc_pearson"].abs().max() < 0.3
    assert frame["lfc_spearman"].abs().max() < 0.3
    assert frame["top_k_jaccard"].max() < 0.15


def test_types_too_small_in_either_set_are_left_out(tiny_counts):
    generated = tiny_counts[tiny_counts.obs["cluster"].to_numpy() == "a"].copy()
    generated = ad.concat([generated, tiny_counts[:35].copy()], index_unique="-")  # 'a': 60 cells, 'b': 5 cells
    frame = de_recovery(tiny_counts, generated, label_key="cluster", min_cells=10, top_k=3)
    assert list(frame.index) == ["a"]
    assert frame.loc["a", "top_k_jaccard"] <= 1.0
    empty = de_recovery(tiny_counts, generated, label_key="cluster", min_cells=100)
    assert empty.empty and list(empty.columns) == [
        "n_real",
        "n_generated",
        "lfc_pearson",
        "lfc_spearman",
        "top_k_jaccard",
    ]


def test_missing_labels_and_other_genes_are_refused(tiny_counts):
    unlabelled = ad.AnnData(tiny_counts.X, obs=pd.DataFrame(index=tiny_counts.obs_names), var=tiny_counts.var)
    with pytest.raises(DataError, match=r"obs\['cluster'\].*generated"):
        de_recovery(tiny_counts, unlabelled, label_key="cluster")
    with pytest.raises(DataError, match="different genes"):
        de_recovery(tiny_counts, tiny_counts[:, :5].copy(), label_key="cluster")
