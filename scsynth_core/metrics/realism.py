"""Realism of generated cells: random-forest real-vs-generated classification and maximum mean discrepancy.

Protocols implemented
---------------------
* Random forest (Marouf et al. 2020, Methods "Evaluation" / Fig. 1-2; reused by Heydari et al. 2022, Results
  "ACTIVA generates realistic cells", Tables 1-2, and by Yu & Welch 2021 as the "RF error"): equal numbers of real
  (test) and generated cells, both in the 50-PC representation fitted on real cells
  (:mod:`scsynth_core.metrics.representation`); a random forest of 1,000 Gini trees with ``max_features="sqrt"``
  grown until the leaves are pure; 5-fold cross-validation; one ROC curve per fold, AUC mean and sd over folds.
  An AUC of 0.5 (error 0.5) means the forest cannot tell the sets apart.
* Per cluster (Marouf 2020 Fig. 2: cscGAN's clusters 2 and 6, AUC 0.62 and 0.55; Heydari 2022 Fig. 5: per cell
  type, ACTIVA vs cscGAN): :func:`rf_per_cluster` runs the same forest, and the MMD, on each cluster's generated
  cells against that cluster's real cells, skipping clusters with fewer than :data:`PER_CLUSTER_MIN_CELLS` cells.
* Controls (Marouf 2020, "real vs real" 0.52): :func:`positive_control` classifies two sets of real cells (e.g. the
  train and test splits) and should give about 0.5; :func:`shuffled_genes_control` builds a negative control whose
  genes keep their marginal distributions but lose all gene-gene correlation, which the forest should detect.
* MMD (Marouf 2020, Methods "Evaluation"; Heydari 2022 Table 2): kernel
  ``k(a, b) = sum_{s in {m/2, m, 2m}} exp(-||a - b||^2 / s^2)`` with ``m`` the median, over all points, of the mean
  Euclidean distance to their 25 nearest neighbours; computed on the 50-PC representation.
* Inception score (Yu & Welch 2021, Methods "Evaluation metrics"; Fig. 2): when the real cells carry cell-type
  labels, a random forest trained on the real cells' PCs with those labels scores the generated cells
  (:func:`scsynth_core.metrics.disentanglement.rf_inception_score`); the real cells' own score is the reference.

Choices where the papers are silent are stated in each function's docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    import anndata as ad

    from scsynth_core.metrics.representation import SharedRepresentation

#: Number of nearest neighbours in Marouf's MMD bandwidth.
MMD_K = 25

#: Largest number of kernel entries held at once in :func:`mmd` (float64: 8 bytes each, ~4 live arrays).
_MMD_TILE_ENTRIES = 2048 * 2048


# --------------------------------------------------------------------------------------------- random forest
@dataclass
class RFResult:
    """Outcome of a cross-validated real-vs-generated random forest.

    Attributes
    ----------
    fpr, tpr
        One ROC curve per fold (generated = positive class), as returned by :func:`sklearn.metrics.roc_curve`.
    fold_aucs
        ROC AUC of each fold.
    fold_errors
        Misclassification rate of each fold (class predicted by majority vote of the trees).
    auc_mean, auc_sd
        Mean and sample standard deviation (``ddof=1``) of ``fold_aucs``.
    error
        Mean of ``fold_errors`` (the MichiGAN "RF error"; 0.5 is ideal).
    n_per_class
        Cells of each class entering the cross-validation (the larger input set is subsampled to this).
    """

    fpr: list[np.ndarray]
    tpr: list[np.ndarray]
    fold_aucs: np.ndarray
    fold_errors: np.ndarray
    auc_mean: float
    auc_sd: float
    error: float
    n_per_class: int
    params: dict[str, Any] = field(default_factory=dict)

    def roc_frame(self):
        """The per-fold ROC curves as a tidy DataFrame (``fold``, ``fpr``, ``tpr``) for tables and figures."""
        import pandas as pd

        return pd.concat(
            [pd.DataFrame({"fold": i, "fpr": f, "tpr": t}) for i, (f, t) in enumerate(zip(self.fpr, self.tpr))],
            ignore_index=True,
        )

    def as_dict(self) -> dict[str, float]:
        """The flat numbers (``rf_auc_mean``, ``rf_auc_sd``, ``rf_error``, ``rf_n_per_class``)."""
        return {
            "rf_auc_mean": self.auc_mean,
            "rf_auc_sd": self.auc_sd,
            "rf_error": self.error,
            "rf_n_per_class": self.n_per_class,
        }


def as_2d_float(x, name: str) -> np.ndarray:
    """``x`` as a finite 2-D floating array (cells x features), else a DataError naming ``name``."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{name} must be a 2-D array of cells x features, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{name} contains NaN or infinite values")
    return x


def _equal_sizes(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Subsample the larger of two sets (without replacement) to the size of the smaller one."""
    n = min(len(a), len(b))
    if len(a) > n:
        a = a[np.sort(rng.choice(len(a), n, replace=False))]
    if len(b) > n:
        b = b[np.sort(rng.choice(len(b), n, replace=False))]
    return a, b


def rf_real_vs_generated(
    real_pcs,
    gen_pcs,
    *,
    n_trees: int = 1000,
    n_folds: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
) -> RFResult:
    """Cross-validated random forest separating real from generated cells (Marouf 2020, Methods "Evaluation").

    Parameters
    ----------
    real_pcs, gen_pcs
        Cells x components in the shared representation (real cells: the held-out test set).
    n_trees
        Trees per forest (paper: 1,000).
    n_folds
        Folds of :class:`~sklearn.model_selection.StratifiedKFold` (shuffled with ``seed``; paper: 5).
    seed
        Seeds the subsampling to equal class sizes, the folds and the forests.
    n_jobs
        Passed to :class:`~sklearn.ensemble.RandomForestClassifier`.

    Returns
    -------
    RFResult
        Per-fold ROC curves and AUCs, their mean and sd, and the mean misclassification error.

    Notes
    -----
    The forest follows the paper: Gini impurity, ``max_features="sqrt"``, nodes expanded until pure
    (``max_depth=None``, ``min_samples_leaf=1``), bootstrap samples (scikit-learn's default, as in the R/Python
    random forests the papers used). Generated cells are the positive class of the ROC curve; the AUC does not
    depend on that choice. ``auc_sd`` is the sample sd over folds (the papers' "+-" does not say which).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import StratifiedKFold

    real_pcs = as_2d_float(real_pcs, "real cells")
    gen_pcs = as_2d_float(gen_pcs, "generated cells")
    if real_pcs.shape[1] != gen_pcs.shape[1]:
        raise DataError(
            f"real and generated cells have different numbers of features ({real_pcs.shape[1]} vs "
            f"{gen_pcs.shape[1]}); project both with the same representation"
        )
    rng = np.random.default_rng(seed)
    real_pcs, gen_pcs = _equal_sizes(real_pcs, gen_pcs, rng)
    n = len(real_pcs)
    if n < n_folds:
        raise DataError(f"need at least {n_folds} cells per class for {n_folds}-fold cross-validation, got {n}")
    X = np.vstack([real_pcs, gen_pcs]).astype(np.float32)
    y = np.r_[np.zeros(n, dtype=np.int8), np.ones(n, dtype=np.int8)]

    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fprs, tprs, aucs, errors = [], [], [], []
    for fold, (train, test) in enumerate(folds.split(X, y)):
        forest = RandomForestClassifier(
            n_estimators=n_trees,
            criterion="gini",
            max_features="sqrt",
            max_depth=None,
            min_samples_leaf=1,
            random_state=seed + fold,
            n_jobs=n_jobs,
        )
        forest.fit(X[train], y[train])
        proba = forest.predict_proba(X[test])[:, 1]
        fpr, tpr, _ = roc_curve(y[test], proba)
        fprs.append(fpr)
        tprs.append(tpr)
        aucs.append(roc_auc_score(y[test], proba))
        # Majority vote as forest.predict (ties go to the first class, "real").
        errors.append(float(np.mean((proba > 0.5).astype(np.int8) != y[test])))
    aucs_arr, errors_arr = np.asarray(aucs), np.asarray(errors)
    return RFResult(
        fpr=fprs,
        tpr=tprs,
        fold_aucs=aucs_arr,
        fold_errors=errors_arr,
        auc_mean=float(aucs_arr.mean()),
        auc_sd=float(aucs_arr.std(ddof=1)) if len(aucs_arr) > 1 else float("nan"),
        error=float(errors_arr.mean()),
        n_per_class=int(n),
        params={"n_trees": n_trees, "n_folds": n_folds, "seed": seed},
    )


def positive_control(
    real_a_pcs, real_b_pcs, *, n_trees: int = 1000, n_folds: int = 5, seed: int = 0, n_jobs: int = 1
) -> RFResult:
    """Real-vs-real random forest (Marouf 2020 "positive control", AUC 0.52 on PBMC): should be close to 0.5.

    ``real_b_pcs`` (e.g. the training cells) takes the place of the generated cells in
    :func:`rf_real_vs_generated`; both sets must be projected by one representation fitted on real cells.
    """
    return rf_real_vs_generated(real_a_pcs, real_b_pcs, n_trees=n_trees, n_folds=n_folds, seed=seed, n_jobs=n_jobs)


def shuffled_genes_control(real_counts: ad.AnnData, seed: int = 0) -> ad.AnnData:
    """Negative control: every gene independently permuted across cells (marginals kept, correlations destroyed).

    A model that learned each gene's distribution but no gene-gene or cell-level structure produces cells like
    these; the real-vs-generated forest should separate them from real cells (AUC well above 0.5).

    Parameters
    ----------
    real_counts
        Cells to shuffle (sparse or dense ``X``). ``var`` and the cell names are copied; the other ``obs``
        columns no longer describe the shuffled rows and are dropped.
    seed
        Seed of the permutations.

    Returns
    -------
    anndata.AnnData
        Same shape, genes and cell names; ``X`` is CSR when the input is sparse, else a dense array.
        ``uns["scsynth"]`` records ``{"model": "shuffled_genes", "seed": seed}``.
    """
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = real_counts.X
    n_cells, n_genes = X.shape
    chunk = max(1, min(n_genes, (1 << 22) // max(n_cells, 1)))
    base = np.arange(n_cells, dtype=np.int64)

    if sp.issparse(X):
        Xc = sp.csc_matrix(X)
        Xc.sort_indices()
        new_rows = np.empty_like(Xc.indices, dtype=np.int64)
        for start in range(0, n_genes, chunk):
            stop = min(start + chunk, n_genes)
            # perms[:, j] is an independent uniform permutation of the cells for gene start + j; the value of
            # cell i moves to row perms[i, j] (the same mapping as the dense branch below).
            perms = rng.permuted(np.broadcast_to(base[:, None], (n_cells, stop - start)), axis=0)
            lo, hi = Xc.indptr[start], Xc.indptr[stop]
            cols = np.repeat(np.arange(stop - start), np.diff(Xc.indptr[start : stop + 1]))
            new_rows[lo:hi] = perms[Xc.indices[lo:hi], cols]
        out = sp.csc_matrix((Xc.data.copy(), new_rows, Xc.indptr.copy()), shape=X.shape)
        out.sort_indices()
        X_new = out.tocsr()
    else:
        X = np.asarray(X)
        X_new = np.empty_like(X)
        for start in range(0, n_genes, chunk):
            stop = min(start + chunk, n_genes)
            perms = rng.permuted(np.broadcast_to(base[:, None], (n_cells, stop - start)), axis=0)
            block = np.empty_like(X[:, start:stop])
            np.put_along_axis(block, perms, X[:, start:stop], axis=0)  # cell i moves to row perms[i]
            X_new[:, start:stop] = block

    out_ad = ad.AnnData(
        X_new,
        obs=pd.DataFrame(index=real_counts.obs_names.copy()),
        var=real_counts.var.copy(),
    )
    out_ad.uns["scsynth"] = {"model": "shuffled_genes", "seed": int(seed)}
    return out_ad


# ------------------------------------------------------------------------------------------------------ MMD
def mmd_bandwidth(x, y, k: int = MMD_K) -> float:
    """Marouf's MMD scale ``m``: median over all pooled points of the mean distance to their ``k`` neighbours.

    Each point's own zero distance is excluded (the ``k`` neighbours are the ``k`` closest *other* points,
    Euclidean; duplicates of a point count as neighbours at distance 0). ``k`` is capped at the number of pooled
    points minus one. Pooling real and generated cells is our reading of "the median of the average distance
    between a cell and its 25 nearest neighbours" (Marouf 2020, Methods "Evaluation").
    """
    from sklearn.neighbors import NearestNeighbors

    z = np.vstack([as_2d_float(x, "x"), as_2d_float(y, "y")]).astype(np.float64)
    k = min(int(k), len(z) - 1)
    if k < 1:
        raise DataError("MMD needs at least two points in total")
    dist, _ = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(z).kneighbors(z)
    # Column 0 is the point itself (distance 0, or an exact duplicate, which is the same value).
    return float(np.median(dist[:, 1:].mean(axis=1)))


def _kernel_sum(a: np.ndarray, b: np.ndarray, scale: float, *, same: bool) -> float:
    """Sum of Marouf's three-Gaussian kernel over all pairs (a_i, b_j), excluding i == j when ``same``.

    With ``e = exp(-d^2 / (2m)^2)`` the three terms are ``e`` (s = 2m), ``e^4`` (s = m) and ``e^16`` (s = m/2),
    so one exponential per pair suffices. Tiles of at most ``_MMD_TILE_ENTRIES`` pairs bound the memory; for
    ``same`` only tiles on or above the diagonal are computed (the kernel is symmetric).
    """
    na, nb = len(a), len(b)
    tile = max(1, int(np.sqrt(_MMD_TILE_ENTRIES)))
    sq_a = np.einsum("ij,ij->i", a, a)
    sq_b = sq_a if same else np.einsum("ij,ij->i", b, b)
    inv = -1.0 / (4.0 * scale * scale)
    total = 0.0
    for i0 in range(0, na, tile):
        i1 = min(i0 + tile, na)
        for j0 in range(i0 if same else 0, nb, tile):
            j1 = min(j0 + tile, nb)
            d2 = a[i0:i1] @ b[j0:j1].T
            d2 *= -2.0
            d2 += sq_a[i0:i1, None]
            d2 += sq_b[None, j0:j1]
            np.maximum(d2, 0.0, out=d2)
            if same and i0 == j0:
                np.fill_diagonal(d2, 0.0)
            d2 *= inv
            e = np.exp(d2, out=d2)
            e4 = e * e
            e4 *= e4
            e16 = e4 * e4
            e16 *= e16
            block = e.sum() + e4.sum() + e16.sum()
            if same and i0 == j0:
                block -= 3.0 * (i1 - i0)  # the diagonal: k(a_i, a_i) = 3 exactly
                total += block
            else:
                total += 2.0 * block if same else block
    return float(total)


def mmd(x, y, *, k: int = MMD_K, bandwidth: float | None = None, biased: bool = False) -> float:
    """Unbiased estimate of the squared maximum mean discrepancy with Marouf's kernel (Marouf 2020, Methods).

    ``MMD^2 = 1/(n(n-1)) sum_{i!=j} k(x_i,x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i,y_j) - 2/(nm) sum_{i,j} k(x_i,y_j)``
    with ``k(a, b) = sum_{s in {m/2, m, 2m}} exp(-||a-b||^2 / s^2)`` and ``m`` from :func:`mmd_bandwidth`.
    ``biased=True`` gives the biased (V-statistic) estimate instead, whose within-set means include ``i == j``
    (``k = 3``): never negative, 0 only for identical sets, and above the unbiased value by about
    ``3 (1/n + 1/m)`` minus the within-set means over ``n`` and ``m``. The papers do not say which estimate they
    report; both are offered to compare scales (docs/experiments.md, *MMD scale*).

    Parameters
    ----------
    x, y
        Two sets of points (cells x components), float32 or float64; computed in float64.
    k
        Neighbours of the bandwidth (paper: 25).
    bandwidth
        Use this ``m`` instead of computing it (e.g. to compare several generated sets on one scale).
    biased
        The V-statistic instead of the unbiased estimate.

    Returns
    -------
    float
        The MMD^2 estimate (no square root: the unbiased one can be slightly negative when the sets are alike).
        Memory is bounded by tiles of about 4M pairs (~130 MB), whatever the set sizes.
    """
    x = as_2d_float(x, "x").astype(np.float64, copy=False)
    y = as_2d_float(y, "y").astype(np.float64, copy=False)
    if x.shape[1] != y.shape[1]:
        raise DataError(f"MMD sets have different numbers of features ({x.shape[1]} vs {y.shape[1]})")
    if len(x) < 2 or len(y) < 2:
        raise DataError("the unbiased MMD needs at least two points in each set")
    m = mmd_bandwidth(x, y, k) if bandwidth is None else float(bandwidth)
    if not m > 0:
        raise DataError(f"MMD bandwidth must be positive, got {m} (are all points identical?)")
    nx, ny = len(x), len(y)
    if biased:  # the n diagonal terms k(x_i, x_i) = 3 join the within-set sums, divided by n^2
        kxx = (_kernel_sum(x, x, m, same=True) + 3.0 * nx) / (nx * nx)
        kyy = (_kernel_sum(y, y, m, same=True) + 3.0 * ny) / (ny * ny)
    else:
        kxx = _kernel_sum(x, x, m, same=True) / (nx * (nx - 1))
        kyy = _kernel_sum(y, y, m, same=True) / (ny * (ny - 1))
    kxy = _kernel_sum(x, y, m, same=False) / (nx * ny)
    return float(kxx + kyy - 2.0 * kxy)


# ------------------------------------------------------------------------------------------- convenience
def realism_metrics(
    real_test: ad.AnnData,
    generated: ad.AnnData,
    *,
    representation: SharedRepresentation,
    n_trees: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    return_rf: bool = False,
    label_key: str | None = None,
) -> dict[str, Any] | tuple[dict[str, Any], RFResult]:
    """RF AUC/error and MMD of generated vs real test cells in the shared representation (Marouf 2020).

    Parameters
    ----------
    real_test, generated
        Real held-out cells and generated cells with the same genes (counts or LSN values).
    representation
        The PCA fitted once on real cells by the caller (:func:`~scsynth_core.metrics.representation.
        fit_representation`), so every model is measured in the same space.
    n_trees, seed, n_jobs
        As in :func:`rf_real_vs_generated`.
    return_rf
        Also return the :class:`RFResult` (per-fold ROC curves for figures).
    label_key
        Cell-type column of ``real_test.obs``; when given (and present with at least 2 types) the inception score
        of the generated cells under a forest trained on all real test cells is added (``inception_score``,
        ``inception_score_sd``: mean and sd over 3 splits).

    Returns
    -------
    dict
        ``rf_auc_mean``, ``rf_auc_sd``, ``rf_error``, ``mmd``, ``n_real``, ``n_generated`` (input sizes). Both the
        forest and the MMD use the same equal-size subsample (the larger set drawn down with ``seed``).
    """
    real_pcs = representation.transform(real_test)
    gen_pcs = representation.transform(generated)
    real_eq, gen_eq = _equal_sizes(real_pcs, gen_pcs, np.random.default_rng(seed))
    # Equal sizes already: rf_real_vs_generated subsamples nothing more, and the MMD sees the same cells.
    rf = rf_real_vs_generated(real_eq, gen_eq, n_trees=n_trees, seed=seed, n_jobs=n_jobs)
    metrics = {
        "rf_auc_mean": rf.auc_mean,
        "rf_auc_sd": rf.auc_sd,
        "rf_error": rf.error,
        "mmd": mmd(real_eq, gen_eq),
        "n_real": int(real_test.n_obs),
        "n_generated": int(generated.n_obs),
    }
    if label_key is not None and label_key in real_test.obs and real_test.obs[label_key].nunique() >= 2:
        from scsynth_core.metrics.disentanglement import rf_inception_score

        labels = real_test.obs[label_key].astype(str).to_numpy()
        score, sd = rf_inception_score(real_pcs, labels, gen_pcs, n_trees=n_trees, seed=seed, n_jobs=n_jobs)
        metrics |= {"inception_score": score, "inception_score_sd": sd}
    return (metrics, rf) if return_rf else metrics


# ---------------------------------------------------------------------------------------------- per cluster
#: Fewest cells of a cluster, in each compared set, for it to get its own forest. The papers name no minimum
#: (Marouf 2020 Fig. 2 scores PBMC clusters 2 and 6, thousands of cells each; Heydari 2022 Fig. 5 the PBMC types);
#: 20 as the project's other per-type scores (:data:`scsynth_core.metrics.de_recovery.MIN_CELLS`): 4 real and 4
#: generated cells per test fold of the 5-fold cross-validation.
PER_CLUSTER_MIN_CELLS = 20

#: Columns of :attr:`PerClusterResult.table`.
PER_CLUSTER_COLUMNS = ["cluster", "n_real", "n_generated", "n_per_class", "rf_auc_mean", "rf_auc_sd", "rf_error",
                       "mmd", "skipped"]  # fmt: skip


@dataclass
class PerClusterResult:
    """Outcome of :func:`rf_per_cluster`.

    Attributes
    ----------
    table
        One row per cluster found in either set (:data:`PER_CLUSTER_COLUMNS`): its cell counts, and for scored
        clusters the forest's AUC mean/sd, error and the MMD; ``skipped`` is ``""`` for scored clusters, else
        why the cluster was not scored (its metrics are then NaN).
    rf
        ``{cluster: RFResult}`` of the scored clusters (per-fold ROC curves for figures).
    min_cells
        The minimum applied.
    """

    table: Any
    rf: dict[str, RFResult]
    min_cells: int

    def roc_frame(self):
        """The scored clusters' per-fold ROC curves as one tidy DataFrame (``cluster``, ``fold``, ``fpr``, ``tpr``)."""
        import pandas as pd

        frames = [rf.roc_frame().assign(cluster=cluster) for cluster, rf in self.rf.items()]
        if not frames:
            return pd.DataFrame({"cluster": [], "fold": [], "fpr": [], "tpr": []})
        return pd.concat(frames, ignore_index=True)[["cluster", "fold", "fpr", "tpr"]]

    @property
    def skipped(self) -> dict[str, str]:
        """``{cluster: reason}`` of the clusters that were not scored."""
        rows = self.table[self.table["skipped"] != ""]
        return dict(zip(rows["cluster"], rows["skipped"]))


def rf_per_cluster(
    real_pcs,
    real_labels,
    gen_pcs,
    gen_labels,
    *,
    min_cells: int = PER_CLUSTER_MIN_CELLS,
    n_trees: int = 1000,
    n_folds: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
) -> PerClusterResult:
    """Real-vs-generated forest and MMD of each cluster on its own (Marouf 2020 Fig. 2; Heydari 2022 Fig. 5).

    For every cluster with at least ``min_cells`` cells in both sets, that cluster's generated cells are compared
    with the same cluster's real cells exactly as whole sets are (:func:`rf_real_vs_generated`: equal numbers
    of cells, same forest, folds and seed; :func:`mmd` on those cells), in the representation the caller
    projected both with (the workflow: the shared PCA of the whole-set test, not one fitted per cluster; the
    papers do not say which they used).

    Parameters
    ----------
    real_pcs, gen_pcs
        Cells x components in one shared representation.
    real_labels, gen_labels
        One cluster label per cell of each set (compared as text), e.g. the test cells' clusters and the labels
        a conditional model generated (ACTIVA: its classifier's labels).
    min_cells
        Fewest cells of a cluster in each set to score it (at least ``n_folds``); see
        :data:`PER_CLUSTER_MIN_CELLS`.
    n_trees, n_folds, seed, n_jobs
        As in :func:`rf_real_vs_generated`, the same for every cluster.

    Returns
    -------
    PerClusterResult
        Clusters in the order of their number of real cells (largest first, ties by name).
    """
    import pandas as pd

    from scsynth_core.errors import ConfigError

    if int(min_cells) < n_folds:
        raise ConfigError(f"per-cluster realism: min_cells {min_cells} is below the {n_folds} cells per class that "
                          f"{n_folds}-fold cross-validation needs")  # fmt: skip
    real_pcs = as_2d_float(real_pcs, "real cells")
    gen_pcs = as_2d_float(gen_pcs, "generated cells")
    real_labels = np.asarray(real_labels).astype(str)
    gen_labels = np.asarray(gen_labels).astype(str)
    for name, pcs, labels in (("real", real_pcs, real_labels), ("generated", gen_pcs, gen_labels)):
        if len(labels) != len(pcs):
            raise DataError(f"{len(labels)} cluster labels for {len(pcs)} {name} cells")
    real_counts = pd.Series(real_labels).value_counts()
    gen_counts = pd.Series(gen_labels).value_counts()
    clusters = sorted(set(real_counts.index) | set(gen_counts.index),
                      key=lambda c: (-real_counts.get(c, 0), -gen_counts.get(c, 0), c))  # fmt: skip
    rows, results = [], {}
    for cluster in clusters:
        n_real, n_gen = int(real_counts.get(cluster, 0)), int(gen_counts.get(cluster, 0))
        row = {"cluster": cluster, "n_real": n_real, "n_generated": n_gen, "n_per_class": min(n_real, n_gen),
               "rf_auc_mean": np.nan, "rf_auc_sd": np.nan, "rf_error": np.nan, "mmd": np.nan, "skipped": ""}  # fmt: skip
        if min(n_real, n_gen) < min_cells:
            short = [f"{n} {name} cells" for n, name in ((n_real, "real"), (n_gen, "generated")) if n < min_cells]
            row["skipped"] = f"fewer than {min_cells} cells ({', '.join(short)})"
        else:
            real_eq, gen_eq = _equal_sizes(real_pcs[real_labels == cluster], gen_pcs[gen_labels == cluster],
                                           np.random.default_rng(seed))  # fmt: skip
            rf = rf_real_vs_generated(real_eq, gen_eq, n_trees=n_trees, n_folds=n_folds, seed=seed, n_jobs=n_jobs)
            results[cluster] = rf
            row |= {"rf_auc_mean": rf.auc_mean, "rf_auc_sd": rf.auc_sd, "rf_error": rf.error,
                    "mmd": mmd(real_eq, gen_eq)}  # fmt: skip
        rows.append(row)
    table = pd.DataFrame(rows, columns=PER_CLUSTER_COLUMNS)
    return PerClusterResult(table=table, rf=results, min_cells=int(min_cells))
