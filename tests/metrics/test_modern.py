"""The one entry point of today's metrics: identical sets, a dropped cell type, and real data against a noisy copy."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from conftest import shared_dataset
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.leaderboard import is_better
from scsynth_core.metrics import DIRECTIONS, METRICS, metrics_frame, modern_metrics
from scsynth_core.metrics.modern import GROUP_KEYS
from scsynth_core.metrics.representation import fit_representation

LABEL = "bulk_labels"


def _thirds(cells: ad.AnnData, seed: int = 0) -> tuple[ad.AnnData, ad.AnnData, ad.AnnData]:
    """(PCA cells, real cells, held-out cells): the compared sets both stay out of the PCA's fit."""
    part = np.random.default_rng(seed).permutation(cells.n_obs) % 3
    return tuple(cells[part == i].copy() for i in range(3))


def test_identical_sets_score_perfectly_overall_and_per_type(demo_counts):
    out = modern_metrics(demo_counts, demo_counts, label_key=LABEL)
    assert {key for keys in GROUP_KEYS.values() for key in keys} <= set(out) and set(DIRECTIONS) <= set(out)
    for key in ("w1", "w2", "mmd2_rbf", "nn1_accuracy", *GROUP_KEYS["marginals"]):
        assert out[key] == 0.0, key
    for key in ("knn_precision", "knn_recall", "knn_coverage", *GROUP_KEYS["de"]):
        assert out[key] == pytest.approx(1.0), key
    assert out["w2[CD14+ Monocyte]"] == 0.0 and out["knn_coverage[CD14+ Monocyte]"] == 1.0
    assert out["de_top_k_jaccard[CD4+/CD25 T Reg]"] == 1.0
    counts = demo_counts.obs[LABEL].value_counts()
    types = set(metrics_frame(out)["cell_type"]) - {""}
    assert types == set(counts.index[counts >= 20])  # the 8-cell naive T type is too small to score


def test_a_generator_that_drops_a_cell_type_loses_coverage_and_that_types_recall(demo_counts):
    fit, real, held = _thirds(demo_counts)
    rep = fit_representation(fit, n_components=30)
    dropped = held[held.obs[LABEL].to_numpy() != "CD19+ B"].copy()
    kwargs = {"label_key": LABEL, "representation": rep, "metrics": ("prdc", "wasserstein")}
    good, bad = modern_metrics(real, held, **kwargs), modern_metrics(real, dropped, **kwargs)
    assert bad["knn_coverage"] < good["knn_coverage"] - 0.05  # measured 0.97 -> 0.86
    assert good["knn_coverage[CD19+ B]"] > 0.9 and bad["knn_coverage[CD19+ B]"] < 0.3
    # Recall falls less: a few far-out generated cells have balls wide enough to reach B cells (Naeem's point).
    assert bad["knn_recall[CD19+ B]"] < good["knn_recall[CD19+ B]"] - 0.15
    assert np.isnan(bad["w2[CD19+ B]"]) and np.isnan(bad["knn_precision[CD19+ B]"])
    assert bad["w2[Dendritic]"] == pytest.approx(good["w2[Dendritic]"])  # other types are untouched
    assert "mmd2_rbf" not in bad and "ks_library_size" not in bad  # only the chosen groups


def test_pca_fitted_on_the_compared_real_cells_makes_real_look_unlike_real(demo_counts):
    """Why ``representation=`` exists: in-fit cells spread wider in their own PCs than any outside cells, so even
    real held-out cells lose recall against them (measured: 0.04 in-fit vs 0.95 with a separate PCA)."""
    fit, real, held = _thirds(demo_counts)
    in_fit = modern_metrics(real, held, metrics="prdc")
    separate = modern_metrics(real, held, metrics="prdc", representation=fit_representation(fit))
    assert in_fit["knn_recall"] < 0.3 and separate["knn_recall"] > 0.8


def test_a_wider_saved_representation_is_cut_to_n_pcs(demo_counts):
    fit, real, held = _thirds(demo_counts)
    wide, narrow = fit_representation(fit, n_components=50), fit_representation(fit, n_components=30)
    a = modern_metrics(real, held, metrics="wasserstein", representation=wide)
    b = modern_metrics(real, held, metrics="wasserstein", representation=narrow)
    assert a["w2"] == pytest.approx(b["w2"], rel=1e-4)  # the same 30-PC space (PC signs do not matter)
    assert modern_metrics(real, held, metrics="wasserstein", representation=wide, n_pcs=50)["w2"] > a["w2"]


def test_labels_only_in_the_real_cells_give_overall_values_only(demo_counts):
    unlabelled = ad.AnnData(demo_counts.X, var=demo_counts.var)
    unlabelled.obs_names = demo_counts.obs_names
    out = modern_metrics(demo_counts, unlabelled, label_key=LABEL, metrics=("mmd", "de"))
    assert set(out) == {"n_real", "n_generated", "n_compared", "mmd2_rbf", *GROUP_KEYS["de"]}
    assert all(np.isnan(out[key]) for key in GROUP_KEYS["de"])


def test_library_size_is_not_scored_for_normalised_cells(demo_counts):
    """LSN cells (every cell sums to 20,000) have no library sizes to compare: NaN, not a KS distance of ~1; the
    per-gene marginals still compare (they re-normalise), equal to those of the same cells as counts."""
    _, real, held = _thirds(demo_counts)
    lsn = held.copy()
    lsn.X = sp.csr_matrix(lsn.X.multiply(2e4 / lsn.X.sum(axis=1)))
    lsn.uns["scsynth"] = {"representation": "lsn"}
    as_lsn, as_counts = (modern_metrics(real, cells, metrics="marginals") for cells in (lsn, held))
    assert np.isnan(as_lsn["ks_library_size"]) and as_counts["ks_library_size"] < 0.2
    for key in ("ks_gene_mean", "ks_gene_zero_fraction", "ks_cell_zero_fraction"):
        assert as_lsn[key] == pytest.approx(as_counts[key], abs=1e-6), key


def test_bad_arguments_name_the_problem(demo_counts):
    with pytest.raises(ConfigError, match="unknown or empty metric group.*'fid'"):
        modern_metrics(demo_counts, demo_counts, metrics=("mmd", "fid"))
    with pytest.raises(DataError, match="label_key 'celltype' is not a column of the real"):
        modern_metrics(demo_counts, demo_counts, label_key="celltype")
    with pytest.raises(DataError, match="different genes"):
        modern_metrics(demo_counts, demo_counts[:, :100].copy())
    with pytest.raises(ConfigError, match="min_cells must be at least 2"):
        modern_metrics(demo_counts, demo_counts, min_cells=1)
    assert set(METRICS) == set(GROUP_KEYS)


def test_metrics_frame_splits_cell_types_with_slashes_and_brackets():
    frame = metrics_frame({"w2": 1.0, "w2[CD4+/CD25 T Reg]": 2.0, "de_lfc_pearson[B [naive]]": 3.0})
    assert frame.to_dict("list") == {
        "metric": ["w2", "w2", "de_lfc_pearson"],
        "cell_type": ["", "CD4+/CD25 T Reg", "B [naive]"],
        "value": [1.0, 2.0, 3.0],
    }


def _noised(cells: ad.AnnData, sigma: float, seed: int) -> ad.AnnData:
    """Poisson counts of the cells' own counts times log-normal factors per cell (depth) and per entry."""
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(cells.X, dtype=np.float64, copy=True)
    factor = np.repeat(rng.lognormal(0.0, sigma, X.shape[0]), np.diff(X.indptr))
    X.data = rng.poisson(X.data * factor * rng.lognormal(-(sigma**2) / 2, sigma, X.nnz)).astype(np.float64)
    X.eliminate_zeros()
    out = cells.copy()
    out.X = X
    return out


def test_real_held_out_cells_beat_a_noisy_copy_on_every_metric():
    """Pancreas endocrinogenesis (739 cells, 8 types; its 2,000 most-counted genes for speed): a third fits the
    PCA, a third is "real"; the last third (the ideal generator) must score better than a noisy copy of itself on
    every overall metric."""
    cells = ad.read_h5ad(shared_dataset("pancreas_endocrinogenesis_veloviz"))
    genes = np.sort(np.argsort(-np.asarray(cells.X.sum(axis=0)).ravel())[:2000])
    cells = ad.AnnData(cells.X[:, genes], obs=cells.obs[["clusters"]], var=cells.var.iloc[genes, :0])
    fit, real, held = _thirds(cells)
    rep = fit_representation(fit, n_components=30)
    good = modern_metrics(real, held, label_key="clusters", representation=rep)
    noisy = modern_metrics(real, _noised(held, 1.0, seed=1), label_key="clusters", representation=rep)
    worse = []
    for key, direction in DIRECTIONS.items():
        g, b = good[key], noisy[key]
        if not is_better(g, b, direction):
            worse.append((key, g, b))
    assert not worse
    assert good["knn_recall"] > 0.9 and abs(good["nn1_accuracy"] - 0.5) < 0.1  # real vs real looks real
