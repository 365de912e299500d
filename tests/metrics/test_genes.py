"""Known-answer tests of per-gene statistics and their mean absolute deviations (Treppner 2021 Fig. 3)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.errors import DataError
from scsynth_core.metrics import genes as genes_mod
from scsynth_core.metrics.genes import gene_statistics, gene_statistics_mad

# 5 cells x 3 genes; gene 2 is all zero
TOY = np.array(
    [
        [0.0, 1.0, 0.0],
        [2.0, 1.0, 0.0],
        [4.0, 1.0, 0.0],
        [0.0, 1.0, 0.0],
        [9.0, 3.0, 0.0],
    ]
)


def test_gene_statistics_hand_values():
    stats = gene_statistics(TOY)
    assert list(stats.columns) == ["median", "iqr", "cv", "zero_fraction"]
    # gene 0: sorted 0 0 2 4 9 -> median 2, q25 0, q75 4; mean 3, sample var (9+1+1+9+36)/4 = 14
    assert stats.loc[0, "median"] == 2.0
    assert stats.loc[0, "iqr"] == 4.0
    assert stats.loc[0, "cv"] == pytest.approx(np.sqrt(14) / 3)
    assert stats.loc[0, "zero_fraction"] == 0.4
    # gene 1: 1 1 1 1 3 -> median 1, IQR 0; mean 1.4, sample var (4*0.16 + 2.56)/4 = 0.8
    assert stats.loc[1, "iqr"] == 0.0
    assert stats.loc[1, "cv"] == pytest.approx(np.sqrt(0.8) / 1.4)
    # all-zero gene: statistics 0, CV undefined
    assert stats.loc[2, ["median", "iqr"]].tolist() == [0.0, 0.0]
    assert stats.loc[2, "zero_fraction"] == 1.0 and np.isnan(stats.loc[2, "cv"])


def test_gene_statistics_interpolates_like_numpy_and_sparse_equals_dense(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.negative_binomial(2, 0.3, size=(37, 23)).astype(np.float32)
    X[:, 5] = 0
    expected = pd.DataFrame(
        {
            "median": np.median(X, axis=0),
            "iqr": np.percentile(X, 75, axis=0) - np.percentile(X, 25, axis=0),
            "cv": np.where(X.mean(0) > 0, X.std(0, ddof=1) / np.where(X.mean(0) > 0, X.mean(0), 1), np.nan),
            "zero_fraction": (X == 0).mean(axis=0),
        }
    )
    dense = gene_statistics(X)
    np.testing.assert_allclose(dense.to_numpy(), expected.to_numpy(), rtol=1e-6, equal_nan=True)
    monkeypatch.setattr(genes_mod, "_CHUNK_ENTRIES", 37 * 4)  # 4 genes per chunk: 6 chunks, last one short
    for M in (sp.csr_matrix(X), sp.csc_matrix(X), X):
        np.testing.assert_allclose(gene_statistics(M).to_numpy(), dense.to_numpy(), rtol=1e-12, equal_nan=True)


def test_gene_statistics_uses_var_names_of_anndata():
    adata = ad.AnnData(sp.csr_matrix(TOY), var=pd.DataFrame(index=["x", "y", "z"]))
    stats = gene_statistics(adata)
    assert list(stats.index) == ["x", "y", "z"]
    assert stats.loc["x", "median"] == 2.0


def test_gene_statistics_mad_hand_example():
    synth = TOY.copy()
    synth[:, 0] = [1, 1, 1, 1, 1]  # median 1, IQR 0, CV 0, zeros 0
    synth[:, 2] = [0, 0, 0, 0, 5]  # median 0, IQR 0, CV sqrt(5)/1, zeros 0.8
    out = gene_statistics_mad(TOY, synth)
    assert out["mad_median"] == pytest.approx((1 + 0 + 0) / 3)
    assert out["mad_iqr"] == pytest.approx((4 + 0 + 0) / 3)
    # CV is NaN for the original all-zero gene: averaged over the two other genes only
    assert out["mad_cv"] == pytest.approx((np.sqrt(14) / 3 + 0) / 2)
    assert out["mad_zero_fraction"] == pytest.approx((0.4 + 0 + 0.2) / 3)
    assert gene_statistics_mad(TOY, TOY) == {k: 0.0 for k in out}


def test_gene_statistics_mad_on_demo_is_zero_for_itself_and_positive_for_noise(demo_counts):
    assert all(v == 0.0 for v in gene_statistics_mad(demo_counts, demo_counts).values())
    noisy = demo_counts.copy()
    noisy.X = noisy.X + sp.csr_matrix(np.random.default_rng(0).poisson(1.0, noisy.shape))
    out = gene_statistics_mad(demo_counts, noisy)
    assert out["mad_zero_fraction"] > 0.3 and out["mad_median"] > 0.5


def test_gene_statistics_mad_rejects_different_genes():
    with pytest.raises(DataError):
        gene_statistics_mad(TOY, TOY[:, :2])
    a = ad.AnnData(TOY, var=pd.DataFrame(index=["x", "y", "z"]))
    b = ad.AnnData(TOY, var=pd.DataFrame(index=["x", "z", "y"]))
    with pytest.raises(DataError):
        gene_statistics_mad(a, b)
