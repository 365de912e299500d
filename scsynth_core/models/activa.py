"""ACTIVA (Heydari et al. 2022, Bioinformatics 38(8), eq. 2-6): an introspective VAE (Huang et al. 2018)
conditioned on the ACTINN cell-type classifier (Ma & Pellegrini 2020), on library-size-normalised cells.

Networks, the paper's and the reference code's update rules, weights, schedule, generation (batch-norm
recalibration, classifier-filtered cell types) and the measurements behind each default: docs/models.md,
"ACTIVA".
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from scsynth_core.data.preprocess import LSN_EPS, LSN_TARGET, lsn
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.actinn import (
    ACTINN,
    ActinnNet,
    ClassifierTrainer,
    epoch_batches,
    label_codes,
    lsn_batch,
    train_classifier,
)
from scsynth_core.models.base import GenerativeModel, SampledCells
from scsynth_core.models.monitors import held_out_monitor
from scsynth_core.models.nn import batchnorm_momentum, block_rows, dense_block, dense_stack
from scsynth_core.models.specs.activa import ENCODER_HEADS
from scsynth_core.models.training import (
    TrainingLoop,
    TrainingTask,
    TrainLog,
    flush_denormals,
    resolve_device,
    seed_everything,
)

if TYPE_CHECKING:
    import anndata as ad

log = logging.getLogger(__name__)

#: Training-mode batches of N(0, I) codes whose statistics become the decoder's BN statistics for generation.
BN_CALIBRATION_BATCHES = 100

#: History columns (``train_log.tsv``) besides ``step``, ``epoch``, ``phase`` and ``time_s``; epoch means.
LOSS_COLUMNS = (
    "vae_loss",
    "encoder_loss",
    "decoder_loss",
    "kl_real",
    "kl_rec",
    "kl_fake",
    "rec",
    "ct",
    "classifier_loss",
    "classifier_accuracy",
)


# ------------------------------------------------------------------------------------------------ loss terms
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``L_REG`` per cell: ``-1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))`` (KL to N(0, I))."""
    return -0.5 * (1.0 + logvar - mu.square() - logvar.exp()).sum(dim=1)


def reconstruction_error(x_rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``L_AE`` per cell: the sum over genes of squared errors."""
    return (x_rec - x).square().sum(dim=1)


def cell_type_loss(logits_rec: torch.Tensor, logits_real: torch.Tensor, *, update: str = "paper") -> torch.Tensor:
    """``L_CT`` (eq. 5) on ACTINN logits: ``1/2 sum_types (C(x) - C(x_r))^2`` averaged over cells (``"paper"``);
    ``"reference"``: the code's ``classification_loss``, summed over cells and types without the 1/2."""
    per_cell = (logits_rec - logits_real).square().sum(dim=1)
    return per_cell.sum() if update == "reference" else 0.5 * per_cell.mean()


def margin_hinge(kl: torch.Tensor, margin: float) -> torch.Tensor:
    """``[m - L_REG]^+`` of a (batch-mean) KL."""
    return F.relu(margin - kl)


# ---------------------------------------------------------------------------------------------------- networks
#: Linear -> ReLU -> BatchNorm1d, the reference's layer order; each hidden layer its own Sequential (its keys).
LAYER_ORDER = ("linear", "act", "norm")


class Encoder(nn.Module):
    """LSN cells (n x genes) -> (mu, logvar), each n x latent."""

    def __init__(self, n_genes: int, *, latent_dim: int = 128, widths=(1024, 512, 256), head: str = "linear"):
        super().__init__()
        if head not in ENCODER_HEADS:
            raise ConfigError(f"encoder_head must be one of {', '.join(ENCODER_HEADS)}, got '{head}'")
        self.n_genes, self.latent_dim, self.head_kind = int(n_genes), int(latent_dim), head
        sizes = [self.n_genes, *map(int, widths)]
        self.hidden = dense_stack(sizes, LAYER_ORDER, nested=True)
        self.head = (
            dense_block(sizes[-1], 2 * self.latent_dim, LAYER_ORDER)
            if head == "reference"
            else nn.Linear(sizes[-1], 2 * self.latent_dim)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.hidden(x)).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """Latent codes (n x latent) -> cells (n x genes): ReLU output, optional LSN layer and threshold."""

    def __init__(
        self,
        n_genes: int,
        *,
        latent_dim: int = 128,
        widths=(256, 512, 1024),
        output_lsn: bool = False,
        output_threshold: float = 0.0,
        lsn_target: float = LSN_TARGET,
    ) -> None:
        super().__init__()
        self.n_genes, self.latent_dim = int(n_genes), int(latent_dim)
        self.output_lsn, self.output_threshold = bool(output_lsn), float(output_threshold)
        self.lsn_target = float(lsn_target)
        sizes = [self.latent_dim, *map(int, widths)]
        self.hidden = dense_stack(sizes, LAYER_ORDER, nested=True)
        self.output = nn.Linear(sizes[-1], self.n_genes)

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        """Output activation: ReLU, the LSN layer if enabled, then values ``<= t`` set to 0 if ``t > 0``.

        Without the LSN layer this is the reference's ``nn.Threshold(t, 0)``; with it the threshold is applied in
        LSN units (the units of the training data), after the normalisation.
        """
        y = F.relu(y)
        if self.output_lsn:
            y = lsn(y, target_sum=self.lsn_target)
        return F.threshold(y, self.output_threshold, 0.0) if self.output_threshold > 0 else y

    def activate_(self, y: torch.Tensor) -> torch.Tensor:
        """In-place :meth:`activate` (generation)."""
        y.relu_()
        if self.output_lsn:
            y.mul_(self.lsn_target / (y.sum(dim=1, keepdim=True) + LSN_EPS))
        if self.output_threshold > 0:
            F.threshold_(y, self.output_threshold, 0.0)
        return y

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.activate(self.output(self.hidden(z)))


# --------------------------------------------------------------------------------------- introspective steps
def _params(module: nn.Module) -> list[nn.Parameter]:
    return [q for q in module.parameters() if q.requires_grad]


@torch.no_grad()
def recalibrate_batchnorm(
    decoder: Decoder, *, batch_size: int, n_batches: int = BN_CALIBRATION_BATCHES, seed: int = 0
) -> Decoder:
    """Set the decoder's BatchNorm running statistics to those of its training-mode prior batches (in place).

    Training normalises every batch of prior codes with its own statistics; the running statistics average
    prior and posterior batches, so evaluation-mode generation from N(0, I) would see other statistics than
    training did. Cumulative averages (``momentum=None``) over ``n_batches`` training-mode passes of
    ``batch_size`` N(0, I) codes replace them; only the hidden layers hold BN, so the output layer is skipped.
    Returns the decoder in evaluation mode.
    """
    device = decoder.output.weight.device
    gen = torch.Generator(device).manual_seed(int(seed))
    with batchnorm_momentum(decoder.hidden, None) as norms:
        for m in norms:
            m.reset_running_stats()
        decoder.train()
        for _ in range(int(n_batches)):
            decoder.hidden(torch.randn(max(int(batch_size), 2), decoder.latent_dim, device=device, generator=gen))
    return decoder.eval()


def activa_losses(
    encoder: Encoder,
    decoder: Decoder,
    classifier: ActinnNet | None,
    x: torch.Tensor,
    *,
    eps: torch.Tensor,
    z_p: torch.Tensor,
    alpha1: float,
    alpha2: float,
    margin: float,
    update: str = "paper",
) -> dict[str, torch.Tensor]:
    """The introspective objectives written out as in the equations (for reading and for tests).

    Returns ``encoder_loss`` (``L_E``, to differentiate w.r.t. the encoder) and ``decoder_loss`` (``L_G``, w.r.t.
    the decoder) with their terms; ``kl_rec``/``kl_fake`` are the encoder's view (detached inputs),
    ``kl_rec_g``/``kl_fake_g`` the generator's (not detached in the paper update). Training uses
    :func:`introspective_gradients`, which computes the same gradients with fewer passes.
    """
    mu, logvar = encoder(x)
    z = mu + (0.5 * logvar).exp() * eps
    x_r, x_g = decoder(z), decoder(z_p)
    kl_real = kl_divergence(mu, logvar).mean()
    rec = reconstruction_error(x_r, x).mean()
    ct = torch.zeros((), device=x.device)
    if classifier is not None:
        with torch.no_grad():
            logits_real = classifier(x)
        ct = cell_type_loss(classifier(x_r), logits_real, update=update)
    kl_rec_e = kl_divergence(*encoder(x_r.detach())).mean()
    kl_fake_e = kl_divergence(*encoder(x_g.detach())).mean()
    encoder_loss = (
        kl_real + alpha1 * (margin_hinge(kl_rec_e, margin) + margin_hinge(kl_fake_e, margin)) + alpha2 * (rec + ct)
    )
    if update == "paper":
        kl_rec_g, kl_fake_g = kl_divergence(*encoder(x_r)).mean(), kl_divergence(*encoder(x_g)).mean()
        decoder_loss = alpha1 * (kl_rec_g + kl_fake_g) + alpha2 * (rec + ct)
    else:  # the code's G step: detached inputs (weight_kl * 0.5 = 2 * alpha1), plus L_E's retained gradient
        kl_rec_g, kl_fake_g = kl_rec_e, kl_fake_e
        decoder_loss = 2 * alpha1 * 0.5 * (kl_rec_g + kl_fake_g) + alpha2 * (rec + ct)
    return {
        "encoder_loss": encoder_loss,
        "decoder_loss": decoder_loss,
        "kl_real": kl_real,
        "kl_rec": kl_rec_e,
        "kl_fake": kl_fake_e,
        "kl_rec_g": kl_rec_g,
        "kl_fake_g": kl_fake_g,
        "rec": rec,
        "ct": ct,
    }


def introspective_gradients(
    encoder: Encoder,
    decoder: Decoder,
    classifier: ActinnNet | None,
    x: torch.Tensor,
    *,
    eps: torch.Tensor,
    z_p: torch.Tensor,
    alpha1: float,
    alpha2: float,
    margin: float,
    update: str = "paper",
) -> dict[str, torch.Tensor]:
    """Set ``.grad`` of the encoder to ``dL_E/dθ_E`` and of the decoder to ``dL_G/dθ_D``; return the terms.

    Paper update, three passes: (A) ``L_E`` w.r.t. the encoder; (B) ``alpha1 sum_s L_REG(Enc(x_s))`` w.r.t. the
    encoder's INPUTS ``x_s`` (one encoder application on detached copies of ``x_s`` serves the hinge of ``L_E``
    and, through these input gradients, the adversarial term of ``L_G``); (C) ``alpha2 (L_AE + L_CT) +
    <x_r, g_r> + <x_g, g_g>`` w.r.t. the decoder. Reference update: one pass of ``L_E`` w.r.t. both networks.
    Encoder, decoder and classifier are evaluated once each per input, at the current weights.
    """
    enc_params, dec_params = _params(encoder), _params(decoder)
    mu, logvar = encoder(x)
    z = mu + (0.5 * logvar).exp() * eps
    x_r, x_g = decoder(z), decoder(z_p)
    kl_real = kl_divergence(mu, logvar).mean()
    rec = reconstruction_error(x_r, x).mean()
    ct = torch.zeros((), device=x.device)
    if classifier is not None:
        with torch.no_grad():
            logits_real = classifier(x)
        ct = cell_type_loss(classifier(x_r), logits_real, update=update)
    paper = update == "paper"
    xr_in = x_r.detach().requires_grad_(paper)
    xg_in = x_g.detach().requires_grad_(paper)
    kl_rec = kl_divergence(*encoder(xr_in)).mean()
    kl_fake = kl_divergence(*encoder(xg_in)).mean()
    vae_part = alpha2 * (rec + ct)
    hinges = [margin_hinge(kl_rec, margin), margin_hinge(kl_fake, margin)]
    encoder_loss = kl_real + alpha1 * (hinges[0] + hinges[1]) + vae_part
    # An inactive hinge ([m - KL]^+ = 0) has zero gradient: leave it out of the backward pass (saves the
    # encoder's weight gradients on that input, two of the step's largest matrix products).
    active = [h for h in hinges if h.item() > 0]
    objective = kl_real + vae_part + (alpha1 * sum(active) if active else 0.0)
    if paper:
        grads_e = torch.autograd.grad(objective, enc_params, retain_graph=True)
        g_r, g_g = torch.autograd.grad(alpha1 * (kl_rec + kl_fake), [xr_in, xg_in])
        surrogate = vae_part + (x_r * g_r).sum() + (x_g * g_g).sum()
        grads_d = torch.autograd.grad(surrogate, dec_params)
        decoder_loss = alpha1 * (kl_rec + kl_fake) + vae_part
    else:
        grads = torch.autograd.grad(objective, enc_params + dec_params)
        grads_e, grads_d = grads[: len(enc_params)], grads[len(enc_params) :]
        decoder_loss = alpha1 * (kl_rec + kl_fake) + vae_part
    for q, g in zip(enc_params, grads_e):
        q.grad = g
    for q, g in zip(dec_params, grads_d):
        q.grad = g
    return {
        "encoder_loss": encoder_loss.detach(),
        "decoder_loss": decoder_loss.detach(),
        "kl_real": kl_real.detach(),
        "kl_rec": kl_rec.detach(),
        "kl_fake": kl_fake.detach(),
        "rec": rec.detach(),
        "ct": ct.detach(),
    }


# ----------------------------------------------------------------------------------------- sparse generation
#: Output block size on the CPU: 2^22 floats, 16 MiB (stays in cache).
_CPU_BLOCK_FLOATS = 1 << 22


@torch.inference_mode()
def decode_csr(
    decoder: Decoder, z: torch.Tensor, *, classifier: ActinnNet | None = None, accept=None
) -> tuple[sp.csr_matrix, torch.Tensor | None, torch.Tensor | None]:
    """Decode ``z`` (n x latent) to a float32 CSR matrix without a dense n x genes array.

    The decoder must be in evaluation mode. Rows are decoded in blocks (one ``addmm`` into a reused buffer,
    activation in place); with a ``classifier`` every block is classified (softmax probabilities) and
    ``accept(probs) -> bool mask`` may drop rows before they are stored. Returns the kept cells, their
    probabilities (or ``None``) and the kept row indices into ``z`` (or ``None`` when all are kept). Equal to
    ``decoder(z)`` (rows where accepted).
    """
    n, genes, device = z.shape[0], decoder.n_genes, z.device
    rows = block_rows(genes, device, cpu_floats=_CPU_BLOCK_FLOATS)
    weight_t, bias = decoder.output.weight.t(), decoder.output.bias
    buffer = torch.empty(min(rows, max(n, 1)), genes, device=device, dtype=weight_t.dtype)
    data, indices, counts, probs_out, kept_out = [], [], [], [], []
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        y = torch.addmm(bias, decoder.hidden(z[start:stop]), weight_t, out=buffer[: stop - start])
        decoder.activate_(y)
        probs = None
        if classifier is not None:
            probs = torch.softmax(classifier(y), dim=1)
            if accept is not None:
                keep = accept(probs)
                kept = keep.nonzero().squeeze(1)
                y, probs = y[kept], probs[kept]
                kept_out.append(kept.cpu() + start)
            probs_out.append(probs.cpu())
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = y.to_sparse_csr()
        data.append(csr.values().cpu())
        indices.append(csr.col_indices().to(torch.int32).cpu())
        counts.append(torch.diff(csr.crow_indices()).cpu())
    indptr = np.zeros(sum(len(c) for c in counts) + 1, dtype=np.int64)
    if counts:
        np.cumsum(torch.cat(counts).numpy(), out=indptr[1:])
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    empty = np.empty(0, dtype=np.float32)
    X = sp.csr_matrix(
        (
            torch.cat(data).numpy() if data else empty,
            torch.cat(indices).numpy() if indices else empty.astype(np.int32),
            indptr,
        ),
        shape=(len(indptr) - 1, genes),
    )
    probs_all = torch.cat(probs_out) if probs_out else None
    kept_all = torch.cat(kept_out) if kept_out else None
    return X, probs_all, kept_all


class _ActivaTask(TrainingTask):
    """ACTIVA's epoch schedule (VAE warm-up, then introspective steps) for :class:`TrainingLoop`."""

    generator_names = ("decoder",)
    representation = "lsn"

    def __init__(
        self,
        model: ACTIVA,
        X,
        train_rows: np.ndarray,
        codes: np.ndarray | None,
        encoder: Encoder,
        decoder: Decoder,
        classifier: ActinnNet | None,
        trainer: ClassifierTrainer | None,
        *,
        rng: np.random.Generator,
        device: torch.device,
        steps_per_epoch: int,
    ) -> None:
        p = model.params
        self.p, self.X, self.train_rows, self.device, self.rng = p, X, train_rows, device, rng
        self.encoder, self.decoder, self.classifier, self.trainer = encoder, decoder, classifier, trainer
        self.labels = None if codes is None else torch.from_numpy(codes)
        self.steps_per_epoch = steps_per_epoch
        fused = device.type in ("cpu", "cuda")
        self.modules = {"encoder": encoder, "decoder": decoder} | (
            {} if classifier is None else {"classifier": classifier}
        )
        self.optimizers = {
            "encoder": torch.optim.Adam(encoder.parameters(), lr=p["learning_rate"], fused=fused),
            "decoder": torch.optim.Adam(decoder.parameters(), lr=p["learning_rate"], fused=fused),
        }
        self.epoch, self.pending = 0, []

    def frozen_classifier(self) -> ActinnNet | None:
        if self.classifier is None:
            return None
        self.classifier.eval().requires_grad_(False)
        return self.classifier

    def phase(self) -> str:
        return "vae" if self.epoch <= self.p["warmup_epochs"] else "introspective"

    def _vae_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encoder(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = reconstruction_error(self.decoder(z), x).mean()
        kl = kl_divergence(mu, logvar).mean()
        loss = rec + kl
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in self.optimizers.values():
            optimizer.step()
        return {"vae_loss": loss, "rec": rec, "kl_real": kl}

    def _introspective_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.p
        eps = torch.randn(x.shape[0], p["latent_dim"], device=self.device)
        z_p = torch.randn(x.shape[0], p["latent_dim"], device=self.device)
        terms = introspective_gradients(
            self.encoder,
            self.decoder,
            self.frozen_classifier(),
            x,
            eps=eps,
            z_p=z_p,
            alpha1=p["alpha1"],
            alpha2=p["alpha2"],
            margin=p["margin"],
            update=p["update"],
        )
        for optimizer in self.optimizers.values():
            optimizer.step()
        return terms

    def step(self, step: int) -> dict[str, torch.Tensor]:
        if not self.pending:
            self.epoch += 1
            self.pending = epoch_batches(len(self.train_rows), self.p["batch_size"], self.rng)
        rows = self.train_rows[self.pending.pop(0)]
        x = lsn_batch(self.X, rows, self.device)
        values: dict[str, torch.Tensor] = {}
        if (
            self.classifier is not None
            and self.p["classifier_schedule"] == "reference"
            and self.epoch <= self.p["classifier_epochs"]
        ):
            loss, hits = self.trainer.step(x, self.labels[rows].to(self.device))
            values |= {"classifier_loss": loss, "classifier_accuracy": hits / len(rows)}
        return values | (self._vae_step(x) if self.phase() == "vae" else self._introspective_step(x))

    def log_columns(self, step: int) -> dict[str, Any]:
        return {"epoch": self.epoch, "phase": self.phase()}

    def generate(self, n: int, seed: int):
        z = torch.randn(n, self.p["latent_dim"], generator=torch.Generator().manual_seed(seed)).to(self.device)
        calibrated = recalibrate_batchnorm(copy.deepcopy(self.decoder), batch_size=self.p["batch_size"], seed=seed)
        cells, _, _ = decode_csr(calibrated, z)
        return cells

    def train_mode(self) -> None:
        self.encoder.train()
        self.decoder.train()

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "pending": [torch.as_tensor(rows) for rows in self.pending],
            "classifier_trainer": None if self.trainer is None else self.trainer.state(),
        }

    def load_state(self, state) -> None:
        self.epoch = int(state["epoch"])
        self.pending = [rows.numpy() for rows in state["pending"]]
        if self.trainer is not None and state["classifier_trainer"] is not None:
            self.trainer.load(state["classifier_trainer"])


# ---------------------------------------------------------------------------------------------------- model
class ACTIVA(GenerativeModel):
    """ACTIVA: introspective VAE on LSN cells, conditioned on a frozen ACTINN classifier.

    ``fit(adata, label_key=...)`` trains ACTINN on the training cells, then the VAE warm-up and the
    introspective phase; without ``label_key`` an IntroVAE without the cell-type loss. ``sample(n)`` generates
    holistically; ``sample(n, labels=...)`` keeps generated cells that ACTINN assigns to the requested types
    (see docs/models.md). Hyperparameters (``paper`` preset = the run script; ``workstation``: learning
    rate 6e-4 for at most 3,000 steps or 10 minutes, monitored every 10 epochs on 500 cells, last weights;
    ``demo``: 150 epochs, ACTINN 200 epochs and checkpoints every 25 epochs, about a minute for the 490 demo
    training cells; same method in all three):

    - ``latent_dim`` 128, ``encoder_layers`` [1024, 512, 256], ``decoder_layers`` [256, 512, 1024],
      ``encoder_head`` ``"linear"`` | ``"reference"``, ``output_lsn`` True, ``output_threshold`` 0 (or ``"auto"``)
    - ``update`` ``"paper"`` | ``"reference"``, ``alpha1`` 0.25, ``alpha2`` 0.05, ``margin`` 110
    - ``learning_rate`` 2e-4 (Adam, encoder and decoder), ``batch_size`` 128, ``epochs`` 500,
      ``warmup_epochs`` 9, ``max_steps`` None (optimisation steps; ``fit(max_steps=...)`` overrides)
    - ``classifier_schedule`` ``"pretrain"`` | ``"reference"``, ``classifier_epochs`` 50, ``classifier_layers``
      [100, 50, 25], ``classifier_log_input`` True, ``classifier_learning_rate`` 1e-4,
      ``classifier_weight_decay`` 0.005,
      ``classifier_lr_decay`` 0.95 every ``classifier_decay_every`` 1,000 iterations
    - ``checkpoint_every`` 5 (epochs), ``type_threshold`` 0, ``max_draw_factor`` 1000
    - ``monitor_every`` 10 (epochs; demo 5) and ``monitor_cells`` 3,000 (demo 300; 0 disables): scGAN's
      model-selection statistics of generated vs training cells (:mod:`scsynth_core.models.monitors`), logged
      so that the training-time comparison can measure time to a common quality level; not in the paper
    """

    name = "activa"  # presets and hyperparameter types: scsynth_core.models.specs.activa

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._encoder: Encoder | None = None
        self._decoder: Decoder | None = None
        self._classifier: ActinnNet | None = None
        self._device = torch.device("cpu")

    def _build(self, n_genes: int, n_types: int, device: torch.device, threshold: float = 0.0):
        p = self.params
        encoder = Encoder(n_genes, latent_dim=p["latent_dim"], widths=p["encoder_layers"], head=p["encoder_head"])
        decoder = Decoder(
            n_genes,
            latent_dim=p["latent_dim"],
            widths=p["decoder_layers"],
            output_lsn=p["output_lsn"],
            output_threshold=threshold,
        )
        classifier = (
            ActinnNet(n_genes, n_types, widths=p["classifier_layers"], log_input=p["classifier_log_input"])
            if n_types
            else None
        )
        return encoder.to(device), decoder.to(device), None if classifier is None else classifier.to(device)

    def _classifier_trainer(self, classifier: ActinnNet) -> ClassifierTrainer:
        p = self.params
        return ClassifierTrainer(
            classifier,
            lr=p["classifier_learning_rate"],
            weight_decay=p["classifier_weight_decay"],
            lr_decay=p["classifier_lr_decay"],
            decay_every=p["classifier_decay_every"],
        )

    def _output_threshold(self, X) -> float:
        """``output_threshold`` in LSN units; ``"auto"``: the smallest non-zero LSN value of the training cells
        (the value the reference's comment suggests, ``np.min(adata[np.nonzero(adata)])``)."""
        value = self.params["output_threshold"]
        if value != "auto":
            return float(value)
        smallest = np.inf
        for start in range(0, X.shape[0], 10_000):
            block = lsn(sp.csr_matrix(X[start : start + 10_000]))
            if block.nnz:
                smallest = min(smallest, float(block.data[block.data > 0].min()))
        return 0.0 if not np.isfinite(smallest) else smallest

    @property
    def actinn(self) -> ACTINN:
        """The trained conditioner as a standalone :class:`ACTINN` (predict, evaluate, save)."""
        if self._classifier is None:
            raise ConfigError(f"model '{self.name}' has no classifier (not fitted, or fitted without labels)")
        p = self.params
        params = {
            "layers": p["classifier_layers"],
            "learning_rate": p["classifier_learning_rate"],
            "weight_decay": p["classifier_weight_decay"],
            "lr_decay": p["classifier_lr_decay"],
            "decay_every": p["classifier_decay_every"],
            "batch_size": p["batch_size"],
            "epochs": p["classifier_epochs"],
            "log_input": p["classifier_log_input"],
        }
        return ACTINN.from_network(
            self._classifier,
            var_names=self.var_names,
            categories=self.categories,
            label_key=self.label_key,
            params=params,
        )

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        with flush_denormals():
            return self._train(
                adata, seed=seed, device=device, max_steps=max_steps, progress=progress, checkpoint=checkpoint
            )

    def _train(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        p = self.params
        max_steps = p["max_steps"] if max_steps is None else int(max_steps)
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"model '{self.name}': max_steps must be >= 1, got {max_steps}")
        dev = resolve_device(device)
        X = adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)
        n_cells, n_genes = X.shape
        if n_cells < 2:
            raise ConfigError(f"model '{self.name}': need at least 2 training cells (batch normalisation)")
        codes = None if self.label_key is None else label_codes(adata.obs[self.label_key], self.categories)
        n_types = 0 if codes is None else len(self.categories)

        threshold = self._output_threshold(X)
        monitor, _, train_rows = held_out_monitor(p, X, seed=seed, labels=codes)
        rng = seed_everything(seed)
        encoder, decoder, classifier = self._build(n_genes, n_types, dev, threshold)
        steps_per_epoch = len(epoch_batches(len(train_rows), p["batch_size"], np.random.default_rng(0)))
        total = p["epochs"] * steps_per_epoch if max_steps is None else min(max_steps, p["epochs"] * steps_per_epoch)
        # Monitor, log and checkpoint intervals are counted in epochs for ACTIVA (its schedule is epoch based).
        loop_params = (
            p
            | {key: p[key] * steps_per_epoch for key in ("monitor_every", "checkpoint_every")}
            | {"log_every": steps_per_epoch}
        )
        loop = TrainingLoop(
            self.name,
            loop_params,
            max_steps=total,
            rng=rng,
            monitor=monitor,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            identity={"shape": [n_cells, n_genes], "categories": self.categories},
        )
        trainer = None if classifier is None else self._classifier_trainer(classifier)
        history = TrainLog()
        if classifier is not None and p["classifier_schedule"] == "pretrain" and not loop.resumes():
            # Before the loop: a resumed run finds the trained classifier in the checkpoint.
            train_classifier(
                trainer,
                X[train_rows],
                codes[train_rows],
                epochs=p["classifier_epochs"],
                batch_size=p["batch_size"],
                rng=rng,
                device=dev,
                log=history,
                progress=progress,
                desc="train actinn",
            )
        task = _ActivaTask(
            self,
            X,
            train_rows,
            codes,
            encoder,
            decoder,
            classifier,
            trainer,
            rng=rng,
            device=dev,
            steps_per_epoch=steps_per_epoch,
        )
        history = loop.run(task, history=history.history)
        self.training_summary = loop.summary
        recalibrate_batchnorm(decoder, batch_size=p["batch_size"], seed=seed)
        self._encoder, self._decoder, self._device = encoder.eval(), decoder.eval(), dev
        self._classifier = task.frozen_classifier()
        return history

    # -- encoding ---------------------------------------------------------------------------------------------
    def _cells(self, adata: ad.AnnData):
        if self._encoder is None:
            raise ConfigError(f"model '{self.name}' is not fitted")
        if [str(v) for v in adata.var_names] != self.var_names:
            raise DataError(f"model '{self.name}': cells have different genes than the training cells")
        return adata.X.tocsr() if sp.issparse(adata.X) else np.asarray(adata.X)

    @torch.inference_mode()
    def latent(self, adata: ad.AnnData, *, batch_size: int = 4096) -> np.ndarray:
        """Posterior means ``mu`` (cells x latent) of cells given as raw counts or LSN values (re-normalised)."""
        X = self._cells(adata)
        out = [
            self._encoder(lsn_batch(X, np.arange(i, min(i + batch_size, X.shape[0])), self._device))[0].cpu()
            for i in range(0, X.shape[0], batch_size)
        ]
        return torch.cat(out).numpy() if out else np.empty((0, self._encoder.latent_dim), dtype=np.float32)

    def reconstruct(self, adata: ad.AnnData, *, batch_size: int = 4096) -> sp.csr_matrix:
        """``Dec(mu(x))`` of cells (evaluation mode), in the decoder's output space, as CSR."""
        z = torch.from_numpy(self.latent(adata, batch_size=batch_size)).to(self._device)
        return decode_csr(self._decoder, z)[0]

    # -- generation -------------------------------------------------------------------------------------------
    # GenerativeModel.sample and sample_to_h5ad (streamed) call the hooks below. Holistic generation
    # (``labels=None``) annotates ``obs["cluster"]`` with ACTINN's predicted type and ``obs["cluster_probability"]``
    # with its softmax probability; type-specific generation keeps the generated cells ACTINN assigns to the
    # requested types (docs/models.md) and raises a ConfigError when the request needs more than
    # ``max_draw_factor`` x ``n_cells`` draws; ``uns['scsynth']['type_specific']`` records the acceptance rates.
    def _start_sampling(self, seed: int) -> None:
        if self._decoder is None:
            raise ConfigError(f"model '{self.name}' is not fitted")
        self._decoder.eval()
        call = self._sampling
        if call.labels is not None:  # cells drawn but not yet used, per type, and the counts behind the rates
            needed = pd.Series(call.labels).value_counts().to_dict()
            call.state = {"needed": needed, "pool": {}, "drawn": 0, "matched": {}, "used": {}}

    def _noise(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        gen = torch.Generator(self._device).manual_seed(int(rng.integers(0, 2**63 - 1)))
        return torch.randn(n, self._decoder.latent_dim, device=self._device, generator=gen)

    def _sample_chunk(self, n, labels, rng) -> SampledCells | sp.csr_matrix:
        if self._decoder is None:
            raise ConfigError(f"model '{self.name}' is not fitted")
        with flush_denormals():
            if labels is not None:
                cells, probs = self._type_specific_chunk(labels, rng)
                return SampledCells(cells, {"cluster_probability": probs.numpy().astype(np.float32)})
            cells, probs, _ = decode_csr(self._decoder, self._noise(n, rng), classifier=self._classifier)
        if probs is None:  # fitted without labels: no classifier
            return cells
        best, codes = probs.max(dim=1)
        predicted = np.asarray(self.categories, dtype=object)[codes.numpy()]
        return SampledCells(cells, {"cluster": predicted, "cluster_probability": best.numpy().astype(np.float32)})

    def _type_specific_chunk(self, labels: np.ndarray, rng: np.random.Generator) -> tuple[sp.csr_matrix, torch.Tensor]:
        """Cells for ``labels`` (one per cell) by generating and keeping those ACTINN assigns to each label, and
        ACTINN's probability of each kept cell's type. Cells of a type drawn beyond this chunk's need wait in the
        call's pool for the next chunks."""
        call = self._sampling
        info = call.state
        lookup = {label: i for i, label in enumerate(self.categories)}
        pool: dict[int, list] = info["pool"]
        need_total = {lookup[k]: int(v) for k, v in info["needed"].items()}
        codes = np.fromiter((lookup[str(v)] for v in labels), dtype=np.int64, count=len(labels))
        wanted = np.bincount(codes, minlength=len(self.categories))
        threshold = float(self.params["type_threshold"])
        limit = int(self.params["max_draw_factor"]) * call.n_cells

        def stored(code: int) -> int:
            return sum(block.shape[0] for block, _ in pool.get(code, []))

        while True:
            short = {c: int(wanted[c]) - stored(c) for c in np.flatnonzero(wanted)}
            short = {c: s for c, s in short.items() if s > 0}
            if not short:
                break
            if info["drawn"] >= limit:
                rates = {self.categories[c]: info["matched"].get(c, 0) / max(info["drawn"], 1) for c in need_total}
                detail = ", ".join(f"{k}: {v:.2%}" for k, v in sorted(rates.items(), key=lambda kv: kv[1]))
                missing = ", ".join(f"{self.categories[c]} ({s} missing)" for c, s in short.items())
                raise ConfigError(
                    f"model '{self.name}': type-specific generation drew {info['drawn']:,} cells "
                    f"(max_draw_factor {self.params['max_draw_factor']} x {call.n_cells:,} requested) without "
                    f"meeting the request: {missing}. Acceptance rates (ACTINN argmax"
                    f"{f' with probability >= {threshold}' if threshold > 0 else ''}): {detail}. Lower "
                    "type_threshold, raise max_draw_factor, or request fewer cells of the rare types"
                )
            # Batch size from the observed acceptance of the scarcest type (prior: uniform over types).
            need_rates = []
            for c, s in short.items():
                rate = (info["matched"].get(c, 0) + 1) / (info["drawn"] + len(self.categories))
                need_rates.append(s / max(rate, 1.0 / max(int(self.params["max_draw_factor"]), 1)))
            m = int(min(max(1.2 * max(need_rates), 1024), 65_536, max(limit - info["drawn"], 1)))
            remaining = {c: need_total[c] - info["used"].get(c, 0) - stored(c) for c in need_total}
            remaining_t = torch.zeros(len(self.categories), dtype=torch.long)
            for c, r in remaining.items():
                remaining_t[c] = max(r, 0)

            # ``remaining_t`` bound as a default (B023): decode_csr calls ``accept`` only within this draw.
            def accept(probs: torch.Tensor, *, remaining_t: torch.Tensor = remaining_t) -> torch.Tensor:
                best, pred = probs.max(dim=1)
                eligible = best >= threshold
                for c, k in enumerate(torch.bincount(pred[eligible], minlength=len(self.categories)).tolist()):
                    info["matched"][c] = info["matched"].get(c, 0) + k
                ok = eligible & (remaining_t.to(probs.device)[pred] > 0)
                # never keep more cells of a type than the whole request still needs
                order = torch.cumsum(F.one_hot(pred, len(self.categories)) * ok[:, None], dim=0)
                within = order.gather(1, pred[:, None]).squeeze(1) <= remaining_t.to(probs.device)[pred]
                keep = ok & within
                remaining_t.sub_(torch.bincount(pred[keep], minlength=len(self.categories)).cpu())
                return keep

            cells, probs, _ = decode_csr(self._decoder, self._noise(m, rng), classifier=self._classifier, accept=accept)
            info["drawn"] += m
            if cells.shape[0]:
                best, pred = probs.max(dim=1)
                pred = pred.numpy()
                for c in np.unique(pred):
                    rows = np.flatnonzero(pred == c)
                    pool.setdefault(int(c), []).append((cells[rows], best[rows]))
        # Take the requested cells of each type from the pool, in the order of ``labels``.
        blocks, block_probs, order = [], [], np.empty(len(labels), dtype=np.int64)
        offset = 0
        for c in np.flatnonzero(wanted):
            k = int(wanted[c])
            X_c = sp.vstack([b for b, _ in pool[c]], format="csr")
            p_c = torch.cat([q for _, q in pool[c]])
            blocks.append(X_c[:k])
            block_probs.append(p_c[:k])
            rest_X, rest_p = X_c[k:], p_c[k:]
            pool[c] = [(rest_X, rest_p)] if rest_X.shape[0] else []
            info["used"][int(c)] = info["used"].get(int(c), 0) + k
            order[np.flatnonzero(codes == c)] = np.arange(offset, offset + k)
            offset += k
        X = sp.vstack(blocks, format="csr")[order]
        call.uns["type_specific"] = {
            "type_threshold": threshold,
            "drawn": int(info["drawn"]),
            # fraction of drawn cells ACTINN assigns to each type (with probability >= type_threshold)
            "acceptance_rate": {
                self.categories[c]: float(k / max(info["drawn"], 1)) for c, k in sorted(info["matched"].items())
            },
        }
        return X, torch.cat(block_probs)[torch.from_numpy(order)]

    # -- state ------------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        def cpu(module):
            return None if module is None else {k: v.detach().cpu() for k, v in module.state_dict().items()}

        return {
            "encoder": cpu(self._encoder),
            "decoder": cpu(self._decoder),
            "classifier": cpu(self._classifier),
            "n_genes": self._decoder.n_genes,
            "output_threshold": self._decoder.output_threshold,
            "n_types": 0 if self._classifier is None else self._classifier.n_types,
        }

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        dev = resolve_device(device)
        encoder, decoder, classifier = self._build(
            state["n_genes"], state["n_types"], torch.device("cpu"), float(state["output_threshold"])
        )
        encoder.load_state_dict(state["encoder"])
        decoder.load_state_dict(state["decoder"])
        if classifier is not None:
            classifier.load_state_dict(state["classifier"])
            classifier = classifier.to(dev).eval().requires_grad_(False)
        self._encoder, self._decoder, self._classifier = encoder.to(dev).eval(), decoder.to(dev).eval(), classifier
        self._device = dev
