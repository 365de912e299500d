"""benchmarks/monitor_vs_rf.py: a test-sized set from a task that makes at most its validation cells' count."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from monitor_vs_rf import _generate


class _CodeTask:
    """Like MichiGAN's training task: one cell per validation code, the cell's value = the seed."""

    def __init__(self, n_codes: int, code_mu=True):
        self.monitor_rows, self.code_mu, self.calls = np.arange(n_codes), code_mu or None, []

    def generate(self, n, seed):
        if self.code_mu is not None and n > len(self.monitor_rows):
            raise RuntimeError("Sizes of tensors must match")
        self.calls.append((n, seed))
        return sp.csr_matrix(np.full((n, 2), seed, dtype=np.float32))


def test_generate_asks_again_with_the_next_seeds_past_the_codes():
    task = _CodeTask(3)
    cells = _generate(task, 7, seed=5)
    assert cells.shape == (7, 2) and sp.issparse(cells)
    assert task.calls == [(3, 5), (3, 6), (1, 7)]
    assert cells[:, 0].toarray().ravel().tolist() == [5, 5, 5, 6, 6, 6, 7]


def test_generate_is_one_call_for_tasks_without_codes():
    task = _CodeTask(3, code_mu=False)
    assert _generate(task, 7, seed=5).shape == (7, 2) and task.calls == [(7, 5)]
