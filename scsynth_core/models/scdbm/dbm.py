"""The negative-binomial deep Boltzmann machine of scDBM (Treppner et al. 2021, eq. 3-9): its parameters,
conditionals, Gibbs sampler and exact quantities (:class:`NegativeBinomialDBM`), and its training
(:func:`train`: NB-RBM and Bernoulli-RBM pretraining, DBM fine-tuning, dispersion re-estimation, monitor,
checkpoints)."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from scsynth_core.errors import ConfigError
from scsynth_core.models.scdbm.dispersion import fit_nb_dispersion, keep_means_shift
from scsynth_core.models.scdbm.nb import A_MAX, bernoulli, gumbel_argmax, nb_log_prob, nb_mean, sample_nb
from scsynth_core.models.scdbm.schedule import PHASES
from scsynth_core.models.training import (
    Checkpointer,
    TrainLog,
    check_finite,
    dense_rows,
    get_rng_state,
    minibatches,
    progress_bar,
    resolve_device,
    seed_everything,
    set_rng_state,
)

if TYPE_CHECKING:
    from scsynth_core.models.scdbm.model import ScDBM

#: Hidden-layer sizes up to which the exact likelihood is monitored / states are enumerated (the exact sampler's
#: limit, EXACT_MAX_HIDDEN, is declared with the hyperparameters in scsynth_core.models.specs.scdbm).
MONITOR_MAX_HIDDEN = 12
ENUMERATE_MAX_HIDDEN = 10

#: Smallest NB variance used to scale the NB layer's updates (optimizer "scaled").
VAR_FLOOR = 1.0
#: Largest decrease of an NB natural parameter (``a``, ``W1``) in one update.
MAX_NB_STEP = 1.0


class NegativeBinomialDBM:
    """Parameters and conditionals of scDBM (paper eq. 3-8): NB visible layer, Bernoulli ``h1`` and ``h2``.

    Tensors: ``W1`` (genes x H1, ``<= 0``), ``a`` (genes, ``<= -1e-10``), ``c1`` (H1, first RBM's hidden bias),
    ``b1`` (H1, second RBM's visible bias; the DBM's ``h1`` bias is ``c1 + b1``), ``W2`` (H1 x H2), ``c2`` (H2),
    ``theta`` (genes, NB inverse dispersion).
    """

    KEYS = ("W1", "a", "c1", "b1", "W2", "c2", "theta")

    def __init__(self, **tensors: torch.Tensor) -> None:
        missing = set(self.KEYS) - set(tensors)
        if missing:
            raise ValueError(f"missing parameters: {sorted(missing)}")
        for key in self.KEYS:
            setattr(self, key, tensors[key])

    @classmethod
    def initial(
        cls,
        gene_means: np.ndarray,
        hidden: tuple[int, int],
        *,
        theta0: float,
        device: torch.device,
        dtype=torch.float32,
    ) -> NegativeBinomialDBM:
        """The reference's initialisation: ``W1 = -U(0.0005, 0.002)``, ``a = log(m / (m + theta0))`` (so the
        hidden-off means are the genes' mean counts), ``W2 ~ N(0, 1 / H1)``, zero hidden biases. Uses torch's
        global random state."""
        h1, h2 = hidden
        n_genes = len(gene_means)
        m = torch.as_tensor(gene_means, dtype=torch.float64)
        theta = torch.full((n_genes,), float(theta0), dtype=torch.float64)
        a = torch.log(m / (m + theta)).clamp(max=A_MAX)
        W1 = -(0.0005 + 0.0015 * torch.rand(n_genes, h1))
        W2 = torch.randn(h1, h2) / math.sqrt(h1)
        tensors = {
            "W1": W1,
            "a": a,
            "c1": torch.zeros(h1),
            "b1": torch.zeros(h1),
            "W2": W2,
            "c2": torch.zeros(h2),
            "theta": theta,
        }
        return cls(**{k: v.to(device, dtype) for k, v in tensors.items()})

    @property
    def hidden_sizes(self) -> tuple[int, int]:
        return int(self.W1.shape[1]), int(self.W2.shape[1])

    def state(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k).detach().cpu().clone() for k in self.KEYS}

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor], device: torch.device) -> NegativeBinomialDBM:
        return cls(**{k: state[k].to(device).clone() for k in cls.KEYS})

    def project_(self) -> None:
        """Enforce the paper's constraints ``W1 <= 0`` and ``a <= -1e-10`` (every ``eta < 0``)."""
        self.W1.clamp_(max=0.0)
        self.a.clamp_(max=A_MAX)

    # -- energy and conditionals (paper eq. 3-8) ---------------------------------------------------------------
    def energy(self, v: torch.Tensor, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """``E(v, h1, h2)`` per row (float64)."""
        f = {k: getattr(self, k).double() for k in self.KEYS}
        v, h1, h2 = v.double(), h1.double(), h2.double()
        base = torch.lgamma(v + f["theta"]) - torch.lgamma(f["theta"]) - torch.lgamma(v + 1.0)
        return -(
            (v * f["a"] + base).sum(1)
            + ((v @ f["W1"]) * h1).sum(1)
            + ((h1 @ f["W2"]) * h2).sum(1)
            + h1 @ (f["c1"] + f["b1"])
            + h2 @ f["c2"]
        )

    def eta(self, h1: torch.Tensor) -> torch.Tensor:
        """NB natural parameters ``a + W1 h1`` (cells x genes), all ``< 0`` under the constraints."""
        return torch.addmm(self.a, h1, self.W1.t())

    def visible_mean(self, h1: torch.Tensor) -> torch.Tensor:
        """``E[v | h1]`` (paper eq. 6)."""
        return nb_mean(self.eta(h1), self.theta)

    def h1_prob(self, v: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """``p(h1 = 1 | v, h2)`` in the DBM (paper eq. 7)."""
        return torch.sigmoid(self.c1 + self.b1 + v @ self.W1 + h2 @ self.W2.t())

    def h2_prob(self, h1: torch.Tensor) -> torch.Tensor:
        """``p(h2 = 1 | h1)`` (paper eq. 8); also the second RBM's bottom-up conditional."""
        return torch.sigmoid(torch.addmm(self.c2, h1, self.W2))

    def rbm1_hidden_prob(self, v: torch.Tensor) -> torch.Tensor:
        """First RBM during pretraining: ``p(h1 | v) = sigmoid(2 (c1 + W1' v))`` (doubled bottom-up input)."""
        return torch.sigmoid(2.0 * torch.addmm(self.c1, v, self.W1))

    def rbm2_visible_prob(self, h2: torch.Tensor) -> torch.Tensor:
        """Second RBM during pretraining: ``p(h1 | h2) = sigmoid(2 (b1 + W2 h2))`` (doubled top-down input)."""
        return torch.sigmoid(2.0 * torch.addmm(self.b1, h2, self.W2.t()))

    def mean_field(
        self, v: torch.Tensor, *, tol: float = 1e-3, max_iter: int = 50
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean-field posterior ``(q(h1), q(h2))`` of cells ``v``: bottom-up start with doubled weights
        (Salakhutdinov & Hinton 2012), then fixed-point updates until the largest change is ``< tol``."""
        bottom_up = v @ self.W1
        mu1 = torch.sigmoid(self.c1 + self.b1 + 2.0 * bottom_up)
        mu2 = self.h2_prob(mu1)
        for _ in range(int(max_iter)):
            new1 = torch.sigmoid(self.c1 + self.b1 + bottom_up + mu2 @ self.W2.t())
            new2 = self.h2_prob(new1)
            delta = torch.maximum((new1 - mu1).abs().max(), (new2 - mu2).abs().max())
            mu1, mu2 = new1, new2
            if float(delta) < tol:
                break
        return mu1, mu2

    def gibbs(
        self, h1: torch.Tensor, steps: int, generator: torch.Generator | None = None, *, scheme: str = "blocked"
    ) -> torch.Tensor:
        """``steps`` Gibbs steps from hidden states ``h1`` (chains x H1); returns the new ``h1``.

        ``"blocked"`` (the paper): ``v ~ p(v | h1)`` and ``h2 ~ p(h2 | h1)``, then ``h1 ~ p(h1 | v, h2)``.
        ``"collapsed"``: ``h2 ~ p(h2 | h1)``, then ``h1 ~ p(h1 | h2)`` with ``v`` summed out analytically
        (:meth:`visible_log_norm`): the whole layer at once over its ``2^H1`` states when ``H1 <=``
        ``ENUMERATE_MAX_HIDDEN``, else unit by unit. Both leave the DBM's distribution invariant; the collapsed
        chain does not have to cross the low-probability counts between two cell types.
        """
        if scheme == "blocked":
            for _ in range(int(steps)):
                v = sample_nb(self.visible_mean(h1), self.theta, generator)
                h2 = bernoulli(self.h2_prob(h1), generator)
                h1 = bernoulli(self.h1_prob(v, h2), generator)
            return h1
        if self.hidden_sizes[0] <= ENUMERATE_MAX_HIDDEN:
            states = self.hidden_states().to(h1.dtype)
            base = self.visible_log_norm(states.double()) + states.double() @ (self.c1 + self.b1).double()
            base = base.to(h1.dtype)
            for _ in range(int(steps)):
                h2 = bernoulli(self.h2_prob(h1), generator)
                logits = base + (h2 @ self.W2.t()) @ states.t()  # chains x states
                h1 = states[gumbel_argmax(logits, generator)]
            return h1
        h1 = h1.clone()
        eta = self.eta(h1)
        for _ in range(int(steps)):
            h2 = bernoulli(self.h2_prob(h1), generator)
            bias = self.c1 + self.b1 + h2 @ self.W2.t()
            for j in range(h1.shape[1]):  # one hidden unit at a time (a loop over units, not genes)
                w = self.W1[:, j]
                eta_off = eta - h1[:, j : j + 1] * w
                log_norm_on = torch.log(-torch.expm1(eta_off + w))
                log_norm_off = torch.log(-torch.expm1(eta_off))
                log_odds = bias[:, j] - ((log_norm_on - log_norm_off) * self.theta).sum(1)
                h1[:, j] = bernoulli(torch.sigmoid(log_odds), generator)
                eta = eta_off + h1[:, j : j + 1] * w
        return h1

    def visible_log_norm(self, h1: torch.Tensor) -> torch.Tensor:
        """``log sum_v exp(v' (a + W1 h1)) prod_g C(v_g + theta_g - 1, v_g) = -sum_g theta_g log(1 - e^eta_g)``
        per row of ``h1`` (float64): the visible layer summed out of the energy."""
        eta = torch.addmm(self.a.double(), h1.double(), self.W1.double().t())
        return -(self.theta.double() * torch.log(-torch.expm1(eta))).sum(1)

    # -- exact quantities for small H1 -------------------------------------------------------------------------
    def hidden_states(self) -> torch.Tensor:
        """All ``2^H1`` binary ``h1`` states (rows), in binary-counting order with unit 0 most significant."""
        h1 = self.hidden_sizes[0]
        states = torch.tensor(list(itertools.product((0.0, 1.0), repeat=h1)), dtype=torch.float64)
        return states.to(self.W1.device)

    def h1_log_weights(self, states: torch.Tensor, *, block: int = 1024) -> torch.Tensor:
        """Unnormalised ``log p(h1)`` of each state with ``v`` and ``h2`` summed out:
        ``d1' h1 + sum_k softplus(c2_k + W2[:, k]' h1) - sum_g theta_g log(1 - e^eta_g(h1))``."""
        f = {k: getattr(self, k).double() for k in self.KEYS}
        out = []
        for start in range(0, states.shape[0], block):
            s = states[start : start + block]
            visible = self.visible_log_norm(s)
            top = torch.nn.functional.softplus(torch.addmm(f["c2"], s, f["W2"])).sum(1)
            out.append(s @ (f["c1"] + f["b1"]) + top + visible)
        return torch.cat(out)

    def log_likelihood(self, v: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(v)`` per cell (float64), summing over all ``2^H1`` states (small ``H1`` only)."""
        f = {k: getattr(self, k).double() for k in self.KEYS}
        states = self.hidden_states()
        log_z = torch.logsumexp(self.h1_log_weights(states), 0)
        v = v.double()
        eta = torch.addmm(f["a"], states, f["W1"].t())  # states x genes
        base = (torch.lgamma(v + f["theta"]) - torch.lgamma(f["theta"]) - torch.lgamma(v + 1.0)).sum(1)
        top = torch.nn.functional.softplus(torch.addmm(f["c2"], states, f["W2"])).sum(1)
        # log p~(v, h1) with h2 summed out, for every cell x state; then sum over states and normalise
        joint = v @ eta.t() + (states @ (f["c1"] + f["b1"]) + top)[None, :]
        return base + torch.logsumexp(joint, 1) - log_z


def train(
    model: ScDBM, adata, *, seed, device, max_steps, progress, checkpoint
) -> tuple[NegativeBinomialDBM, torch.device, dict[str, list]]:
    """Train ``model``'s DBM on ``adata``: NB-RBM and Bernoulli-RBM pretraining, then DBM fine-tuning (paper
    eq. 3-9), resumed from ``checkpoint`` if it holds a run; returns the machine, its device and the history
    (one row per epoch)."""
    p = model.params
    max_steps = p["max_steps"] if max_steps is None else int(max_steps)
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"model '{model.name}': max_steps must be >= 1, got {max_steps}")
    dev = resolve_device(device)
    X = adata.X.tocsr() if sp.issparse(adata.X) else sp.csr_matrix(np.asarray(adata.X))
    n_cells, n_genes = X.shape
    gene_means = np.maximum(np.asarray(X.mean(axis=0), dtype=np.float64).ravel(), 0.5 / n_cells)
    h1_size, h2_size = (int(h) for h in p["hidden_sizes"])

    rng = seed_everything(seed)
    machine = NegativeBinomialDBM.initial(gene_means, (h1_size, h2_size), theta0=p["theta_init"], device=dev)
    trainer = _Trainer(model, machine, X, gene_means, dev)
    schedule = [
        (phase, e)
        for phase, epochs in zip(PHASES, [*p["pretrain_epochs"], p["finetune_epochs"]])
        for e in range(1, int(epochs) + 1)
    ]
    total = sum(trainer.steps_per_epoch(phase) for phase, _ in schedule)
    total = total if max_steps is None else min(total, max_steps)

    ckpt = Checkpointer(checkpoint, every=p["checkpoint_every"])
    state = ckpt.load(identity={"model": model.name, "shape": [n_cells, n_genes]})
    done, step, history = 0, 0, None
    if state is not None:
        trainer.machine = machine = NegativeBinomialDBM.from_state(state["machine"], dev)
        trainer.load_chains(state["chains"])
        trainer.dispersion_fitted = bool(state["dispersion_fitted"])
        set_rng_state(rng, state["rng"])
        done, step, history = int(state["epoch"]), int(state["step"]), state["history"]
    train_log = TrainLog(history)

    bar = progress_bar(total, desc=f"train {model.name}", initial=min(step, total), disable=not progress)
    try:
        for index in range(done, len(schedule)):
            if step >= total:
                break
            phase, epoch = schedule[index]
            t0 = time.perf_counter()
            lr = model.lr_at(phase, epoch)
            n_updates = trainer.run_epoch(phase, epoch, lr, rng, limit=total - step)
            step += n_updates
            bar.update(n_updates)
            if n_updates < trainer.steps_per_epoch(phase):
                break  # stopped by max_steps inside the epoch: no row, no checkpoint
            if trainer.dispersion_due(phase, epoch):
                trainer.update_dispersion(phase)
            monitors = trainer.monitor(phase)
            check_finite({k: v for k, v in monitors.items() if v is not None}, step=step, model=model.name)
            theta = machine.theta
            train_log.append(
                step,
                epoch=index + 1,
                phase=phase,
                phase_epoch=epoch,
                lr=lr,
                **monitors,
                theta_median=float(theta.median()),
                theta_min=float(theta.min()),
                theta_max=float(theta.max()),
                epoch_s=round(time.perf_counter() - t0, 3),
            )
            bar.set_postfix(phase=phase, epoch=epoch, recon_nll=f"{monitors['recon_nll']:.4g}", refresh=False)
            if ckpt.due(index + 1) and step < total:
                ckpt.save(
                    {
                        "model": model.name,
                        "shape": [n_cells, n_genes],
                        "epoch": index + 1,
                        "step": step,
                        "machine": machine.state(),
                        "chains": trainer.chain_state(),
                        "dispersion_fitted": trainer.dispersion_fitted,
                        "rng": get_rng_state(rng),
                        "history": train_log.history,
                    }
                )
    finally:
        bar.close()
    return machine, dev, train_log.history


class _Trainer:
    """One training run besides the parameters: persistent chains, the updates of each phase, the dispersion
    re-estimation and the monitor (a fixed subset of training cells)."""

    def __init__(
        self, model: ScDBM, machine: NegativeBinomialDBM, X: sp.csr_matrix, gene_means: np.ndarray, device: torch.device
    ) -> None:
        self.model, self.machine, self.X, self.device = model, machine, X, device
        self.p = model.params
        self.n_cells = X.shape[0]
        self.gene_means = torch.as_tensor(gene_means, dtype=torch.float32, device=device)
        self.chains: dict[str, torch.Tensor | None] = {phase: None for phase in PHASES}
        self.dispersion_fitted = False
        self.chain_means: list[torch.Tensor] = []
        self.collect_means = False
        monitor_rng = np.random.default_rng(self.model.seed)  # independent of the training stream (resume)
        n_monitor = min(self.p["monitor_cells"], self.n_cells)
        self.monitor_rows = np.sort(monitor_rng.choice(self.n_cells, n_monitor, replace=False))

    # -- bookkeeping ------------------------------------------------------------------------------------------
    def steps_per_epoch(self, phase: str) -> int:
        size = self.p["finetune_batch_size"] if phase == "dbm" else self.p["batch_size"]
        return 1 if size is None else math.ceil(self.n_cells / size)

    def chain_state(self) -> dict[str, torch.Tensor | None]:
        """The persistent chains of every phase, for checkpoints."""
        return {k: None if v is None else v.detach().cpu().clone() for k, v in self.chains.items()}

    def load_chains(self, state: Mapping[str, torch.Tensor | None]) -> None:
        self.chains = {k: None if state.get(k) is None else state[k].to(self.device) for k in PHASES}

    def _batch(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(dense_rows(self.X, rows)).to(self.device)

    def _row_blocks(self, rows: np.ndarray, block: int = 4096):
        for start in range(0, len(rows), block):
            yield self._batch(rows[start : start + block])

    # -- one epoch --------------------------------------------------------------------------------------------
    def run_epoch(self, phase: str, epoch: int, lr: float, rng: np.random.Generator, *, limit: int) -> int:
        """Train one epoch of ``phase``; returns the number of updates made (fewer when ``limit`` is reached)."""
        self.chain_means = []
        self.collect_means = self.p["dispersion_mean"] == "chains" and self.dispersion_due(phase, epoch)
        size = self.p["finetune_batch_size"] if phase == "dbm" else self.p["batch_size"]
        if size is None:
            batches = [rng.permutation(self.n_cells)]
        else:
            batches = minibatches(self.X, batch_size=size, rng=rng, drop_last=False)
        update = {"nb_rbm": self._nb_rbm_update, "bernoulli_rbm": self._bernoulli_rbm_update, "dbm": self._dbm_update}[
            phase
        ]
        if phase == "bernoulli_rbm" and epoch == 1 and self.chains["bernoulli_rbm"] is None:
            self._init_second_rbm()
        n = 0
        for rows in batches:
            if n >= limit:
                break
            update(rows, lr)
            n += 1
        return n

    def _persistent(self, phase: str, width: int, count: int) -> torch.Tensor:
        """The persistent chains of ``phase``, started at first use from uniform random states (the reference)."""
        if self.chains[phase] is None:
            self.chains[phase] = bernoulli(torch.full((count, width), 0.5, device=self.device))
        return self.chains[phase]

    # -- updates ----------------------------------------------------------------------------------------------
    def _row_scale(self, v_model: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor | None:
        """``1 / E_model[Var(v_g | h1)]`` per gene (``None`` for plain SGD): the NB part of the Fisher information of
        ``a_g``, from the model term's conditional means ``v_model`` (rows: chains, or hidden states with
        probabilities ``weight``), ``E[mu (mu + theta) / theta]``. (The variance of ``mu`` across states is left
        out: it would freeze a gene whose mean is huge in a few states.)

        Floored at one count^2 (``VAR_FLOOR``): below that, minibatch noise of rare genes would dominate the
        scaled steps. The variance grows like ``1 / eta^2`` near the boundary ``eta = 0``, so steps shrink there.
        """
        if self.p["optimizer"] != "scaled":
            return None
        theta = self.machine.theta
        if weight is None:
            weight = torch.full((v_model.shape[0],), 1.0 / v_model.shape[0], device=v_model.device)
        var = weight @ (v_model * (v_model + theta) / theta)
        return 1.0 / var.clamp(min=VAR_FLOOR)

    def _update(self, lr: float, **grads: torch.Tensor) -> None:
        """Gradient ascent ``param += lr * grad``, then the constraints (``W1 <= 0``, ``a <= -1e-10``).

        A step of an NB natural parameter (``a``, ``W1``, both ``<= 0``) goes at most half way to 0 and at most
        ``MAX_NB_STEP`` down: the NB mean grows like ``theta / |eta|`` as ``eta -> 0``, so one step onto the
        boundary would give a mean of ~1e10 (and a minibatch gradient of that size throws ``eta`` to -1e7)."""
        for key, g in grads.items():
            step = g * lr
            param = getattr(self.machine, key)
            if key in ("a", "W1"):
                step = torch.minimum(step.clamp(min=-MAX_NB_STEP), -0.5 * param)
            param.add_(step)
        self.machine.project_()

    def _rbm_gradients(self, pos, neg, row_scale: torch.Tensor | None = None):
        """Log-likelihood gradient of one RBM layer from data (``pos = (v, h)``) and model (``neg``) statistics:
        ``<v h'>_data - <v h'>_model`` and the bias differences; ``row_scale`` scales the visible units' rows."""
        (v, h), (vn, hn) = pos, neg
        g_w = v.t() @ h / len(v) - vn.t() @ hn / len(vn)
        g_v = v.mean(0) - vn.mean(0)
        if row_scale is not None:
            g_w, g_v = g_w * row_scale[:, None], g_v * row_scale
        return g_w, g_v, h.mean(0) - hn.mean(0)

    def _nb_rbm_update(self, rows: np.ndarray, lr: float) -> None:
        m, p = self.machine, self.p
        v = self._batch(rows)
        h_data = m.rbm1_hidden_prob(v)
        h = self._persistent("nb_rbm", m.hidden_sizes[0], p["pretrain_chains"] or p["batch_size"])
        for _ in range(p["cd_steps"]):
            h = bernoulli(m.rbm1_hidden_prob(sample_nb(m.visible_mean(h), m.theta)))
        self.chains["nb_rbm"] = h
        v_model = m.visible_mean(h)  # E[v | h]: the visible statistics of the chains, without sampling noise
        if self.collect_means:
            self.chain_means.append(v_model)
        g_w, g_a, g_c = self._rbm_gradients((v, h_data), (v_model, h), self._row_scale(v_model))
        self._update(lr, W1=g_w, a=g_a, c1=g_c)

    def _init_second_rbm(self) -> None:
        """The reference's start of a Bernoulli RBM: visible bias = logit of the mean data probability."""
        total = torch.zeros_like(self.machine.b1)
        for v in self._row_blocks(np.arange(self.n_cells)):
            total += self.machine.rbm1_hidden_prob(v).sum(0)
        mean = (total / self.n_cells).clamp(1e-6, 1 - 1e-6)
        self.machine.b1.copy_(torch.log(mean / (1 - mean)))

    def _bernoulli_rbm_update(self, rows: np.ndarray, lr: float) -> None:
        m, p = self.machine, self.p
        x = m.rbm1_hidden_prob(self._batch(rows))  # the second RBM's data: p(h1 | v) of the cells
        h_data = m.h2_prob(x)
        h = self._persistent("bernoulli_rbm", m.hidden_sizes[1], p["pretrain_chains"] or p["batch_size"])
        for _ in range(p["cd_steps"]):
            h = bernoulli(m.h2_prob(bernoulli(m.rbm2_visible_prob(h))))
        self.chains["bernoulli_rbm"] = h
        x_model = m.rbm2_visible_prob(h)
        g_w, g_b, g_c = self._rbm_gradients((x, h_data), (x_model, h))
        self._update(lr, W2=g_w, b1=g_b, c2=g_c)

    def _dbm_update(self, rows: np.ndarray, lr: float) -> None:
        m, p = self.machine, self.p
        # data term: mean-field posterior, sums accumulated over blocks (a full batch is never densified at once)
        s_vh, s_hh = torch.zeros_like(m.W1), torch.zeros_like(m.W2)
        s_v, s_h1, s_h2 = torch.zeros_like(m.a), torch.zeros_like(m.c1), torch.zeros_like(m.c2)
        for v in self._row_blocks(rows):
            mu1, mu2 = m.mean_field(v, tol=p["meanfield_tol"], max_iter=p["meanfield_max_iter"])
            s_vh += v.t() @ mu1
            s_hh += mu1.t() @ mu2
            s_v += v.sum(0)
            s_h1 += mu1.sum(0)
            s_h2 += mu2.sum(0)
        n = len(rows)
        # model term: weighted hidden states h1 (v and h2 enter through their conditional expectations given h1)
        if p["finetune_model_term"] == "exact":  # every one of the 2^H1 states, weighted by p(h1)
            h1 = m.hidden_states().to(m.W1.dtype)
            weight = torch.softmax(m.h1_log_weights(h1.double()), 0).to(m.W1.dtype)
        else:  # the persistent Gibbs chains
            h1 = m.gibbs(
                self._persistent("dbm", m.hidden_sizes[0], p["finetune_particles"]),
                p["finetune_gibbs_steps"],
                scheme=p["gibbs_scheme"],
            )
            self.chains["dbm"] = h1
            weight = torch.full((h1.shape[0],), 1.0 / h1.shape[0], device=self.device)
        v_model, h2_model = m.visible_mean(h1), m.h2_prob(h1)
        g_w1 = s_vh / n - v_model.t() @ (h1 * weight[:, None])
        g_a = s_v / n - weight @ v_model
        scale = self._row_scale(v_model, weight)
        if scale is not None:
            g_w1, g_a = g_w1 * scale[:, None], g_a * scale
        self._update(
            lr,
            W1=g_w1,
            a=g_a,
            c1=s_h1 / n - weight @ h1,
            W2=s_hh / n - (h1 * weight[:, None]).t() @ h2_model,
            c2=s_h2 / n - weight @ h2_model,
        )

    # -- dispersion ---------------------------------------------------------------------------------------------
    def dispersion_due(self, phase: str, epoch: int) -> bool:
        if phase == "bernoulli_rbm" or (phase == "dbm" and not self.p["finetune_dispersion"]):
            return False
        return epoch % self.p["dispersion_every"] == 0

    def _reconstruction_means(self, phase: str) -> Callable[[int, int], torch.Tensor]:
        m, p = self.machine, self.p

        def means(start: int, stop: int) -> torch.Tensor:
            v = self._batch(np.arange(start, stop))
            if phase == "dbm":
                h1 = m.mean_field(v, tol=p["meanfield_tol"], max_iter=p["meanfield_max_iter"])[0]
            else:
                h1 = m.rbm1_hidden_prob(v)
            return m.visible_mean(h1)

        return means

    def update_dispersion(self, phase: str) -> None:
        """Re-estimate ``theta`` by regularised Fisher scoring (paper eq. 9)."""
        p, m = self.p, self.machine
        with torch.no_grad():
            if p["dispersion_mean"] == "chains" and phase == "nb_rbm":
                means = torch.cat(self.chain_means)[: self.n_cells]  # the reference: chain means by position
                X = self.X[: means.shape[0]]
                mu = lambda start, stop: means[start:stop]
            else:
                X, mu = self.X, self._reconstruction_means(phase)
            theta0 = m.theta.double().cpu().numpy() if self.dispersion_fitted else None
            theta = fit_nb_dispersion(
                X, mu, lam=p["dispersion_lambda"], n_iter=p["dispersion_iter"], theta0=theta0, device=self.device
            )
        new_theta = torch.as_tensor(theta, dtype=m.theta.dtype, device=self.device)
        if p["dispersion_keep_means"]:
            m.a.add_(keep_means_shift(m.a, m.theta, new_theta, self.gene_means))
        m.theta.copy_(new_theta)
        m.project_()
        self.dispersion_fitted = True

    # -- monitoring -------------------------------------------------------------------------------------------
    def monitor(self, phase: str) -> dict[str, float | None]:
        """Reconstruction NLL (through the layers trained so far) and exact DBM NLL of the monitor cells."""
        m, p = self.machine, self.p
        recon, exact, n = 0.0, 0.0, len(self.monitor_rows)
        with torch.no_grad():
            for v in self._row_blocks(self.monitor_rows):
                if phase == "nb_rbm":
                    h1 = m.rbm1_hidden_prob(v)
                elif phase == "bernoulli_rbm":
                    h1 = m.rbm2_visible_prob(m.h2_prob(m.rbm1_hidden_prob(v)))
                else:
                    h1 = m.mean_field(v, tol=p["meanfield_tol"], max_iter=p["meanfield_max_iter"])[0]
                recon -= float(nb_log_prob(v.double(), m.eta(h1).double(), m.theta.double()).sum())
                if m.hidden_sizes[0] <= MONITOR_MAX_HIDDEN:
                    exact -= float(m.log_likelihood(v).sum())
        return {"recon_nll": recon / n, "nll": exact / n if m.hidden_sizes[0] <= MONITOR_MAX_HIDDEN else None}
