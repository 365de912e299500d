"""scDBM as a registered model (Treppner et al. 2021, Sci Rep 11:9403, Methods "Single-cell deep Boltzmann
machine", eq. 3-9): hyperparameters, training and generation through the other modules of this package."""

from __future__ import annotations

from typing import Any

import torch

from scsynth_core.errors import ConfigError
from scsynth_core.models.base import GenerativeModel
from scsynth_core.models.scdbm.dbm import NegativeBinomialDBM, train
from scsynth_core.models.scdbm.sampling import sample_cells
from scsynth_core.models.scdbm.schedule import learning_rate
from scsynth_core.models.training import flush_denormals, resolve_device


class ScDBM(GenerativeModel):
    """scDBM: negative-binomial deep Boltzmann machine on raw counts (Treppner et al. 2021).

    ``fit(adata)`` pretrains the NB-RBM (with Fisher scoring of ``theta``) and the Bernoulli RBM, then fine-tunes
    the DBM; ``sample(n)`` draws integer counts by Gibbs sampling (see docs/models.md, "scDBM", for the equations,
    the departures from the reference code and the measured behaviour). Hyperparameters (``paper`` preset =
    the paper's notebook; ``demo`` = fewer epochs; ``paper_supplement`` = the supplement's larger model):

    - ``hidden_sizes`` [4, 2], ``pretrain_epochs`` [60, 40] (NB-RBM, Bernoulli RBM), ``finetune_epochs`` 10,
      ``batch_size`` 64, ``finetune_batch_size`` 64 (``None``: one full-batch update per epoch, the reference)
    - ``optimizer`` ``"scaled"`` | ``"sgd"``; ``lr_schedule`` ``"standard"`` | ``"reference"``;
      ``learning_rate`` 0.1, ``learning_rate_rbm2`` 0.1, ``finetune_learning_rate`` 0.01 (decayed by
      ``11 / (10 + epoch)``)
    - ``cd_steps`` 1, ``pretrain_chains`` None (= ``batch_size``), ``finetune_particles`` 100,
      ``finetune_gibbs_steps`` 5, ``finetune_model_term`` ``"chains"`` | ``"exact"``, ``meanfield_tol`` 1e-3,
      ``meanfield_max_iter`` 50
    - ``theta_init`` 0.5, ``dispersion_every`` 5 (epochs), ``dispersion_lambda`` 1.0, ``dispersion_iter`` 20,
      ``dispersion_mean`` ``"reconstruction"`` | ``"chains"``, ``finetune_dispersion`` False,
      ``dispersion_keep_means`` True
    - ``sampler`` ``"gibbs"`` | ``"exact"``, ``gibbs_scheme`` ``"collapsed"`` | ``"blocked"`` (also used by the
      fine-tuning chains), ``burn_in`` 50, ``sample_chains`` None (one chain per cell), ``thinning`` 1
    - ``monitor_cells`` 1000, ``checkpoint_every`` 10 (epochs), ``max_steps`` None (parameter updates)

    Departures from the paper's notebook, each measured in docs/models.md: learning rates that learn and
    the ``scaled`` optimizer (the reference's 1e-11 leave the weights untrained: ``lr_schedule="reference"``,
    ``optimizer="sgd"``), minibatch fine-tuning (reference: ``finetune_batch_size=None``), collapsed Gibbs chains
    (paper: ``gibbs_scheme="blocked"``) and mean-preserving dispersion updates (``dispersion_keep_means``).
    """

    name = "scdbm"  # presets and hyperparameter types: scsynth_core.models.specs.scdbm

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._machine: NegativeBinomialDBM | None = None
        self._device = torch.device("cpu")
        self._sampling: dict[str, Any] | None = None

    # -- learning rates ---------------------------------------------------------------------------------------
    def lr_at(self, phase: str, epoch: int) -> float:
        """Learning rate of 1-based ``epoch`` of ``phase`` under ``lr_schedule``."""
        return learning_rate(self.params, phase, epoch)

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        with flush_denormals():
            machine, dev, history = train(
                self, adata, seed=seed, device=device, max_steps=max_steps, progress=progress, checkpoint=checkpoint
            )
        self._machine, self._device = machine, dev
        return history

    # -- generation -------------------------------------------------------------------------------------------
    @property
    def machine(self) -> NegativeBinomialDBM:
        """The fitted :class:`NegativeBinomialDBM`."""
        if self._machine is None:
            raise ConfigError(f"model '{self.name}' is not fitted: call fit() or load() first")
        return self._machine

    def _start_sampling(self, seed: int) -> None:
        self._sampling = {"h1": None, "leftover": None}
        _ = self.machine

    def _sample_chunk(self, n, labels, rng):
        machine = self.machine
        gen = torch.Generator(self._device).manual_seed(int(rng.integers(0, 2**63 - 1)))
        return sample_cells(machine, self.params, n, gen, self._sampling, self._device)

    # -- state ------------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        return {"machine": self.machine.state()}

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        self._device = resolve_device(device)
        self._machine = NegativeBinomialDBM.from_state(state["machine"], self._device)
