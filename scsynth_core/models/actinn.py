"""ACTINN, the cell-type classifier ACTIVA conditions on (Ma & Pellegrini 2020, Bioinformatics 36(2): 533-538;
Heydari et al. 2022, Bioinformatics 38(8), the ACTINN classifier of the methods and its logits in eq. 5), usable on
its own: ``fit``, ``predict``, ``predict_proba``, ``evaluate``, ``save``/``load``.

The network, optimiser and schedule follow the PyTorch port SindiLab/ACTINN-PyTorch; docs/models.md, "ACTIVA",
lists them. The training pieces (network, optimiser step, epochs of LSN minibatches) are public so that ACTIVA
trains its conditioner with the same code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from scsynth_core.data.preprocess import lsn
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.base import preset_params
from scsynth_core.models.nn import dense_stack, init_weight_
from scsynth_core.models.params import check_flag, check_number, check_positive_int, check_widths
from scsynth_core.models.training import (
    TrainLog,
    check_finite,
    dense_rows,
    flush_denormals,
    minibatches,
    progress_bar,
    resolve_device,
    seed_everything,
)

if TYPE_CHECKING:
    import anndata as ad


class ActinnNet(nn.Module):
    """ACTINN: genes -> 100 -> 50 -> 25 -> n_types (Linear + ReLU), logits out."""

    def __init__(self, n_genes: int, n_types: int, *, widths=(100, 50, 25), log_input: bool = False) -> None:
        super().__init__()
        self.n_genes, self.n_types, self.log_input = int(n_genes), int(n_types), bool(log_input)
        sizes = [self.n_genes, *map(int, widths)]
        self.hidden = dense_stack(sizes, ("linear", "act"))
        self.output = nn.Linear(sizes[-1], self.n_types)
        # Re-initialised once all layers exist: the random draws keep the order seeded fits have always had.
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    init_weight_(module.weight, "glorot")
                    module.bias.fill_(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.hidden(x.log1p() if self.log_input else x))


# ------------------------------------------------------------------------------------------- ACTINN training
class ClassifierTrainer:
    """ACTINN's optimiser: Adam with weight decay, learning rate x ``lr_decay`` after every ``decay_every``
    iterations (the reference steps ``ExponentialLR`` when its 0-based iteration index is a non-zero multiple)."""

    def __init__(self, net: ActinnNet, *, lr: float, weight_decay: float, lr_decay: float, decay_every: int):
        self.net = net
        self.optimizer = torch.optim.Adam(
            net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=lr_decay)
        self.decay_every = int(decay_every)
        self.iteration = 0

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One minibatch update; returns (loss, number of correct predictions)."""
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        self.optimizer.step()
        if self.iteration % self.decay_every == 0 and self.iteration != 0:
            self.scheduler.step()
        self.iteration += 1
        return loss.detach(), (logits.detach().argmax(dim=1) == y).sum()

    def state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = int(state["iteration"])


def epoch_batches(n_rows: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One shuffled epoch of row batches; the last partial batch is kept unless it holds a single cell."""
    placeholder = np.empty((n_rows, 0))
    return [b for b in minibatches(placeholder, batch_size=batch_size, rng=rng, drop_last=False) if len(b) > 1]


def lsn_batch(X, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows ``rows`` of ``X`` (raw counts, sparse or dense) library-size normalised, as a tensor on ``device``."""
    return lsn(torch.from_numpy(dense_rows(X, rows)).to(device, non_blocking=True))


def label_codes(labels, categories: Sequence[str]) -> np.ndarray:
    """Class indices of ``labels`` (as text) into ``categories``; -1 for a label not among them."""
    return pd.Categorical(np.asarray(labels).astype(str), categories=list(categories)).codes.astype(np.int64)


def train_classifier(
    trainer: ClassifierTrainer,
    X,
    codes: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
    log: TrainLog | None,
    progress: bool,
    desc: str,
) -> None:
    """ACTINN epochs on LSN minibatches (raw counts in ``X``); one history row per epoch."""
    n = X.shape[0]
    labels = torch.from_numpy(codes)
    bar = progress_bar(epochs, desc=desc, disable=not progress)
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            loss_sum, correct, seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
            for rows in epoch_batches(n, batch_size, rng):
                loss, hits = trainer.step(lsn_batch(X, rows, device), labels[rows].to(device))
                loss_sum += loss.cpu() * len(rows)
                correct += hits.cpu()
                seen += len(rows)
            mean_loss, accuracy = loss_sum.item() / seen, correct.item() / seen
            check_finite({"classifier_loss": mean_loss}, step=trainer.iteration, model="actinn")
            if log is not None:
                log.append(
                    trainer.iteration,
                    epoch=epoch,
                    phase="classifier",
                    classifier_loss=mean_loss,
                    classifier_accuracy=accuracy,
                    epoch_s=round(time.perf_counter() - t0, 3),
                )
            bar.set_postfix(loss=f"{mean_loss:.3g}", acc=f"{accuracy:.3f}", refresh=False)
            bar.update(1)
    finally:
        bar.close()


@torch.inference_mode()
def predict_logits(net: ActinnNet, X, *, device: torch.device, batch_size: int = 4096) -> torch.Tensor:
    """ACTINN logits (CPU) for cells whose raw counts (or LSN values) are in ``X``; LSN-normalised per block."""
    net.eval()
    out = []
    for start in range(0, X.shape[0], batch_size):
        rows = np.arange(start, min(start + batch_size, X.shape[0]))
        out.append(net(lsn_batch(X, rows, device)).cpu())
    return torch.cat(out) if out else torch.empty(0, net.n_types)


_ACTINN_PAPER: dict[str, Any] = {
    "layers": [100, 50, 25],
    "learning_rate": 1e-4,
    "weight_decay": 0.005,
    "lr_decay": 0.95,
    "decay_every": 1000,
    "batch_size": 128,
    "epochs": 50,
    "log_input": True,
}
#: The demo data hold a few hundred cells (4 minibatches per epoch): more epochs for a comparable number of steps.
_ACTINN_DEMO: dict[str, Any] = _ACTINN_PAPER | {"epochs": 200}


class ACTINN:
    """ACTINN cell-type classifier (Ma & Pellegrini 2020, Bioinformatics 36(2): 533-538; the PyTorch port
    SindiLab/ACTINN-PyTorch), on library-size-normalised expression: the classifier whose logits ACTIVA's
    cell-type loss compares (Heydari et al. 2022, eq. 5) and whose predictions pick its type-specific cells.

    Not a generative model (it is not in the model registry); ACTIVA trains one internally and saves it in its
    own model file (:attr:`scsynth_core.models.activa.ACTIVA.actinn` returns it as this class). Hyperparameters
    (``paper`` = ``workstation``, which trains in seconds to minutes on a CPU; ``demo``: 200 epochs):
    ``layers`` [100, 50, 25], ``learning_rate`` 1e-4, ``weight_decay`` 0.005, ``lr_decay`` 0.95 every
    ``decay_every`` 1,000 iterations, ``batch_size`` 128, ``epochs`` 50, ``log_input`` True (``log1p`` of the LSN
    values inside the network).

    Examples
    --------
    >>> clf = ACTINN().fit(train, label_key="cluster", seed=0)          # doctest: +SKIP
    >>> clf.evaluate(test, label_key="cluster")                           # doctest: +SKIP
    {'accuracy': 0.80, 'macro_f1': 0.65, 'weighted_f1': 0.80, 'n_cells': 210}
    """

    name: ClassVar[str] = "actinn"
    representation: ClassVar[str] = "lsn"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": _ACTINN_PAPER,
        "workstation": _ACTINN_PAPER,
        "demo": _ACTINN_DEMO,
    }

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        params = preset_params(self.name, self.presets, preset, overrides)
        for key in ("batch_size", "epochs", "decay_every"):
            check_positive_int(self.name, params, key)
        check_widths(self.name, params, "layers")
        for key in ("learning_rate", "weight_decay"):
            check_number(self.name, params, key, low=0.0)
        check_number(self.name, params, "lr_decay", low=0.0, high=1.0, low_open=True)
        check_flag(self.name, params, "log_input")
        self.preset, self.params = preset, params
        self.net: ActinnNet | None = None
        self.var_names: list[str] | None = None
        self.categories: list[str] | None = None
        self.label_key: str | None = None
        self.history: dict[str, list] = {}
        self._device = torch.device("cpu")

    @classmethod
    def from_network(cls, net: ActinnNet, *, var_names, categories, label_key, params=None) -> ACTINN:
        """A fitted classifier around a trained network (e.g. the one ACTIVA trained), on the genes and types
        it was trained on; ``params``: the hyperparameters it was trained with (recorded, not used)."""
        clf = cls("paper", **(params or {}))
        clf.net, clf.var_names, clf.categories, clf.label_key = net, list(var_names), list(categories), label_key
        clf._device = next(net.parameters()).device
        return clf

    def fit(
        self, adata: ad.AnnData, *, label_key: str, seed: int = 0, device: str = "auto", progress: bool = True
    ) -> ACTINN:
        """Train on ``adata`` (raw counts in ``X``, labels in ``obs[label_key]``); returns ``self``."""
        from scsynth_core.data.checks import check_counts, check_label_values, check_labels, check_not_empty

        where = "model 'actinn' training data"
        check_not_empty(adata, where=where)
        check_counts(adata.X, where=f"{where} (X)")
        check_labels(adata, label_key, where=where)
        check_label_values(adata.obs[label_key], label_key, where=where, conditional=True)
        p = self.params
        dev = resolve_device(device)
        X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
        self.categories = sorted(adata.obs[label_key].astype(str).unique())
        self.var_names = [str(v) for v in adata.var_names]
        self.label_key = label_key
        codes = label_codes(adata.obs[label_key], self.categories)
        rng = seed_everything(seed)
        net = ActinnNet(X.shape[1], len(self.categories), widths=p["layers"], log_input=p["log_input"]).to(dev)
        trainer = ClassifierTrainer(
            net,
            lr=p["learning_rate"],
            weight_decay=p["weight_decay"],
            lr_decay=p["lr_decay"],
            decay_every=p["decay_every"],
        )
        train_log = TrainLog()
        with flush_denormals():
            train_classifier(
                trainer,
                X,
                codes,
                epochs=p["epochs"],
                batch_size=p["batch_size"],
                rng=rng,
                device=dev,
                log=train_log,
                progress=progress,
                desc="train actinn",
            )
        self.net, self._device, self.history = net.eval(), dev, train_log.history
        return self

    def _check(self, adata: ad.AnnData) -> None:
        if self.net is None:
            raise ConfigError("model 'actinn' is not fitted: call fit() or load() first")
        if [str(v) for v in adata.var_names] != self.var_names:
            raise DataError("model 'actinn': cells to classify have different genes than the training cells")

    def predict_proba(self, adata: ad.AnnData) -> pd.DataFrame:
        """Softmax probabilities (cells x types; columns = the training types, index = the cell names)."""
        self._check(adata)
        X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
        probs = torch.softmax(predict_logits(self.net, X, device=self._device), dim=1).numpy()
        return pd.DataFrame(probs, index=adata.obs_names, columns=self.categories)

    def predict(self, adata: ad.AnnData) -> np.ndarray:
        """The most probable type of every cell (strings)."""
        probs = self.predict_proba(adata)
        return np.asarray(self.categories, dtype=object)[probs.to_numpy().argmax(axis=1)]

    def evaluate(self, adata: ad.AnnData, label_key: str | None = None) -> dict[str, float]:
        """Accuracy, macro- and weighted-F1 on labelled cells
        (:func:`scsynth_core.metrics.classification.classification_scores`, scikit-learn as ACTINN-PyTorch).

        Cells of a type the classifier was not trained on count as errors.
        """
        from scsynth_core.data.checks import check_labels
        from scsynth_core.metrics.classification import classification_scores

        key = label_key or self.label_key
        check_labels(adata, key, where="cells ACTINN is evaluated on")
        return classification_scores(adata.obs[key].astype(str).to_numpy(), self.predict(adata))

    def save(self, path: str | Path) -> None:
        """Weights, hyperparameters, genes and types in one ``torch.save`` file (loads with weights_only)."""
        from scsynth_core.atomic import atomic_path

        if self.net is None:
            raise ConfigError("model 'actinn' is not fitted: nothing to save")
        payload = {
            "format": 1,
            "model": self.name,
            "preset": self.preset,
            "params": self.params,
            "var_names": self.var_names,
            "categories": self.categories,
            "label_key": self.label_key,
            "state": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> ACTINN:
        """Load a classifier written by :meth:`save`."""
        path = Path(path)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("model") != cls.name:
                raise ValueError(f"holds '{payload.get('model')}'")
        except FileNotFoundError:
            raise DataError(f"{path}: model file not found") from None
        except Exception as exc:  # noqa: BLE001 - torch.load raises many types for a damaged file; one line each
            raise DataError(f"{path}: not an ACTINN model file ({type(exc).__name__}: {exc})") from None
        clf = cls(payload["preset"], **payload["params"])
        net = ActinnNet(
            len(payload["var_names"]),
            len(payload["categories"]),
            widths=clf.params["layers"],
            log_input=clf.params["log_input"],
        )
        net.load_state_dict(payload["state"])
        dev = resolve_device(device)
        clf.net, clf._device = net.to(dev).eval(), dev
        clf.var_names, clf.categories, clf.label_key = payload["var_names"], payload["categories"], payload["label_key"]
        return clf
