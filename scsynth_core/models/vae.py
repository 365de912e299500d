"""VAE and beta-TCVAE of MichiGAN's comparison (Yu & Welch 2021, Genome Biology 22:158, Methods "Variational
autoencoders", "beta-TCVAE"; Chen et al. 2018, "Isolating sources of disentanglement in VAEs", NeurIPS, eq. 2-4
and Sec. 4.1): 10-dimensional codes of ``log1p`` expression, the total correlation weighted by ``beta``.

Networks, the loss and its ``tc_form`` variants, gene scaling (``scale_genes``), departures from the reference
code (welch-lab/MichiGAN) and the measurements behind them: docs/models.md, "VAE and beta-TCVAE".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from scsynth_core.data.preprocess import gene_mean_sd, to_representation
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.base import GenerativeModel
from scsynth_core.models.batches import EpochBatches
from scsynth_core.models.capabilities import CodeConditioned, PosteriorSampling
from scsynth_core.models.monitors import held_out_monitor
from scsynth_core.models.nn import linear, normed_forward, normed_layers
from scsynth_core.models.scgan import Generator, generate_csr
from scsynth_core.models.specs.vae import TC_FORMS
from scsynth_core.models.training import (
    TrainingLoop,
    TrainingTask,
    dense_rows,
    resolve_device,
    seed_everything,
)

if TYPE_CHECKING:
    import anndata as ad

#: TF ``tf.layers.batch_normalization`` defaults (decay 0.99, eps 1e-3) as torch-style momentum and eps.
TF_BN_MOMENTUM = 0.01
TF_BN_EPS = 1e-3
_LOG_2PI = math.log(2.0 * math.pi)
#: Rows encoded or decoded at a time.
_ENCODE_ROWS = 4096


# ------------------------------------------------------------------------------------------------- estimators
def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise ``log N(z; mu, exp(logvar))`` (broadcasting)."""
    return -0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + _LOG_2PI)


def mss_log_weights(batch_size: int, dataset_size: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Log importance weights ``[B, B]`` of minibatch stratified sampling (Chen et al. 2018, Appendix C.2).

    Row ``i`` estimates ``q(z_i) = 1/N sum_n q(z_i | n)`` from the batch: the cell ``z_i`` came from weighs
    ``1/N``, one other cell (the next one, cyclically) ``1/M - 1/N`` and the remaining ``B - 2`` cells ``1/M``
    each, ``M = B - 1``; every row sums to 1. (Chen et al.'s code gives the ``1/M - 1/N`` weight of the last row
    to the second-to-last; MichiGAN's reference gives one such weight per row, as here.)
    """
    B, N = int(batch_size), int(dataset_size)
    if B < 2:
        raise DataError(f"the MSS estimator needs a minibatch of at least 2 cells, got {B}")
    if N < B:
        raise DataError(f"dataset_size ({N}) must be at least the minibatch size ({B})")
    M = B - 1
    weights = torch.full((B, B), 1.0 / M, device=device, dtype=torch.float64)
    rows = torch.arange(B, device=device)
    weights[rows, rows] = 1.0 / N
    weights[rows, (rows + 1) % B] = 1.0 / M - 1.0 / N
    return weights.log().to(dtype)


def total_correlation(z, mu, logvar, dataset_size: int) -> torch.Tensor:
    """Minibatch-stratified-sampling estimate of ``TC = KL(q(z) || prod_j q(z_j))`` (Chen et al. 2018, Sec. 4.1).

    ``q(z)`` is the aggregate posterior over a training set of ``dataset_size`` cells with diagonal Gaussian
    posteriors ``q(z|x) = N(mu(x), exp(logvar(x)))``. For a minibatch of ``B`` cells with samples ``z_i ~
    q(z|x_i)``, ``log q(z_i)`` and each ``log q(z_ij)`` are log-sum-exps of the batch's posterior densities at
    ``z_i`` with the MSS weights of :func:`mss_log_weights`; the estimate is ``mean_i [log q(z_i) - sum_j log
    q(z_ij)]`` (differentiable). Independent codes give ~0; dependent codes give the mutual information between
    dims.

    Parameters
    ----------
    z, mu, logvar
        ``B x D`` samples, posterior means and log-variances (torch tensors or arrays).
    dataset_size
        Number of cells ``N`` the minibatch was drawn from.
    """
    z, mu, logvar = (torch.as_tensor(v) for v in (z, mu, logvar))
    if not (z.ndim == 2 and z.shape == mu.shape == logvar.shape):
        raise DataError(
            f"z, mu and logvar must be B x D of one shape, got {tuple(z.shape)}, {tuple(mu.shape)}, "
            f"{tuple(logvar.shape)}"
        )
    log_w = mss_log_weights(z.shape[0], dataset_size, device=z.device, dtype=z.dtype)
    # log q(z_i,d | x_j): every sample against every posterior in the batch, B x B x D.
    log_q = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_q_joint = torch.logsumexp(log_w + log_q.sum(dim=2), dim=1)
    log_q_marginals = torch.logsumexp(log_w[:, :, None] + log_q, dim=1)
    return (log_q_joint - log_q_marginals.sum(dim=1)).mean()


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-cell ``KL(N(mu, exp(logvar)) || N(0, I))``, summed over dims."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Per-cell ``-log N(x; mean, I)`` over genes, constant included."""
    return 0.5 * ((x - mean) ** 2).sum(dim=1) + 0.5 * x.shape[1] * _LOG_2PI


def beta_tcvae_loss(
    x: torch.Tensor,
    mean: torch.Tensor,
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    beta: float,
    dataset_size: int,
    tc_form: str = "chen",
) -> dict[str, torch.Tensor]:
    """The minibatch loss and its terms (``loss``, ``reconstruction``, ``kl``, ``tc``), per cell and averaged:
    ``-log N(x; mean, I) + KL(q(z|x) || N(0, I)) + w * TC``; see docs/models.md.

    * ``tc_form="chen"`` (default, the paper's form): ``w = beta - 1``, so TC is weighted by ``beta`` in total and
      index-code MI and dimension-wise KL by 1: Chen et al. 2018 eq. 4 with alpha = gamma = 1 (the KL split of
      eq. 2-3), the beta-TCVAE objective of Yu & Welch 2021, Methods "beta-TCVAE". ``beta = 1`` is the ELBO.
    * ``tc_form="reference"``: ``w = beta``, TC added on top of the full KL (TC weight ``beta + 1``), as the
      reference code's loss (welch-lab/MichiGAN ``FunctionProgramExamples``: ``+ 100 * TC``).

    The two forms differ by exactly ``1 x TC``."""
    if tc_form not in TC_FORMS:
        raise ConfigError(f"tc_form must be one of {', '.join(TC_FORMS)}, got '{tc_form}'")
    reconstruction = gaussian_nll(x, mean).mean()
    kl = kl_to_standard_normal(mu, logvar).mean()
    tc = total_correlation(z, mu, logvar, dataset_size)
    weight = beta - 1.0 if tc_form == "chen" else beta
    loss = reconstruction + kl + weight * tc if weight else reconstruction + kl
    return {"loss": loss, "reconstruction": reconstruction, "kl": kl, "tc": tc}


# ---------------------------------------------------------------------------------------------------- networks
def hidden_activations(n_layers: int, *, last: str = "relu") -> tuple[str, ...]:
    """MichiGAN's pattern: leaky ReLU on every hidden layer but the last (``last``)."""
    return ("leaky_relu",) * (n_layers - 1) + (last,) if n_layers else ()


class Encoder(nn.Module):
    """genes -> hidden layers (Linear -> BN -> leaky ReLU / last ReLU -> dropout) -> (mu, logvar)."""

    def __init__(self, n_genes: int, *, latent_dim: int = 10, widths=(512, 256), dropout: float = 0.2) -> None:
        super().__init__()
        self.n_genes, self.latent_dim, self.dropout = int(n_genes), int(latent_dim), float(dropout)
        sizes = [self.n_genes, *map(int, widths)]
        self.linears, self.norms = normed_layers(sizes, momentum=TF_BN_MOMENTUM, eps=TF_BN_EPS)
        self.activations = hidden_activations(len(widths))
        self.mu = linear(sizes[-1], self.latent_dim, init="glorot")
        self.logvar = linear(sizes[-1], self.latent_dim, init="glorot")
        # Per-gene standardisation of the input (``scale_genes``); identity unless set by the model.
        self.register_buffer("input_mean", torch.zeros(self.n_genes))
        self.register_buffer("input_scale", torch.ones(self.n_genes))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.standardise(x)
        h = normed_forward(h, self.linears, self.norms, self.activations, dropout=self.dropout, training=self.training)
        return self.mu(h), self.logvar(h)


@torch.no_grad()
def _unstandardise_output(decoder: Generator, encoder: Encoder) -> None:
    """Fold the inverse of the encoder's input standardisation into the decoder's output layer, so the trained
    decoder maps codes straight to ``log1p`` values: ``(W h + b) * s + m = (s W) h + (s b + m)``."""
    scale, mean = encoder.input_scale, encoder.input_mean
    decoder.output.weight.mul_(scale[:, None])
    decoder.output.bias.mul_(scale).add_(mean)


def build_decoder(n_genes: int, *, latent_dim: int, widths, dropout: float) -> Generator:
    """The VAE decoder: a linear-output scGAN :class:`Generator` with leaky ReLUs and TF batch-norm defaults."""
    return Generator(
        n_genes,
        latent_dim=latent_dim,
        widths=widths,
        activations=("leaky_relu",) * len(widths),
        dropout=dropout,
        output="linear",
        output_init="glorot",
        bn_momentum=TF_BN_MOMENTUM,
        bn_eps=TF_BN_EPS,
    )


# ----------------------------------------------------------------------------------------------- shared helpers
def log1p_rows(X, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Selected rows of a count matrix in the ``log1p`` representation (a minibatch, never the whole matrix)."""
    return to_representation(torch.from_numpy(dense_rows(X, rows)), "log1p").to(device, non_blocking=True)


def check_genes(model: GenerativeModel, adata: ad.AnnData) -> None:
    """Cells to encode must have the training genes, in the training order."""
    if model.var_names is None:
        raise ConfigError(f"model '{model.name}' is not fitted: call fit() or load() first")
    if [str(v) for v in adata.var_names] != model.var_names:
        raise DataError(
            f"model '{model.name}': the cells' genes differ from the {len(model.var_names)} training "
            "genes (same genes in the same order needed)"
        )


def epoch_plan(model: GenerativeModel, adata, max_steps: int | None) -> tuple[Any, int, int]:
    """``(X, steps_per_epoch, total_steps)`` of a minibatch training loop over ``epochs`` shuffled epochs.

    ``X`` stays sparse (CSR) when it is; the last incomplete batch of an epoch is dropped; the ``max_steps``
    hyperparameter (when not null) caps the epochs' steps, and ``fit(max_steps=...)`` replaces both. At least 2
    cells are needed for batch normalisation.
    """
    p = model.params
    X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
    if X.shape[0] < 2:
        raise DataError(f"model '{model.name}' needs at least 2 training cells (batch normalisation)")
    per_epoch = max(1, X.shape[0] // p["batch_size"])
    total = p["epochs"] * per_epoch
    if p.get("max_steps") is not None:
        total = min(total, int(p["max_steps"]))
    if max_steps is not None:
        total = int(max_steps)
    if total < 1:
        raise ConfigError(f"model '{model.name}': max_steps must be >= 1, got {total}")
    return X, per_epoch, total


class _VAETask(TrainingTask):
    """One beta-TCVAE minibatch step for :class:`~scsynth_core.models.training.TrainingLoop`."""

    generator_names = ("encoder", "decoder")
    representation = "log1p"

    def __init__(
        self,
        model: VAE,
        X,
        train_rows: np.ndarray,
        encoder: Encoder,
        decoder: Generator,
        *,
        rng: np.random.Generator,
        device: torch.device,
        per_epoch: int,
    ) -> None:
        p = model.params
        self.p, self.X, self.train_rows, self.device, self.per_epoch = p, X, train_rows, device, per_epoch
        self.encoder, self.decoder = encoder, decoder
        self.modules = {"encoder": encoder, "decoder": decoder}
        self.optimizers = {
            "adam": torch.optim.Adam(
                [*encoder.parameters(), *decoder.parameters()], lr=p["learning_rate"], betas=(0.9, 0.999), eps=1e-8
            )
        }
        self.batches = EpochBatches(len(train_rows), p["batch_size"], rng)

    def step(self, step: int) -> dict[str, torch.Tensor]:
        x = log1p_rows(self.X, self.train_rows[self.batches.next()], self.device)
        mu, logvar = self.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        terms = beta_tcvae_loss(
            self.encoder.standardise(x),
            self.decoder(z),
            z,
            mu,
            logvar,
            beta=self.p["beta"],
            dataset_size=len(self.train_rows),
            tc_form=self.p["tc_form"],
        )
        optimizer = self.optimizers["adam"]
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return {
            "loss": terms["loss"],
            "reconstruction": terms["reconstruction"],
            "kl": terms["kl"],
            "total_correlation": terms["tc"],
        }

    def log_columns(self, step: int) -> dict[str, Any]:
        return {"epoch": (step - 1) // self.per_epoch + 1}

    @torch.no_grad()
    def generate(self, n: int, seed: int):
        """Decoded prior codes as ``log1p`` values (the standardisation is undone here, folded in after training)."""
        z = torch.randn(
            n, self.encoder.latent_dim, device=self.device, generator=torch.Generator(self.device).manual_seed(seed)
        )
        self.decoder.eval()
        values = self.decoder(z) * self.encoder.input_scale + self.encoder.input_mean
        return sp.csr_matrix(values.clamp_min_(0.0).cpu().numpy())

    def train_mode(self) -> None:
        active = self.p["batchnorm_dropout"] == "active"
        self.encoder.train(active)
        self.decoder.train(active)

    def state(self) -> dict[str, Any]:
        return {"batches": self.batches.state()}

    def load_state(self, state) -> None:
        self.batches.load(state["batches"])


# --------------------------------------------------------------------------------------------------- the model
class VAE(CodeConditioned, PosteriorSampling, GenerativeModel):
    """Gaussian VAE of MichiGAN's comparison (``beta = 1``); see docs/models.md.

    Hyperparameters (``paper`` preset): ``latent_dim`` 10, ``encoder_layers`` [512, 256], ``decoder_layers``
    [256, 512], ``dropout`` 0.2, ``beta`` (1 here, 10 for ``betatcvae``), ``tc_form`` "chen" | "reference",
    ``batchnorm_dropout`` "active" | "inert", ``scale_genes`` True, ``batch_size`` 128, ``learning_rate`` 1e-4,
    ``epochs`` 1000 (the paper's; training steps = epochs x ``n // batch_size``; ``fit(max_steps=...)`` caps
    them), ``log_every`` 10 steps, ``checkpoint_every`` 1000 steps. ``workstation``: the reference script's 100
    epochs with the realism monitor every 200 steps and a 10-minute budget. ``demo``: learning rate 1e-3 for 150 epochs (same
    networks and loss).
    """

    name = "vae"  # presets and hyperparameter types: scsynth_core.models.specs.vae

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._encoder: Encoder | None = None
        self._decoder: Generator | None = None
        self._device = torch.device("cpu")

    @property
    def code_dim(self) -> int:
        return int(self.params["latent_dim"])

    def _build(self, n_genes: int, device: torch.device) -> tuple[Encoder, Generator]:
        p = self.params
        encoder = Encoder(n_genes, latent_dim=p["latent_dim"], widths=p["encoder_layers"], dropout=p["dropout"])
        decoder = build_decoder(n_genes, latent_dim=p["latent_dim"], widths=p["decoder_layers"], dropout=p["dropout"])
        return encoder.to(device), decoder.to(device)

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        p = self.params
        dev = resolve_device(device)
        X, per_epoch, total = epoch_plan(self, adata, max_steps)
        n_cells, n_genes = X.shape
        monitor, _, train_rows = held_out_monitor(p, X, seed=seed)
        rng = seed_everything(seed)
        encoder, decoder = self._build(n_genes, dev)
        if p["scale_genes"]:
            mean, sd = gene_mean_sd(X[train_rows], "log1p")
            encoder.input_mean.copy_(torch.from_numpy(mean))
            encoder.input_scale.copy_(torch.from_numpy(sd))
        task = _VAETask(self, X, train_rows, encoder, decoder, rng=rng, device=dev, per_epoch=per_epoch)
        loop = TrainingLoop(
            self.name,
            p,
            max_steps=total,
            rng=rng,
            monitor=monitor,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            identity={"shape": [n_cells, n_genes]},
        )
        history = loop.run(task)
        self.training_summary = loop.summary
        _unstandardise_output(decoder, encoder)
        self._encoder, self._decoder, self._device = encoder.eval(), decoder.eval(), dev
        return history

    # -- codes ------------------------------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self._encoder is None:
            raise ConfigError(f"model '{self.name}' is not fitted: call fit() or load() first")

    @torch.inference_mode()
    def posterior(self, adata: ad.AnnData) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances (cells x latent_dim, float32) of cells given as raw counts."""
        from scsynth_core.data.checks import check_counts

        self._require_fitted()
        check_genes(self, adata)
        check_counts(adata.X, where=f"model '{self.name}' cells to encode (X)")
        X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
        mus, logvars = [], []
        for start in range(0, X.shape[0], _ENCODE_ROWS):
            rows = np.arange(start, min(start + _ENCODE_ROWS, X.shape[0]))
            mu, logvar = self._encoder(log1p_rows(X, rows, self._device))
            mus.append(mu.cpu().numpy())
            logvars.append(logvar.cpu().numpy())
        return np.concatenate(mus), np.concatenate(logvars)

    def encode(self, adata: ad.AnnData, *, sample: bool = False, seed: int = 0) -> np.ndarray:
        """Codes of cells (raw counts in ``X``, the training genes): posterior means, or with ``sample=True`` one
        draw ``mu + exp(logvar / 2) eps`` per cell (``eps`` from ``seed``). Cells x latent_dim, float32."""
        mu, logvar = self.posterior(adata)
        if not sample:
            return mu
        eps = np.random.default_rng(seed).standard_normal(mu.shape).astype(np.float32)
        return mu + np.exp(0.5 * logvar) * eps

    # -- generation -------------------------------------------------------------------------------------------
    def _code_centre(self) -> np.ndarray:
        return np.zeros(self.code_dim, dtype=np.float32)  # the prior mean

    def _draw_codes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.code_dim)).astype(np.float32)

    def _decode(self, codes: np.ndarray, rng: np.random.Generator, shared: bool):
        self._require_fitted()
        return generate_csr(self._decoder, torch.from_numpy(np.ascontiguousarray(codes)).to(self._device))

    # -- state ------------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "encoder": {k: v.detach().cpu() for k, v in self._encoder.state_dict().items()},
            "decoder": {k: v.detach().cpu() for k, v in self._decoder.state_dict().items()},
            "n_genes": self._encoder.n_genes,
        }

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        dev = resolve_device(device)
        encoder, decoder = self._build(int(state["n_genes"]), dev)
        # Models saved before ``scale_genes`` existed have no input statistics: their input was unscaled.
        encoder.load_state_dict(dict(encoder.state_dict()) | dict(state["encoder"]))
        decoder.load_state_dict(state["decoder"])
        self._encoder, self._decoder, self._device = encoder.eval(), decoder.eval(), dev


class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al. 2018) as in MichiGAN: the :class:`VAE` with total correlation weighted by ``beta``
    (default 10, the paper's value for simulated data; 50 PROSSTT/pancreas, 100 real data)."""

    name = "betatcvae"
