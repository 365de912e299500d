"""Training utilities shared by every torch model family.

Device choice, seeding, minibatches streamed from sparse storage, non-finite-loss detection, progress bars,
the per-step training log and checkpoints that resume to the same result. Model families compose these;
none of them knows about Snakemake.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import torch

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got '{device}'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but no CUDA GPU is available (use device: auto or cpu)")
    return torch.device(device)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a NumPy generator for the caller's own draws."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def get_rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """Every random state a training loop depends on, for exact resume."""
    import torch

    state = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    import torch

    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_finite(losses: Mapping[str, float], *, step: int, model: str) -> None:
    """Stop training with a clear error as soon as a loss is NaN or infinite."""
    bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
    if bad:
        detail = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise TrainingError(
            f"model '{model}': non-finite loss at step {step} ({detail}); training stopped. "
            "Try a lower learning rate or check the input counts"
        )


def minibatches(
    X: sp.spmatrix | np.ndarray,
    *,
    batch_size: int,
    rng: np.random.Generator,
    drop_last: bool = True,
) -> Iterator[np.ndarray]:
    """Yield shuffled row indices of one epoch in batches (the caller densifies only those rows)."""
    order = rng.permutation(X.shape[0])
    stop = len(order) - (len(order) % batch_size if drop_last and len(order) >= batch_size else 0)
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def dense_rows(X: sp.spmatrix | np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The selected rows as a dense float32 array (a minibatch; never the whole matrix)."""
    block = X[rows]
    block = block.toarray() if sp.issparse(block) else np.asarray(block)
    return block.astype(np.float32, copy=False)


def progress_bar(total: int, *, desc: str, initial: int = 0, disable: bool = False):
    """A tqdm bar for steps or epochs (shown on stderr, which Snakemake sends to the rule's log)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=disable, dynamic_ncols=True, mininterval=1.0)


class TrainLog:
    """Rows of (step, named losses, monitors, elapsed seconds), as a dict of columns."""

    def __init__(self, history: dict[str, list] | None = None) -> None:
        self.history: dict[str, list] = {k: list(v) for k, v in (history or {}).items()}
        self._t0 = time.perf_counter() - (self.history["time_s"][-1] if self.history.get("time_s") else 0.0)

    def append(self, step: int, **values: float) -> None:
        row = {"step": step, **values, "time_s": round(time.perf_counter() - self._t0, 3)}
        n = len(self.history.get("step", []))
        for key, value in row.items():
            self.history.setdefault(key, [None] * n).append(value)
        for key in self.history.keys() - row.keys():
            self.history[key].append(None)


def history_frame(history: Mapping[str, list]):
    """The training history as a DataFrame (the ``train_log.tsv`` the workflow writes)."""
    import pandas as pd

    return pd.DataFrame(dict(history))


class Checkpointer:
    """Periodic training checkpoints in one file, resumed transparently.

    ``path=None`` disables checkpointing. ``save`` writes atomically, so an interrupted job leaves either the
    previous checkpoint or the new one, never a truncated file.
    """

    def __init__(self, path: str | Path | None, *, every: int) -> None:
        self.path = None if path is None else Path(path)
        self.every = max(1, int(every))

    def due(self, step: int) -> bool:
        return self.path is not None and step % self.every == 0

    def save(self, state: dict[str, Any]) -> None:
        import torch

        from scsynth_core._io import atomic_path

        if self.path is None:
            return
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def load(self, *, identity: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The saved state, or ``None`` when there is none.

        ``identity``: values the checkpoint must hold under the same keys (e.g. model name, data shape, labels);
        a checkpoint written by another model or for other data is refused instead of silently resumed.
        """
        import torch

        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise TrainingError(f"{self.path}: cannot resume from checkpoint ({type(exc).__name__}: {exc})") from None
        if identity is not None and any(state.get(key) != value for key, value in identity.items()):
            found = ", ".join(str(state.get(key)) for key in identity)
            raise TrainingError(
                f"{self.path}: checkpoint was written by another model or for other data ({found}); "
                "delete it to start afresh"
            )
        log.info("resuming from %s at step %s", self.path, state.get("step"))
        return state

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
