"""Cluster structure of synthetic cells by nearest-neighbour label transfer (Treppner et al. 2021, Methods, Table 1).

Protocol (Treppner 2021, Methods "Evaluation"): the original data are clustered (ground truth); every synthetic cell
takes the label of its nearest original cell (Euclidean distance in a shared embedding); then

* the Davies-Bouldin index (DBI) of the synthetic cells under the transferred labels is compared with the DBI of the
  original cells under their own labels (:func:`davies_bouldin`);
* the number of cells per cluster is compared (:func:`cluster_count_difference`, Table 1);
* the agreement of the transferred labels with a fresh clustering of the synthetic cells is measured by the
  adjusted Rand index (:func:`adjusted_rand`). The paper's text says "ARI between clusterings"; its notebook
  pairs original and synthetic cells by row index and computes the unadjusted Rand index, which has no meaning
  for unpaired sets, so we use the reading above.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import DataError


def _as_embedding(emb, name: str):
    if sp.issparse(emb):
        return sp.csr_matrix(emb, dtype=np.float64)
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2:
        raise DataError(f"{name} must be a 2-D array of cells x dimensions, got shape {emb.shape}")
    return emb


def transfer_labels(original_emb, original_labels, synthetic_emb) -> np.ndarray:
    """Label of the nearest original cell (Euclidean) for every synthetic cell (Treppner 2021, Methods).

    Ties are resolved as :class:`sklearn.neighbors.NearestNeighbors` resolves them (lowest index among equally
    distant original cells for the brute-force search used here).
    """
    from sklearn.neighbors import NearestNeighbors

    original_emb = _as_embedding(original_emb, "original embedding")
    synthetic_emb = _as_embedding(synthetic_emb, "synthetic embedding")
    labels = np.asarray(original_labels)
    if labels.shape[0] != original_emb.shape[0]:
        raise DataError(f"{labels.shape[0]} labels for {original_emb.shape[0]} original cells")
    if original_emb.shape[1] != synthetic_emb.shape[1]:
        raise DataError("original and synthetic embeddings have different numbers of dimensions")
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute", metric="euclidean").fit(original_emb)
    idx = nn.kneighbors(synthetic_emb, return_distance=False)[:, 0]
    return labels[idx]


def davies_bouldin(emb, labels, *, q: Literal[1, 2] = 2) -> float:
    """Davies-Bouldin index of cells ``emb`` under ``labels`` (lower = more compact, better separated clusters).

    ``DB = 1/K sum_k max_{j != k} (S_k + S_j) / M_kj`` with ``M_kj`` the Euclidean distance between centroids
    (p = 2) and ``S_k`` the cluster scatter.

    Parameters
    ----------
    emb
        Cells x dimensions (dense or sparse; sparse is never densified for ``q=2``).
    labels
        Cluster label per cell.
    q
        ``2`` (default): ``S_k`` = root mean squared distance to the centroid, the "p = q = 2" DBI of Treppner
        2021 (Methods) and of their notebook. ``1``: ``S_k`` = mean distance to the centroid, as in
        :func:`sklearn.metrics.davies_bouldin_score` (computed by it).

    Returns
    -------
    float
        NaN when there are fewer than two clusters or as many clusters as cells (the index is undefined).
    """
    labels = np.asarray(labels)
    emb = _as_embedding(emb, "embedding")
    if labels.shape[0] != emb.shape[0]:
        raise DataError(f"{labels.shape[0]} labels for {emb.shape[0]} cells")
    codes, inverse = np.unique(labels, return_inverse=True)
    n_clusters = len(codes)
    if n_clusters < 2 or n_clusters >= emb.shape[0]:
        return float("nan")
    if q == 1:
        from sklearn.metrics import davies_bouldin_score

        dense = emb.toarray() if sp.issparse(emb) else emb
        return float(davies_bouldin_score(dense, inverse))
    if q != 2:
        raise DataError(f"Davies-Bouldin scatter exponent q must be 1 or 2, got {q}")

    from sklearn.metrics import pairwise_distances

    n = emb.shape[0]
    member = sp.csr_matrix((np.ones(n), (inverse, np.arange(n))), shape=(n_clusters, n))
    counts = np.asarray(member.sum(axis=1)).ravel()
    sums = member @ emb  # clusters x dimensions (small: densified when emb is sparse)
    centroids = (sums.toarray() if sp.issparse(sums) else np.asarray(sums)) / counts[:, None]
    sq_norm = np.asarray(emb.multiply(emb).sum(axis=1)).ravel() if sp.issparse(emb) else np.einsum("ij,ij->i", emb, emb)
    # mean ||x - c||^2 = mean ||x||^2 - ||c||^2 within a cluster
    mean_sq = member @ sq_norm / counts - np.einsum("ij,ij->i", centroids, centroids)
    scatter = np.sqrt(np.maximum(mean_sq, 0.0))
    dist = pairwise_distances(centroids, metric="euclidean")
    # Coinciding centroids of two clusters make the index infinite (scikit-learn instead ignores such pairs).
    ratio = np.full_like(dist, np.inf)
    np.divide(scatter[:, None] + scatter[None, :], dist, out=ratio, where=dist > 0)
    np.fill_diagonal(ratio, -np.inf)
    return float(ratio.max(axis=1).mean())


def cluster_count_difference(original_labels, synthetic_labels, *, reduce: Literal["sum", "mean"] = "sum") -> float:
    """Absolute difference of the number of cells per cluster between original and synthetic cells.

    ``reduce="sum"`` (default): ``sum_c |n_orig(c) - n_synth(c)|``, the quantity in Treppner 2021 Table 1
    ("mean absolute difference of cells per cluster", averaged over repetitions by the caller): the table's values
    (e.g. PBMC4k scVI prior 6,567 for 4,182 cells in 10 clusters) exceed what a per-cluster mean can reach
    (at most ``2 n / K``), and the authors' notebook sums over clusters and divides by the number of repetitions.
    ``reduce="mean"``: the same divided by the number of clusters. Clusters present in only one set count 0 cells
    in the other. Both sets should have the same size (the protocol generates the original number of cells).
    """
    orig = pd.Series(np.asarray(original_labels)).value_counts()
    synth = pd.Series(np.asarray(synthetic_labels)).value_counts()
    orig, synth = orig.align(synth, fill_value=0)
    diff = (orig - synth).abs()
    if len(diff) == 0:
        return float("nan")
    if reduce == "sum":
        return float(diff.sum())
    if reduce == "mean":
        return float(diff.mean())
    raise DataError(f"unknown reduce {reduce!r} (use 'sum' or 'mean')")


def adjusted_rand(labels_a, labels_b) -> float:
    """Adjusted Rand index of two labelings of the same cells (:func:`sklearn.metrics.adjusted_rand_score`).

    Treppner 2021, Methods ("ARI between clusterings"); in :func:`label_transfer_metrics` the transferred labels
    of the synthetic cells against a fresh clustering of those cells (see the module docstring)."""
    from sklearn.metrics import adjusted_rand_score

    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape:
        raise DataError(f"ARI needs two labelings of the same cells, got {a.shape[0]} and {b.shape[0]} labels")
    return float(adjusted_rand_score(a, b))


def label_transfer_metrics(original_emb, original_labels, synthetic_emb, synthetic_clusters=None) -> dict:
    """The Treppner 2021 evaluation of one synthetic set in one shared embedding.

    Returns
    -------
    dict
        ``dbi_original`` (original cells, their labels), ``dbi_synthetic`` (synthetic cells, transferred labels),
        ``ari`` (transferred labels vs ``synthetic_clusters``; only when those are given), ``count_difference``
        (Table 1, summed over clusters) and ``count_difference_per_cluster`` (the same divided by the number of
        clusters). DBI uses the paper's ``p = q = 2`` definition in the embedding passed.
    """
    transferred = transfer_labels(original_emb, original_labels, synthetic_emb)
    out = {
        "dbi_original": davies_bouldin(original_emb, original_labels),
        "dbi_synthetic": davies_bouldin(synthetic_emb, transferred),
    }
    if synthetic_clusters is not None:
        out["ari"] = adjusted_rand(transferred, synthetic_clusters)
    out["count_difference"] = cluster_count_difference(original_labels, transferred, reduce="sum")
    out["count_difference_per_cluster"] = cluster_count_difference(original_labels, transferred, reduce="mean")
    return out
