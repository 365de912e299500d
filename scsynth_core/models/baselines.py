"""Two non-parametric baselines used by the papers as references.

- :class:`UpsampleModel` (``upsample``): Marouf et al. 2020, Fig. 3 / Methods "Data augmentation": the
  "upsampled" control resamples real training cells with replacement instead of generating new ones.
- :class:`NoiseModel` (``noise``): Treppner et al. 2021, Methods "Performance baseline": Poisson noise added
  to the pilot counts with a per-cell rate drawn from Gamma(shape ~ U(0, 10), scale ~ U(0, 5)); noisy copies
  of the pilot are stacked until the requested size.

Both train on raw counts and generate counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from scsynth_core.models.base import GenerativeModel, csr_from_state, csr_to_state


class _StoredCellsModel(GenerativeModel):
    """A model whose fitted state is the training count matrix itself (and, if any, its labels)."""

    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        self._X = sp.csr_matrix(adata.X, dtype=np.float32)
        self._labels = None if self.label_key is None else adata.obs[self.label_key].astype(str).to_numpy(object)
        # Nothing is optimised: the history records only the stored cell count.
        return {"step": [0], "n_cells": [self._X.shape[0]]}

    def _get_state(self) -> dict[str, Any]:
        return {"X": csr_to_state(self._X), "labels": None if self._labels is None else list(self._labels)}

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        self._X = csr_from_state(state["X"])
        self._labels = None if state["labels"] is None else np.asarray(state["labels"], dtype=object)


class UpsampleModel(_StoredCellsModel):
    """Resample real training cells with replacement (Marouf 2020, "upsampling" control of Fig. 3).

    Conditional when fitted with a ``label_key``: ``sample(n, labels=...)`` draws each requested cell uniformly
    from the training cells of that label; without labels it draws labels with the training frequencies, which
    is the same as drawing cells uniformly. No hyperparameters.
    """

    name = "upsample"  # presets and hyperparameter types: scsynth_core.models.specs.baselines

    def _sample_chunk(self, n, labels, rng):
        if labels is None:
            return self._X[rng.integers(0, self._X.shape[0], size=n)]
        rows = np.empty(n, dtype=np.int64)
        for label in np.unique(labels):
            pool = np.flatnonzero(self._labels == label)
            where = np.flatnonzero(labels == label)
            rows[where] = rng.choice(pool, size=len(where), replace=True)
        return self._X[rows]


class NoiseModel(_StoredCellsModel):
    """Treppner 2021 performance baseline: pilot counts plus per-cell Poisson noise.

    For every generated cell c, copy pilot cell ``c mod n_pilot`` (copies stacked in pilot order), draw
    ``shape ~ U(0, shape_max)``, ``scale ~ U(0, scale_max)``, ``rate ~ Gamma(shape, scale)`` and add
    independent ``Poisson(rate)`` noise to every gene of that cell. Defaults are the paper's (10 and 5).
    The noise touches every gene, so generated cells are dense; chunked generation bounds memory.
    """

    name = "noise"  # presets and hyperparameter types: scsynth_core.models.specs.baselines

    def _start_sampling(self, seed: int) -> None:
        self._next_row = 0

    def _sample_chunk(self, n, labels, rng):
        rows = (self._next_row + np.arange(n)) % self._X.shape[0]
        self._next_row += n
        shape = rng.uniform(0.0, self.params["shape_max"], size=n)
        scale = rng.uniform(0.0, self.params["scale_max"], size=n)
        rate = rng.gamma(shape, scale)
        noise = rng.poisson(rate[:, None], size=(n, self._X.shape[1])).astype(np.float32)
        return self._X[rows].toarray() + noise
