"""scVI as a generator of synthetic cells (Treppner et al. 2021, Sci Rep 11:9403, Methods; Figs. 1-3, Table 1):
``scvi_posterior`` draws posterior-predictive copies of the pilot cells, ``scvi_prior`` decodes prior draws.

scvi-tools' ``SCVI`` (Lopez et al. 2018) is used, not re-implemented, in the paper's reduced setting (NB without
zero inflation, no batches, gene-wise dispersion) with its notebook's hyperparameters. The hyperparameter table,
batch-norm statistics, training and generation: docs/models.md, "scVI prior and posterior".
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
import warnings
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from scsynth_core.errors import ConfigError, TrainingError
from scsynth_core.models.base import GenerativeModel, csr_from_state, csr_to_state
from scsynth_core.models.monitors import MIN_VALIDATION_CELLS
from scsynth_core.models.nn import batchnorm_momentum
from scsynth_core.models.training import resolve_device

log = logging.getLogger(__name__)

#: Cells generated per forward pass; fixed so that a seed gives the same cells whatever ``sample``'s batch size.
SAMPLE_BLOCK = 1024

#: Constructor arguments of ``scvi.model.SCVI`` taken from the hyperparameters (the rest: scvi-tools defaults).
_MODULE_KEYS = (
    "n_hidden",
    "n_latent",
    "n_layers",
    "dropout_rate",
    "gene_likelihood",
    "dispersion",
    "use_observed_lib_size",
)

#: Console noise from Lightning and scvi-tools that says nothing about this run (messages start with these).
_NOISE = (
    "The `srun` command is available",
    "The number of training batches",
    "`isinstance(treespec, LeafSpec)` is deprecated",
    "Last batch will have a small size",
)


@contextlib.contextmanager
def _quiet():
    """Silence Lightning's banner lines ("GPU available", "Seed set to", tips) and known warnings, then restore."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "scvi")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for text in _NOISE:
                warnings.filterwarnings("ignore", message=re.escape(text))
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _lightning_device(dev: torch.device) -> tuple[str, int | list[int]]:
    """Our torch device -> Lightning's ``accelerator``/``devices`` (one device, never all GPUs)."""
    if dev.type == "cuda":
        return "gpu", [dev.index if dev.index is not None else 0]
    return "cpu", 1


def _counts_adata(X: sp.csr_matrix, var_names):
    """An AnnData holding only counts and genes, registered with ``SCVI.setup_anndata`` (no batch, no labels)."""
    import anndata as ad
    import pandas as pd
    from scvi.model import SCVI

    adata = ad.AnnData(X=X, var=pd.DataFrame(index=[str(v) for v in var_names]))
    with _quiet():
        SCVI.setup_anndata(adata)
    return adata


class _EpochRecorder:
    """Lightning callback: optimisation steps and elapsed time at the end of every epoch; stops on a NaN loss."""

    def __init__(self, model_name: str) -> None:
        from lightning.pytorch.callbacks import Callback

        recorder = self

        class _Callback(Callback):
            def on_train_start(self, trainer, pl_module):
                recorder.t0 = time.perf_counter()

            def on_train_epoch_end(self, trainer, pl_module):
                recorder.rows.append(
                    (int(trainer.current_epoch), int(trainer.global_step), round(time.perf_counter() - recorder.t0, 3))
                )
                loss = trainer.callback_metrics.get("train_loss")
                if loss is not None and not math.isfinite(float(loss)):
                    raise TrainingError(
                        f"model '{model_name}': non-finite training loss in epoch {trainer.current_epoch + 1}; "
                        "training stopped. Try a lower learning_rate or check the input counts"
                    )

        self.t0 = time.perf_counter()
        self.rows: list[tuple[int, int, float]] = []
        self.callback = _Callback()


class _RealismCallback:
    """Lightning callback: the loop's realism monitor, checkpoint selection and budgets for scvi-tools' trainer.

    Every ``monitor_every`` epochs the sampler generates as many cells as the monitor's validation cells (scVI's
    own validation split, ``train_size``, which the model never trains on) and scores them
    (:class:`~scsynth_core.models.monitors.RealismMonitor`); the module's weights at the best score are kept for
    ``select="best"``; ``patience`` evaluations without improvement and ``max_minutes`` stop the trainer. The
    monitor's draws run under a forked torch random state, so training is the same with or without it.
    """

    def __init__(self, sampler: _ScviGenerator, X: sp.csr_matrix, *, seed: int) -> None:
        from lightning.pytorch.callbacks import Callback

        from scsynth_core.models.monitors import RealismMonitor, selection_key

        p = sampler.params
        state = self
        self.rows: dict[int, dict[str, float]] = {}
        self.best: dict[str, Any] | None = None
        self.stopped = "max_steps"
        self.stale = 0

        class _Callback(Callback):
            def on_train_start(self, trainer, pl_module):
                state.t0 = time.perf_counter()
                splitter = trainer.datamodule
                val, train = np.asarray(splitter.val_idx), np.asarray(splitter.train_idx)
                state.monitor = None
                state.train_rows = train
                if p["monitor_every"] and p["monitor_cells"] and len(val) >= MIN_VALIDATION_CELLS:
                    chosen = np.sort(np.random.default_rng([seed, 17]).permutation(val)[: p["monitor_cells"]])
                    state.monitor = RealismMonitor(X[chosen], X[train], seed=seed)

            def on_train_epoch_end(self, trainer, pl_module):
                epoch = int(trainer.current_epoch) + 1
                elapsed = time.perf_counter() - state.t0
                out_of_time = p["max_minutes"] is not None and elapsed >= 60.0 * float(p["max_minutes"])
                last = epoch == trainer.max_epochs or (
                    trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
                )
                if state.monitor is not None and (epoch % p["monitor_every"] == 0 or last or out_of_time):
                    with torch.random.fork_rng(devices=[] if pl_module.device.type == "cpu" else [pl_module.device]):
                        torch.manual_seed(seed)
                        pl_module.module.eval()
                        cells = sampler._monitor_cells(state.monitor.n_cells, state.train_rows)
                        pl_module.module.train()
                    scores = state.monitor.score(cells, "counts")
                    state.rows[epoch] = scores
                    key = list(selection_key(scores))
                    if state.best is None or tuple(key) < tuple(state.best["key"]):
                        state.best = {
                            "key": key,
                            "epoch": epoch,
                            "state": {k: v.detach().clone() for k, v in pl_module.module.state_dict().items()},
                        }
                        state.stale = 0
                    else:
                        state.stale += 1
                        if p["patience"] is not None and state.stale >= p["patience"]:
                            state.stopped, trainer.should_stop = "patience", True
                if out_of_time:
                    state.stopped, trainer.should_stop = "max_minutes", True

        self.callback = _Callback()

    def summary(self, select: str, epochs: int) -> dict[str, Any]:
        best = self.best
        return {
            "epochs": epochs,
            "stopped": self.stopped,
            "selected": f"best (epoch {best['epoch']})" if select == "best" and best else "last",
            "best_epoch": None if best is None else best["epoch"],
            "best_monitor_auc": None if best is None else best["key"][0],
            "best_monitor_mmd": None if best is None else best["key"][1],
            "ema_decay": 0.0,
        }


#: History columns taken from scvi-tools' ``model.history`` (epoch-level means), in this order.
_HISTORY_KEYS = (
    "train_loss",
    "validation_loss",
    "elbo_train",
    "elbo_validation",
    "reconstruction_loss_train",
    "reconstruction_loss_validation",
    "kl_local_train",
    "kl_local_validation",
    "kl_weight",
)


def _history(
    scvi_history: Mapping[str, Any],
    rows: list[tuple[int, int, float]],
    monitored: Mapping[int, Mapping[str, float]] | None = None,
) -> dict[str, list]:
    """One row per trained epoch: step, 1-based epoch, scvi-tools' losses (None where not logged), the realism
    monitor's columns where it ran (``monitored``: 1-based epoch -> scores), time_s."""
    from scsynth_core.models.monitors import MONITOR_COLUMNS

    monitored = monitored or {}
    out: dict[str, list] = {"step": [], "epoch": []}
    for key in _HISTORY_KEYS:
        out[key] = []
    out["time_s"] = []
    series = {}
    for key in _HISTORY_KEYS:
        frame = scvi_history.get(key)
        if frame is not None and len(frame):
            series[key] = {int(e): float(v) for e, v in zip(frame.index, frame.iloc[:, 0])}
    for epoch, step, elapsed in rows:
        out["step"].append(step)
        out["epoch"].append(epoch + 1)
        for key in _HISTORY_KEYS:
            value = series.get(key, {}).get(epoch)
            out[key].append(None if value is None or not math.isfinite(value) else value)
        if monitored:
            for key in MONITOR_COLUMNS:
                out.setdefault(key, []).append(monitored.get(epoch + 1, {}).get(key))
        out["time_s"].append(elapsed)
    return out


@torch.no_grad()
def _recompute_batchnorm(model, *, batch_size: int) -> None:
    """Replace every batch-norm layer's running statistics by their exact average over the training cells.

    One pass over the training split in minibatches, module in training mode (dropout on, as when the running
    statistics are collected), cumulative averages (``momentum=None``); weights are not touched.
    """
    module = model.module
    try:
        with batchnorm_momentum(module, None) as layers:
            for layer in layers:
                layer.reset_running_stats()
            module.train()
            loader = model._make_data_loader(adata=model.adata, indices=model.train_indices, batch_size=batch_size)
            for tensors in loader:
                if tensors["X"].shape[0] > 1:  # batch norm needs two cells in training mode
                    module(tensors, compute_loss=False)
    finally:
        module.eval()


class _ScviGenerator(GenerativeModel):
    """Shared part of the two scVI samplers: hyperparameters, training, save/load, block-wise generation."""

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)  # presets and hyperparameter types: scsynth_core.models.specs.scvi
        self._scvi = None  # the fitted scvi.model.SCVI
        self._device = torch.device("cpu")
        self._cursor = 0
        self._pending: sp.csr_matrix | None = None

    def _module_kwargs(self) -> dict[str, Any]:
        return {key: self.params[key] for key in _MODULE_KEYS}

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        import scvi
        from lightning.fabric.plugins.environments import LightningEnvironment

        p = self.params
        max_steps = p["max_steps"] if max_steps is None else int(max_steps)
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"model '{self.name}': max_steps must be >= 1, got {max_steps}")
        dev = resolve_device(device)
        X = sp.csr_matrix(adata.X, dtype=np.float32, copy=True)
        n_cells = X.shape[0]
        # scvi-tools' split: ceil(train_size * n) training cells, the rest for validation.
        n_train = math.ceil(p["train_size"] * n_cells)
        if n_train < 2:
            raise ConfigError(
                f"model '{self.name}': {n_cells} cells give {n_train} training cell(s) with train_size "
                f"{p['train_size']}; need at least 2 (batch normalisation)"
            )
        if checkpoint is not None:
            log.info("model '%s': scVI training is not checkpointed; an interrupted fit restarts", self.name)
        accelerator, devices = _lightning_device(dev)
        recorder = _EpochRecorder(self.name)
        realism = _RealismCallback(self, X, seed=int(seed))
        trainer_kwargs: dict[str, Any] = {}
        if max_steps is not None:
            trainer_kwargs["max_steps"] = max_steps
        with _quiet():
            scvi.settings.seed = int(seed)
            model = scvi.model.SCVI(_counts_adata(X, self.var_names), **self._module_kwargs())
            self._scvi, self._device = model, dev  # the monitor samples from the model being trained
            model.train(
                max_epochs=p["max_epochs"],
                accelerator=accelerator,
                devices=devices,
                train_size=p["train_size"],
                batch_size=p["batch_size"],
                early_stopping=False,
                # scvi 0.6 skipped minibatches of < 3 cells (one cell cannot pass batch normalisation)
                datasplitter_kwargs={"drop_last": 0 < n_train % p["batch_size"] < 3},
                plan_kwargs={"lr": p["learning_rate"], "n_epochs_kl_warmup": p["n_epochs_kl_warmup"]},
                # validation every epoch (scvi 0.6's frequency 1) when train_size leaves validation cells
                check_val_every_n_epoch=1 if n_train < n_cells else None,
                enable_progress_bar=bool(progress),
                callbacks=[recorder.callback, realism.callback],
                # one process on one device: no SLURM/MPI cluster detection
                plugins=[LightningEnvironment()],
                **trainer_kwargs,
            )
        if p["select"] == "best" and realism.best is not None:
            model.module.load_state_dict(realism.best["state"])
        if p["batchnorm_stats"] == "recompute":
            _recompute_batchnorm(model, batch_size=p["batch_size"])
        model.module.eval()
        self._scvi, self._device = model, dev
        self._keep_pilot(X)
        history = _history(model.history, recorder.rows, realism.rows)
        self.training_summary = realism.summary(p["select"], len(recorder.rows))
        if not history["step"]:
            raise TrainingError(f"model '{self.name}': training ran no epoch")
        return history

    def _keep_pilot(self, X: sp.csr_matrix) -> None:
        """Keep what sampling needs from the training counts."""

    # -- generation -------------------------------------------------------------------------------------------
    def _start_sampling(self, seed: int) -> None:
        if self._scvi is None:
            raise ConfigError(f"model '{self.name}' is not fitted: call fit() or load() before sample()")
        torch.manual_seed(int(seed))
        self._scvi.module.eval()
        self._cursor = 0
        self._pending = None

    def _sample_chunk(self, n, labels, rng):
        """The next ``n`` cells of the seed's sequence (generated in blocks of :data:`SAMPLE_BLOCK`)."""
        blocks = [] if self._pending is None else [self._pending]
        have = 0 if self._pending is None else self._pending.shape[0]
        while have < n:
            with _quiet():
                block = self._generate_block(self._cursor, SAMPLE_BLOCK)
            blocks.append(block)
            self._cursor += SAMPLE_BLOCK
            have += block.shape[0]
        cells = blocks[0] if len(blocks) == 1 else sp.vstack(blocks, format="csr")
        self._pending = cells[n:]
        return cells[:n]

    @abstractmethod
    def _monitor_cells(self, n: int, train_rows: np.ndarray) -> sp.csr_matrix:
        """``n`` cells for the realism monitor during training (the module is in evaluation mode)."""

    @abstractmethod
    def _generate_block(self, start: int, size: int) -> sp.csr_matrix:
        """Cells ``start .. start + size - 1`` of the sequence, as float32 CSR counts (each sampler's own)."""

    # -- save / load ------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        import scvi

        if self._scvi is None:
            raise ConfigError(f"model '{self.name}' is not fitted: nothing to save")
        module = {k: v.detach().cpu().clone() for k, v in self._scvi.module.state_dict().items()}
        return {"scvi_version": scvi.__version__, "module_kwargs": self._module_kwargs(), "module": module}

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        import scvi

        saved = str(state.get("scvi_version", "?"))
        if saved.split(".")[:2] != scvi.__version__.split(".")[:2]:
            log.warning("model '%s' was saved with scvi-tools %s, loading with %s", self.name, saved, scvi.__version__)
        dev = resolve_device(device)
        with _quiet():
            model = scvi.model.SCVI(
                _counts_adata(self._rebuild_counts(state), self.var_names), **state["module_kwargs"]
            )
        model.module.load_state_dict(state["module"])
        model.module.to(dev).eval()
        model.is_trained_ = True
        self._scvi, self._device = model, dev

    def _rebuild_counts(self, state: Mapping[str, Any]) -> sp.csr_matrix:
        """Counts to register the rebuilt ``SCVI`` on (the module's weights and buffers come from ``state``)."""
        # three cells of ones: scvi-tools warns about categories with fewer than 3 cells
        return sp.csr_matrix(np.ones((3, len(self.var_names)), dtype=np.float32))


class ScviPosterior(_ScviGenerator):
    """scVI posterior sampling (Treppner 2021, "scVI posterior"): fresh posterior-predictive draws of the pilot
    cells, tiled until the requested size (cell ``i`` comes from pilot cell ``order[i mod n_pilot]``, ``order`` a
    permutation of the pilot cells drawn with the sampling seed).

    Draws come from scvi-tools' ``SCVI.posterior_predictive_sample`` (``z ~ q(z|x)``, ``l ~ q(l|x)``, counts from
    the NB likelihood). Hyperparameters: see docs/models.md (``paper`` = the paper's scvi 0.6 run).
    """

    name = "scvi_posterior"

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._pilot: sp.csr_matrix | None = None
        self._order: np.ndarray | None = None

    def _keep_pilot(self, X: sp.csr_matrix) -> None:
        self._pilot = X

    def _start_sampling(self, seed: int) -> None:
        super()._start_sampling(seed)
        # pilot cells in a seeded random order: a prefix shorter than the pilot is a uniform random subset
        self._order = np.random.default_rng(int(seed)).permutation(self._pilot.shape[0])

    def _monitor_cells(self, n: int, train_rows: np.ndarray) -> sp.csr_matrix:
        """Posterior-predictive draws of training cells (the cells scored against are validation cells)."""
        rows = np.resize(train_rows, n)
        draws = self._scvi.posterior_predictive_sample(indices=rows, batch_size=len(rows))
        return sp.csr_matrix(draws.to_scipy_sparse(), dtype=np.float32)

    def _generate_block(self, start: int, size: int) -> sp.csr_matrix:
        rows = self._order[(start + np.arange(size)) % self._pilot.shape[0]]
        draws = self._scvi.posterior_predictive_sample(indices=rows, batch_size=size)
        return sp.csr_matrix(draws.to_scipy_sparse(), dtype=np.float32)

    def _get_state(self) -> dict[str, Any]:
        return super()._get_state() | {"pilot": csr_to_state(self._pilot)}

    def _rebuild_counts(self, state: Mapping[str, Any]) -> sp.csr_matrix:
        self._pilot = csr_from_state(state["pilot"]).astype(np.float32)
        return self._pilot


class ScviPrior(_ScviGenerator):
    """scVI prior sampling (Treppner 2021, "scVI prior"): ``z ~ N(0, I)`` through scVI's generative network.

    The log library size comes from scVI's library prior ``N(mu_l, sigma_l^2)`` (``library="prior"``, default:
    the paper's scvi 0.6 model, ``use_observed_lib_size=False``) or is resampled from the pilot cells' observed
    library sizes (``library="observed"``; cells with zero counts are left out). Counts are drawn from the
    module's likelihood (``VAE.generative(z, library, batch_index)["px"].sample()``).
    """

    name = "scvi_prior"

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._log_library: torch.Tensor | None = None

    def _monitor_cells(self, n: int, train_rows: np.ndarray) -> sp.csr_matrix:
        self._keep_pilot(self._scvi.adata.X[train_rows])
        return self._generate_block(0, n)

    def _keep_pilot(self, X: sp.csr_matrix) -> None:
        totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        self._log_library = torch.from_numpy(np.log(totals[totals > 0]).astype(np.float32))

    def _generate_block(self, start: int, size: int) -> sp.csr_matrix:
        from scvi.module._constants import MODULE_KEYS

        module, dev = self._scvi.module, self._device
        with torch.inference_mode():
            z = module.z_encoder.z_transformation(torch.randn(size, module.n_latent, device=dev))
            if self.params["library"] == "prior":
                mean = module.library_log_means[0, 0]
                std = module.library_log_vars[0, 0].sqrt()
                library = mean + std * torch.randn(size, 1, device=dev)
            else:
                pool = self._log_library.to(dev)
                library = pool[torch.randint(len(pool), (size,), device=dev)].unsqueeze(1)
            batch_index = torch.zeros(size, 1, dtype=torch.long, device=dev)
            px = module.generative(z=z, library=library, batch_index=batch_index)[MODULE_KEYS.PX_KEY]
            counts = px.sample()
        return sp.csr_matrix(counts.cpu().numpy(), dtype=np.float32)

    def _get_state(self) -> dict[str, Any]:
        return super()._get_state() | {"log_library": self._log_library.clone()}

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        super()._set_state(state, device=device)
        self._log_library = state["log_library"]
