"""kNN fidelity and diversity of generated cells: precision, recall, density, coverage; 1-NN two-sample accuracy.

* Precision and recall (Kynkäänniemi et al. 2019, NeurIPS) with density and coverage (Naeem et al. 2020, ICML,
  "Reliable fidelity and diversity metrics for generative models", Sect. 3): every cell gets a ball reaching its
  ``k``-th nearest neighbour in its own set. Precision = fraction of generated cells inside some real ball;
  recall = fraction of real cells inside some generated ball; density = mean number of real balls containing a
  generated cell, divided by ``k`` (about 1 when the sets match); coverage = fraction of real cells whose ball
  contains at least one generated cell. Naeem recommend ``k = 5``. Balls are closed (``<=``; the authors'
  code uses ``<``), so duplicated cells with a radius of 0 still count, and identical sets give
  precision = recall = coverage = 1. Euclidean distance, as Naeem (CFGen's code used L1).
* 1-NN two-sample accuracy (Lopez-Paz & Oquab 2017, ICLR, "Revisiting classifier two-sample tests"; as a
  generative-model metric Xu et al. 2018): pool equal numbers of real and generated cells, classify every cell
  by its nearest *other* cell (leave-one-out), report the accuracy. 0.5 = indistinguishable; 1 = separated;
  well below 0.5 = generated cells are near-copies of the real ones (each cell's nearest neighbour is its twin).

Per cell type: :func:`knn_fidelity_per_cell` returns the per-cell indicators so that the caller averages them
within a type (real side: recall, coverage; generated side: precision, density), all balls being those of the
whole sets. A generator that never produces a type gets recall 0 and coverage 0 on that type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scsynth_core.errors import DataError
from scsynth_core.metrics.distribution import MAX_CELLS, checked_pair, subsampled_pair

#: Naeem et al.'s recommended number of neighbours.
K_DEFAULT = 5


@dataclass
class KnnFidelity:
    """Per-cell outcome of :func:`knn_fidelity_per_cell`; the metrics are the means of these arrays."""

    real_recalled: np.ndarray  # (n_real,) bool: inside some generated ball (recall)
    real_covered: np.ndarray  # (n_real,) bool: own ball contains a generated cell (coverage)
    generated_precise: np.ndarray  # (n_generated,) bool: inside some real ball (precision)
    generated_density: np.ndarray  # (n_generated,) float: real balls containing the cell / k (density)

    def summary(self, real_rows=slice(None), generated_rows=slice(None)) -> dict[str, float]:
        """``precision``, ``recall``, ``density``, ``coverage`` averaged over the given rows (NaN where empty)."""

        def mean(a: np.ndarray) -> float:
            return float(a.mean()) if a.size else float("nan")

        return {
            "precision": mean(self.generated_precise[generated_rows]),
            "recall": mean(self.real_recalled[real_rows]),
            "density": mean(self.generated_density[generated_rows]),
            "coverage": mean(self.real_covered[real_rows]),
        }


def _kth_radius(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of every point to its ``k``-th nearest other point (the point itself is the 0 among k + 1)."""
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return dist[:, k]


def knn_fidelity_per_cell(real, generated, *, k: int = K_DEFAULT) -> KnnFidelity:
    """Naeem et al.'s per-cell indicators for all cells given (no subsampling; see the module docstring).

    Distances are computed in row blocks (:func:`sklearn.metrics.pairwise_distances_chunked`), so memory stays
    bounded; time is O(n_real * n_generated).
    """
    from sklearn.metrics import pairwise_distances_chunked

    real, generated = checked_pair(real, generated, what="kNN fidelity")
    if not 1 <= k < min(len(real), len(generated)):
        raise DataError(
            f"kNN fidelity needs 1 <= k < cells in each set: k = {k}, {len(real)} real and "
            f"{len(generated)} generated cells"
        )
    r_real, r_gen = _kth_radius(real, k), _kth_radius(generated, k)

    def reduce(block: np.ndarray, start: int):
        # block: distances of real rows [start, start + len(block)) to every generated cell
        return block <= r_gen[None, :], block <= r_real[start : start + len(block), None]

    recalled, covered = [], []
    inside = np.zeros(len(generated), dtype=np.int64)  # real balls containing each generated cell
    for in_gen_ball, in_real_ball in pairwise_distances_chunked(real, generated, reduce_func=reduce):
        recalled.append(in_gen_ball.any(axis=1))
        covered.append(in_real_ball.any(axis=1))
        inside += in_real_ball.sum(axis=0)
    return KnnFidelity(
        real_recalled=np.concatenate(recalled),
        real_covered=np.concatenate(covered),
        generated_precise=inside > 0,
        generated_density=inside / k,
    )


def knn_fidelity(
    real, generated, *, k: int = K_DEFAULT, max_cells: int | None = MAX_CELLS, seed: int = 0
) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) of generated vs real points.

    Both sets are first drawn down to one size (at most ``max_cells``, with ``seed``): recall and coverage
    depend on how many generated cells there are, so unequal sets would not be comparable across models.
    """
    real, generated = subsampled_pair(real, generated, max_cells=max_cells, seed=seed, what="kNN fidelity")
    return knn_fidelity_per_cell(real, generated, k=k).summary()


def nn_two_sample_accuracy(real, generated, *, max_cells: int | None = MAX_CELLS, seed: int = 0) -> float:
    """Leave-one-out 1-NN accuracy of telling real from generated cells (Lopez-Paz & Oquab 2017).

    Equal-size subsamples (at most ``max_cells`` each, with ``seed``) are pooled; every cell is predicted to
    belong to the set of its nearest other cell (Euclidean). 0.5 = indistinguishable, below 0.5 = copies.
    """
    from sklearn.neighbors import NearestNeighbors

    real, generated = subsampled_pair(real, generated, max_cells=max_cells, seed=seed, what="1-NN two-sample accuracy")
    if len(real) < 2:
        raise DataError(f"1-NN two-sample accuracy needs at least 2 cells per set, got {len(real)}")
    pooled = np.vstack([real, generated])
    is_generated = np.r_[np.zeros(len(real), bool), np.ones(len(generated), bool)]
    _, idx = NearestNeighbors(n_neighbors=2).fit(pooled).kneighbors(pooled)
    # The cell itself is usually column 0; with an exact duplicate the order of the two zeros is arbitrary.
    nearest = np.where(idx[:, 0] == np.arange(len(pooled)), idx[:, 1], idx[:, 0])
    return float(np.mean(is_generated[nearest] == is_generated))
