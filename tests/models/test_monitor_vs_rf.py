"""benchmarks/monitor_vs_rf.py: a test-sized set from tasks that make at most their validation cells' count."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from monitor_vs_rf import _generate


class _Task:
    """A training task whose cells each take one of ``n_validation`` validation cells' codes (MichiGAN) or types
    (cscGAN), or nothing (``kind=None``: any number of cells). A cell's values are its call's seed."""

    def __init__(self, n_validation: int, kind: str | None):
        self.monitor_rows, self.code_mu, self.monitor_codes = np.arange(n_validation), None, None
        if kind == "codes":
            self.code_mu = np.zeros((n_validation, 2))
        elif kind == "types":
            self.monitor_codes = np.zeros(n_validation, dtype=np.int64)
        self.limit, self.calls = (None if kind is None else n_validation), []

    def generate(self, n, seed):
        if self.limit is not None and n > self.limit:
            raise RuntimeError("Sizes of tensors must match")  # what torch says
        self.calls.append((n, seed))
        return sp.csr_matrix(np.full((n, 2), seed, dtype=np.float32))


def test_generate_asks_again_with_the_next_seeds_past_the_codes():
    task = _Task(3, "codes")
    cells = _generate(task, 7, seed=5)
    assert cells.shape == (7, 2) and sp.issparse(cells)
    assert task.calls == [(3, 5), (3, 6), (1, 7)]
    assert cells[:, 0].toarray().ravel().tolist() == [5, 5, 5, 6, 6, 6, 7]


def test_generate_asks_again_past_the_validation_types():
    task = _Task(4, "types")
    assert _generate(task, 7, seed=0).shape == (7, 2) and task.calls == [(4, 0), (3, 1)]


def test_generate_is_one_call_for_tasks_without_codes_or_types():
    task = _Task(3, None)
    assert _generate(task, 7, seed=5).shape == (7, 2) and task.calls == [(7, 5)]
