"""The training loop every torch model family uses, and the utilities it is made of.

:class:`TrainingLoop` runs a family's :class:`TrainingTask` (its networks, optimisers and one optimisation
step) and owns what must behave the same for every model: the step budget (``max_steps``) and an optional
wall-clock budget (``max_minutes``), the progress bar, the training log, checkpoints that resume to the same
result, the realism monitor on held-out validation cells (:mod:`scsynth_core.models.monitors`), checkpoint
selection (``select: best | last``), early stopping (``patience``) and an exponential moving average of the
generating networks' weights (``ema_decay``; Yazici et al. 2019, "The unusual effectiveness of averaging in GAN
training"). Also here: device choice, seeding, minibatches streamed from sparse storage, non-finite-loss
detection. None of it knows about Snakemake.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, TrainingError
from scsynth_core.models.monitors import selection_key
from scsynth_core.models.specs.loop import LOOP_DEFAULTS, LOOP_PARAMS, SELECTIONS  # noqa: F401 - the loop's names

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


@contextlib.contextmanager
def flush_denormals():
    """Treat subnormal floats as zero on the CPU while training or generating.

    Tiny gradients and optimiser moments become subnormal numbers, which x86 CPUs process up to ~100x slower:
    measured on PBMC 3k, a VAE warm-up epoch takes 15.4 s with them and 2.4 s without. The setting is
    process-wide in torch (and cannot be read back); it is switched off again on exit.
    """
    import torch

    enabled = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if enabled:
            torch.set_flush_denormal(False)


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


def training_matrix(X):
    """``X`` as a model's minibatch code indexes it: CSR or dense in memory, or a source read from disk on demand
    (:class:`scsynth_core.data.backed.BackedRows`), passed through."""
    from scsynth_core.data.backed import is_row_source

    if is_row_source(X):
        return X
    return X.tocsr() if sp.issparse(X) else np.asarray(X)


def progress_bar(total: int, *, desc: str, initial: int = 0, disable: bool = False):
    """A tqdm bar for steps or epochs (shown on stderr, which Snakemake sends to the rule's log)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=disable, dynamic_ncols=True, mininterval=1.0)


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-1 of arrays' bytes: a checkpoint identity for data a training phase derived (e.g. codes)."""
    import hashlib

    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def merge_histories(phases: list[tuple[str, dict[str, list]]]) -> dict[str, list]:
    """Concatenate per-phase histories (column dicts) with a ``phase`` column; missing cells are ``None``."""
    out: dict[str, list] = {"phase": []}
    n = 0
    for phase, history in phases:
        rows = len(history.get("step", []))
        for key in history:
            out.setdefault(key, [None] * n)
        for key, column in out.items():
            column.extend([phase] * rows if key == "phase" else history.get(key, [None] * rows))
        n += rows
    return out


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

        from scsynth_core.atomic import atomic_path

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
        except Exception as exc:  # noqa: BLE001 - torch.load raises many types for a damaged file; one line each
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


# ------------------------------------------------------------------------------------------------ the loop
STOP_REASONS = ("max_steps", "max_minutes", "patience")


def check_loop_params(model: str, params: dict[str, Any]) -> None:
    """Types and ranges of :data:`LOOP_DEFAULTS` keys (declared in :mod:`scsynth_core.models.specs.loop`), one
    clear :class:`ConfigError` per bad value."""
    for key, param in LOOP_PARAMS.items():
        param.check(model, params, key)


class TrainingTask:
    """What a model family hands to :class:`TrainingLoop`.

    Subclasses set ``modules`` (every trained network, by name), ``optimizers`` (by name),
    ``generator_names`` (the networks that generate cells: averaged by EMA and kept by checkpoint selection),
    ``representation`` (the space :meth:`generate` returns cells in) and implement :meth:`step`.
    """

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generator_names: tuple[str, ...] = ()
    representation: str = "lsn"

    def step(self, step: int) -> dict[str, torch.Tensor]:
        """One optimisation step (``step`` = steps done before it); returns named scalar losses (tensors)."""
        raise NotImplementedError

    def generate(self, n: int, seed: int):
        """``n`` cells for the monitor (generating networks in evaluation mode; no global random stream used)."""
        raise NotImplementedError

    def log_columns(self, step: int) -> dict[str, Any]:
        """Extra columns of a log row (epoch, phase, learning rate, ...)."""
        return {}

    def state(self) -> dict[str, Any]:
        """Task state beyond modules and optimisers (pending minibatches, ...), for checkpoints."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state` returned."""

    def train_mode(self) -> None:
        """Put the networks back in training mode (after the monitor generated in evaluation mode)."""
        for module in self.modules.values():
            module.train()


class WeightAverage:
    """Exponential moving average of a module's parameters (buffers such as batch-norm statistics are copied).

    ``shadow = d * shadow + (1 - d) * live`` after every step with ``d = min(decay, (1 + t) / (10 + t))`` at
    update ``t`` (the first update copies the weights): the warm-up of TensorFlow's ``ExponentialMovingAverage``
    with ``num_updates``, without which a decay of 0.999 still weighs the initial weights by two thirds after
    1,000 steps (measured: scGAN's averaged generator was far worse than its live one after a short run).
    """

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self._params = [p for p in module.parameters()]
        self._buffers = [b for b in module.buffers()]
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self._param_keys = [k for k, _ in module.named_parameters()]
        self._buffer_keys = [k for k, _ in module.named_buffers()]
        self.updates = 0

    def update(self) -> None:
        import torch

        with torch.no_grad():
            shadow = [self.shadow[k] for k in self._param_keys]
            if self.updates == 0:
                torch._foreach_copy_(shadow, [p.detach() for p in self._params])
            else:
                decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
                torch._foreach_lerp_(shadow, [p.detach() for p in self._params], 1.0 - decay)
            for key, buffer in zip(self._buffer_keys, self._buffers):
                self.shadow[key].copy_(buffer)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)
        self.updates = int(state["updates"])


def _clone_state(module: torch.nn.Module) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class TrainingLoop:
    """Runs a :class:`TrainingTask` for ``max_steps`` steps under the loop hyperparameters (see module docstring).

    Parameters
    ----------
    model
        Model name (messages, progress bar, checkpoint identity).
    params
        The model's hyperparameters; the :data:`LOOP_DEFAULTS` keys are read.
    max_steps
        Optimisation steps to run.
    rng
        The NumPy generator the task draws minibatches from (checkpointed with torch's random states).
    monitor
        A :class:`~scsynth_core.models.monitors.RealismMonitor`, or ``None`` (no monitor: ``select`` and
        ``patience`` have nothing to act on and the last weights are kept).
    seed
        Seed of the monitor's generated cells (the same cells' noise at every evaluation).
    checkpoint, identity
        Checkpoint file (or ``None``) and the values a checkpoint must match to be resumed.
    """

    def __init__(
        self,
        model: str,
        params: Mapping[str, Any],
        *,
        max_steps: int,
        rng: np.random.Generator,
        monitor=None,
        seed: int = 0,
        checkpoint: str | Path | None = None,
        identity: Mapping[str, Any] | None = None,
        progress: bool = True,
        desc: str | None = None,
    ) -> None:
        if int(max_steps) < 1:
            raise ConfigError(f"model '{model}': max_steps must be >= 1, got {max_steps}")
        self.model, self.p, self.max_steps, self.rng = model, params, int(max_steps), rng
        self.monitor = monitor if params["monitor_every"] else None
        self.seed = int(seed)
        self.ckpt = Checkpointer(checkpoint, every=params["checkpoint_every"])
        self.identity = {"model": model, **(identity or {})}
        self.progress, self.desc = progress, desc or f"train {model}"
        self.summary: dict[str, Any] = {}

    # -- monitor and selection ---------------------------------------------------------------------------------
    def _evaluate(self, task: TrainingTask, averages: dict[str, WeightAverage]) -> dict[str, float]:
        with self._generating_weights(task, averages):
            cells = task.generate(self.monitor.n_cells, self.seed)
        task.train_mode()
        return self.monitor.score(cells, task.representation)

    @contextlib.contextmanager
    def _generating_weights(self, task: TrainingTask, averages: dict[str, WeightAverage]):
        """The averaged weights in the generating networks for the duration of the block (no-op without EMA)."""
        saved = {name: _clone_state(task.modules[name]) for name in averages}
        for name, average in averages.items():
            task.modules[name].load_state_dict(average.shadow)
        try:
            yield
        finally:
            for name, state in saved.items():
                task.modules[name].load_state_dict(state)

    # -- run ---------------------------------------------------------------------------------------------------
    def resumes(self) -> bool:
        """Whether a checkpoint exists to resume from (checked for identity when :meth:`run` loads it)."""
        return self.ckpt.path is not None and self.ckpt.path.exists()

    def run(self, task: TrainingTask, *, history: dict[str, list] | None = None) -> dict[str, list]:
        """Train; returns the history (``train_log.tsv`` columns). ``self.summary`` says how it ended.

        ``history``: rows logged before the loop (e.g. a classifier trained first), continued by the loop's own
        rows; a resumed run takes its history from the checkpoint instead.
        """
        with flush_denormals():
            return self._run(task, history)

    def _run(self, task: TrainingTask, history: dict[str, list] | None) -> dict[str, list]:
        import torch

        p = self.p
        averages = (
            {name: WeightAverage(task.modules[name], p["ema_decay"]) for name in task.generator_names}
            if p["ema_decay"]
            else {}
        )
        step, best, stale, elapsed = 0, None, 0, 0.0
        state = self.ckpt.load(identity=self.identity)  # refuses a checkpoint of another model or other data
        if state is not None:
            for name, module in task.modules.items():
                module.load_state_dict(state["modules"][name])
            for name, optimizer in task.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][name])
            for name, average in averages.items():
                average.load_state_dict(state["ema"][name])
            task.load_state(state["task"])
            set_rng_state(self.rng, state["rng"])
            step, history, best, stale = int(state["step"]), state["history"], state["best"], int(state["stale"])
            elapsed = float(state["elapsed"])
        window: dict[str, torch.Tensor] = {} if state is None else dict(state["window"])
        window_steps = 0 if state is None else int(state["window_steps"])
        log = TrainLog(history)
        t_start = time.perf_counter() - elapsed
        budget_s = None if p["max_minutes"] is None else 60.0 * float(p["max_minutes"])
        stopped = "max_steps"
        task.train_mode()
        bar = progress_bar(self.max_steps, desc=self.desc, initial=min(step, self.max_steps), disable=not self.progress)
        try:
            while step < self.max_steps:
                losses = task.step(step)
                step += 1
                for average in averages.values():
                    average.update()
                for key, value in losses.items():  # summed on the device: one sync per log row
                    value = value.detach().float()
                    window[key] = window[key] + value if key in window else value
                window_steps += 1
                elapsed = time.perf_counter() - t_start
                out_of_time = budget_s is not None and elapsed >= budget_s
                due_monitor = self.monitor is not None and (
                    step % p["monitor_every"] == 0 or step == self.max_steps or out_of_time
                )
                if step % p["log_every"] == 0 or step == self.max_steps or due_monitor or out_of_time:
                    means = dict(zip(window, (torch.stack(list(window.values())) / window_steps).tolist()))
                    check_finite(means, step=step, model=self.model)
                    row = means | task.log_columns(step)
                    if due_monitor:
                        scores = self._evaluate(task, averages)
                        row |= scores
                        key = list(selection_key(scores))
                        if best is None or tuple(key) < tuple(best["key"]):
                            source = {
                                n: averages[n].shadow if n in averages else task.modules[n].state_dict()
                                for n in task.generator_names
                            }
                            best = {
                                "key": key,
                                "step": step,
                                "state": {
                                    n: {k: v.detach().clone() for k, v in sd.items()} for n, sd in source.items()
                                },
                            }
                            stale = 0
                        else:
                            stale += 1
                        bar.set_postfix(
                            auc=f"{scores['monitor_auc']:.3f}", mmd=f"{scores['monitor_mmd']:.3g}", refresh=False
                        )
                    log.append(step, **row)
                    window, window_steps = {}, 0
                bar.update(1)
                if out_of_time:
                    stopped = "max_minutes"
                elif due_monitor and p["patience"] is not None and stale >= p["patience"]:
                    stopped = "patience"
                finishing = stopped != "max_steps" or step == self.max_steps
                if self.ckpt.path is not None and (self.ckpt.due(step) or finishing):
                    self.ckpt.save(
                        self.identity
                        | {
                            "step": step,
                            "modules": {n: m.state_dict() for n, m in task.modules.items()},
                            "optimizers": {n: o.state_dict() for n, o in task.optimizers.items()},
                            "ema": {n: a.state_dict() for n, a in averages.items()},
                            "task": task.state(),
                            "rng": get_rng_state(self.rng),
                            "history": log.history,
                            "best": best,
                            "stale": stale,
                            "window": window,
                            "window_steps": window_steps,
                            "elapsed": time.perf_counter() - t_start,
                        }
                    )
                if stopped != "max_steps":
                    break
        finally:
            bar.close()
        selected = self._finish(task, averages, best)
        self.summary = {
            "steps": step,
            "stopped": stopped,
            "selected": selected,
            "best_step": None if best is None else best["step"],
            "best_monitor_auc": None if best is None else best["key"][0],
            "best_monitor_mmd": None if best is None else best["key"][1],
            "ema_decay": float(p["ema_decay"]),
            "seconds": round(time.perf_counter() - t_start, 3),
        }
        return log.history

    def _finish(self, task: TrainingTask, averages: dict[str, WeightAverage], best) -> str:
        """Load the kept weights into the generating networks; returns which were kept."""
        if self.p["select"] == "best" and best is not None:
            for name, state in best["state"].items():
                task.modules[name].load_state_dict(state)
            return f"best (step {best['step']})"
        for name, average in averages.items():
            task.modules[name].load_state_dict(average.shadow)
        return "last (averaged)" if averages else "last"
