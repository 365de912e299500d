"""Minibatch order shared by the model families' training tasks (scGAN, cscGAN, the VAEs, MichiGAN)."""

from __future__ import annotations

import numpy as np
import torch

from scsynth_core.models.training import minibatches


class EpochBatches:
    """Shuffled epochs of minibatch row indices (:func:`minibatches`); the pending ones are checkpointed."""

    def __init__(self, n_rows: int, batch_size: int, rng: np.random.Generator) -> None:
        self.n_rows, self.batch_size, self.rng = n_rows, batch_size, rng
        self.pending: list[np.ndarray] = []

    def next(self) -> np.ndarray:
        if not self.pending:
            placeholder = np.empty((self.n_rows, 0))
            self.pending = list(minibatches(placeholder, batch_size=self.batch_size, rng=self.rng))
        return self.pending.pop(0)

    def state(self) -> torch.Tensor:
        width = min(self.batch_size, self.n_rows)
        return torch.as_tensor(np.asarray(self.pending, dtype=np.int64).reshape(-1, width))

    def load(self, state: torch.Tensor) -> None:
        self.pending = list(state.numpy())
