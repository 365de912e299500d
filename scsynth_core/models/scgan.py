"""scGAN and cscGAN (Marouf et al. 2020, Nat Commun 11:166, Methods "scGAN", "cscGAN", "Training"): Wasserstein
GANs with gradient penalty (Gulrajani et al. 2017) that generate library-size-normalised expression profiles;
cscGAN conditions on the cell type (conditional batch norm, projection critic).

Networks, training, the reference code's (imsb-uke/scGAN) departures kept as options, presets and the
measurements behind them: docs/models.md, "scGAN and cscGAN".
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from scsynth_core.data.preprocess import LSN_EPS, LSN_TARGET, lsn
from scsynth_core.errors import ConfigError
from scsynth_core.models.base import GenerativeModel
from scsynth_core.models.batches import EpochBatches
from scsynth_core.models.monitors import held_out_monitor
from scsynth_core.models.nn import (
    LEAKY_SLOPE,
    activation_names,
    block_rows,
    class_rows,
    init_weight_,
    linear,
    normed_forward,
    normed_layers,
)
from scsynth_core.models.specs.scgan import CODE_PROJECTIONS, CRITIC_HEADS, GP_INTERPOLATIONS
from scsynth_core.models.training import (
    TrainingLoop,
    TrainingTask,
    dense_rows,
    resolve_device,
    seed_everything,
    training_matrix,
)

#: TF ``decay=0.999`` of the reference's moving averages, as a torch-style momentum.
BN_MOMENTUM = 1e-3
BN_EPS = 1e-5
ADAM_EPS = 1e-8
#: Generator output layers: ReLU + LSN (scGAN), ReLU only, or linear (clamped at 0 when generating).
GENERATOR_OUTPUTS = ("lsn", "relu", "linear")

#: History columns (``train_log.tsv``), besides ``step`` and ``time_s`` added by :class:`TrainLog`.
LOSS_COLUMNS = ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty", "lr")


class InputMajorLinear(nn.Module):
    """``x @ weight + bias`` with the weight stored ``[in, out]`` (the transpose of :class:`torch.nn.Linear`).

    Used for the critic's layers: at 18k genes the first layer's weight gradient ``x^T @ grad`` is then a
    ``[genes, batch] @ [batch, 1024]`` product, measured 25% faster than nn.Linear's
    ``[1024, batch] @ [batch, genes]`` on 2 CPU cores (odd output widths are slow). Initialisation is
    symmetric in fan-in and fan-out, so the layout does not change the model.
    """

    def __init__(self, n_in: int, n_out: int, *, init: str) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        init_weight_(self.weight, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x, self.weight)


# ---------------------------------------------------------------------------------------------------- networks
class Generator(nn.Module):
    """scGAN generator (cscGAN with ``n_classes > 0``): noise -> LSN-normalised cells (n x genes).

    Hidden layers: Linear (no bias, Glorot) -> (conditional) batch normalisation -> activation -> dropout.
    The defaults are scGAN's; other GANs (MichiGAN, :mod:`scsynth_core.models.michigan`) and decoders choose
    per-layer ``activations`` (``"relu"``/``"leaky_relu"``), ``dropout`` (active in training mode only), the
    ``output`` layer (``"lsn"``: ReLU + LSN; ``"relu"``; ``"linear"``), the output initialisation and the batch
    norm momentum/eps. Conditioning on a real-valued code is done by the caller, by concatenating it to ``z``.
    """

    def __init__(
        self,
        n_genes: int,
        *,
        latent_dim: int = 128,
        widths=(256, 512, 1024),
        n_classes: int = 0,
        lsn_target: float = LSN_TARGET,
        activations=None,
        dropout: float = 0.0,
        output: str = "lsn",
        output_init: str = "fan_avg",
        bn_momentum: float = BN_MOMENTUM,
        bn_eps: float = BN_EPS,
    ) -> None:
        super().__init__()
        if output not in GENERATOR_OUTPUTS:
            raise ConfigError(f"generator output must be one of {', '.join(GENERATOR_OUTPUTS)}, got '{output}'")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.n_genes, self.latent_dim, self.n_classes = int(n_genes), int(latent_dim), int(n_classes)
        self.lsn_target = float(lsn_target)
        self.activations = activation_names(activations, len(widths))
        self.dropout, self.output_activation = float(dropout), output
        sizes = [self.latent_dim, *map(int, widths)]
        self.linears, self.norms = normed_layers(sizes, n_classes=self.n_classes, momentum=bn_momentum, eps=bn_eps)
        self.output = linear(sizes[-1], self.n_genes, init=output_init)

    def hidden(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer (n x 1024)."""
        return normed_forward(
            z, self.linears, self.norms, self.activations, dropout=self.dropout, training=self.training, labels=labels
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.output(self.hidden(z, labels))
        if self.output_activation == "linear":
            return x
        x = F.relu(x)
        return lsn(x, target_sum=self.lsn_target) if self.output_activation == "lsn" else x


class _ReLU(torch.autograd.Function):
    """ReLU whose backward is differentiable in the incoming gradient only.

    The second derivative of ReLU is zero, so the gradient penalty's double backward needs no path through
    the forward pre-activations. torch's ``threshold_backward`` returns an explicit zero tensor for that path,
    which autograd then pushes through the critic's first layer (a wasted ``x_hat^T @ 0`` product as large as
    the layer, ~9% of a training iteration at 18k genes). Same values and gradients as ``F.relu``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clamp_min(0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        # Detached: the result depends on ``grad`` only (one fused kernel, no bool-to-float product).
        return torch.ops.aten.threshold_backward(grad, out.detach(), 0.0)


class Critic(nn.Module):
    """WGAN critic on LSN cells; conditional heads as in docs/models.md.

    ``code_dim > 0`` conditions on a real-valued code ``c`` (n x code_dim, passed as ``labels``) instead of a
    class: head ``"projection"`` only, ``D(x, c) = psi(h) + <c, h>`` (``code_projection="identity"``, needs
    ``widths[-1] == code_dim``) or ``psi(h) + <c, V h>`` (``"learned"``, Miyato & Koyama 2018 with a linear
    embedding ``V``). ``activations`` (per hidden layer, default ReLU) and ``init`` (``"fan_avg"`` or
    ``"glorot"``, hidden layers) default to scGAN's choices.
    """

    def __init__(
        self,
        n_genes: int,
        *,
        widths=(1024, 512, 256),
        n_classes: int = 0,
        head: str = "unconditional",
        code_dim: int = 0,
        code_projection: str = "identity",
        activations=None,
        init: str = "fan_avg",
    ) -> None:
        super().__init__()
        if head not in CRITIC_HEADS:
            raise ConfigError(f"critic_head must be one of {', '.join(CRITIC_HEADS)}, got '{head}'")
        if n_classes and code_dim:
            raise ConfigError("a critic is conditioned on classes or on a code, not both")
        if (head == "unconditional") != (n_classes == 0 and code_dim == 0):
            raise ConfigError(f"critic head '{head}' does not fit n_classes={n_classes}, code_dim={code_dim}")
        if code_dim and head != "projection":
            raise ConfigError(f"a code-conditioned critic needs the 'projection' head, got '{head}'")
        if code_projection not in CODE_PROJECTIONS:
            raise ConfigError(f"code_projection must be one of {', '.join(CODE_PROJECTIONS)}, got '{code_projection}'")
        self.head, self.n_classes, self.code_dim = head, int(n_classes), int(code_dim)
        self.activations = activation_names(activations, len(widths))
        sizes = [int(n_genes), *map(int, widths)]
        self.linears = nn.ModuleList(InputMajorLinear(a, b, init=init) for a, b in pairwise(sizes))
        width = sizes[-1]
        self.code_matrix = None
        if self.code_dim:
            if code_projection == "identity" and width != self.code_dim:
                raise ConfigError(
                    f"identity code projection needs the last critic width ({width}) to equal the "
                    f"code dims ({self.code_dim})"
                )
            if code_projection == "learned":
                self.code_matrix = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.code_dim, width)))
        self.output = linear(width, 1, init="glorot") if head != "projection_only" else None
        if self.n_classes:
            # TF xavier on the reference's [n_classes, width, 1] table: fan_in = width * n, fan_out = n.
            limit = math.sqrt(6.0 / ((width + 1) * self.n_classes))
            self.embedding = nn.Parameter(torch.empty(self.n_classes, width).uniform_(-limit, limit))
        if head == "projection_only":
            self.class_bias = nn.Parameter(torch.zeros(self.n_classes))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for layer, activation in zip(self.linears, self.activations):
            h = _ReLU.apply(layer(h)) if activation == "relu" else F.leaky_relu(layer(h), LEAKY_SLOPE)
        out = self.output(h).squeeze(1) if self.output is not None else 0.0
        if self.code_dim:
            if labels is None:
                raise ConfigError("a code-conditioned critic needs codes")
            projected = labels if self.code_matrix is None else labels @ self.code_matrix
            out = out + (projected * h).sum(dim=1)
        elif self.head != "unconditional":
            if labels is None:
                raise ConfigError("a conditional critic needs class labels")
            out = out + (h * class_rows(self.embedding, labels)).sum(dim=1)
            if self.head == "projection_only":
                out = out + class_rows(self.class_bias, labels)
        return out


def gradient_penalty(critic: Critic, x_hat: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``mean((||grad_x D(x_hat)||_2 - 1)^2)`` over cells, differentiable in the critic's weights."""
    x_hat = x_hat.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, labels).sum(), x_hat, create_graph=True)
    return ((torch.linalg.vector_norm(grad, dim=1) - 1.0) ** 2).mean()


def critic_loss(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_weight: float,
    labels: torch.Tensor | None = None,
    fake_labels: torch.Tensor | None = None,
    fake_for_penalty: torch.Tensor | None = None,
    interpolation: str = "per_cell",
) -> dict[str, torch.Tensor]:
    """WGAN-GP critic loss and its named terms (Gulrajani et al. 2017, as in Marouf 2020).

    ``loss = mean D(fake) - mean D(real) + gp_weight * penalty`` with the penalty at
    ``x_hat = real + u (fake_for_penalty - real)``, ``u ~ U(0, 1)`` per cell (torch's global generator), scored
    with the real labels. ``fake_for_penalty`` defaults to ``fake``; ``wasserstein`` is
    ``mean D(real) - mean D(fake)``. Real and fake cells go through the critic as one batch.
    ``interpolation="per_batch"``: one ``u`` for the whole batch (MichiGAN's reference code), not per cell.
    """
    if interpolation not in GP_INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {', '.join(GP_INTERPOLATIONS)}, got '{interpolation}'")
    n = real.shape[0]
    partner = fake if fake_for_penalty is None else fake_for_penalty
    rows = n if interpolation == "per_cell" else 1
    x_hat = torch.lerp(real, partner, torch.rand(rows, 1, device=real.device, dtype=real.dtype))
    both_labels = None if labels is None else torch.cat([labels, labels if fake_labels is None else fake_labels])
    scores = critic(torch.cat([real, fake]), both_labels)
    wasserstein = scores[:n].mean() - scores[n:].mean()
    penalty = gradient_penalty(critic, x_hat, labels)
    return {"loss": gp_weight * penalty - wasserstein, "wasserstein": wasserstein, "gradient_penalty": penalty}


def generator_loss(critic: Critic, fake: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN generator loss ``-mean D(fake)``."""
    return -critic(fake, labels).mean()


# ----------------------------------------------------------------------------------------- sparse generation
def _padded_width(n_genes: int) -> int:
    """Output width for the generation matmul: a multiple of 16 but not of 256.

    Measured on 2 AVX-512 cores (MKL): 1024 x 17,789 products run at ~215 GFLOP/s, 17,792 at ~250; widths that
    are multiples of 256 (e.g. 17,920) drop to 100-200 (cache-set aliasing). The padded columns are zero.
    """
    width = -(-n_genes // 16) * 16
    return width + 16 if width % 256 == 0 and width != n_genes else width


#: Output block size on the CPU: 2^23 floats, 32 MiB (near the cache), in rows that are a multiple of 64.
_CPU_BLOCK_FLOATS = 1 << 23
#: Rows whose hidden layers are computed together (larger products are more efficient; 4096 x 1024 floats).
_HIDDEN_ROWS = 4096


@torch.inference_mode()
def generate_csr(generator: Generator, z: torch.Tensor, labels: torch.Tensor | None = None) -> sp.csr_matrix:
    """Generate cells for noise ``z`` (n x latent) as a float32 CSR matrix without a dense n x genes array.

    The generator must be in evaluation mode (moving batch-norm statistics). Hidden layers run on up to 4,096
    cells at a time; the output layer (about 96% of the FLOPs at 18k genes) runs in blocks of rows: one fused
    ``addmm`` into a reused buffer (weight padded to a fast width, see :func:`_padded_width`), then a single
    pass finds the positive entries (the ReLU), and only those are gathered, summed per cell and LSN-scaled.
    Equal to ``generator(z, labels)`` up to float rounding. Generators with a ``"relu"`` output skip the LSN
    scaling; a ``"linear"`` output is clamped at 0 (generated expression is non-negative).
    """
    n, genes = z.shape[0], generator.n_genes
    device = z.device
    width = _padded_width(genes)
    weight, bias = generator.output.weight, generator.output.bias
    if width != genes:
        weight = torch.cat([weight, weight.new_zeros(width - genes, weight.shape[1])])
        bias = torch.cat([bias, bias.new_zeros(width - genes)])
    weight_t = weight.t()
    rows = block_rows(width, device, cpu_floats=_CPU_BLOCK_FLOATS, multiple=64)
    buffer = torch.empty(min(rows, n), width, device=device, dtype=weight.dtype)
    data, indices, counts = [], [], []
    for outer in range(0, n, _HIDDEN_ROWS):
        outer_stop = min(outer + _HIDDEN_ROWS, n)
        hidden = generator.hidden(z[outer:outer_stop], None if labels is None else labels[outer:outer_stop])
        for start in range(0, outer_stop - outer, rows):
            stop = min(start + rows, outer_stop - outer)
            m = stop - start
            y = torch.addmm(bias, hidden[start:stop], weight_t, out=buffer[:m]).view(-1)
            flat = (y > 0).nonzero().squeeze(1)  # ReLU: only positive outputs survive
            row = torch.div(flat, width, rounding_mode="floor")
            values = y[flat]
            if generator.output_activation == "lsn":
                totals = torch.zeros(m, device=device, dtype=values.dtype).index_add_(0, row, values)
                values.mul_((generator.lsn_target / (totals + LSN_EPS))[row])
            data.append(values.cpu())
            indices.append((flat - row * width).to(torch.int32).cpu())
            counts.append(torch.bincount(row, minlength=m).cpu())
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(torch.cat(counts).numpy(), out=indptr[1:])
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    return sp.csr_matrix((torch.cat(data).numpy(), torch.cat(indices).numpy(), indptr), shape=(n, genes))


# ---------------------------------------------------------------------------------------------------- model
class _GANTask(TrainingTask):
    """scGAN's WGAN-GP step for :class:`~scsynth_core.models.training.TrainingLoop` (see docs/models.md)."""

    generator_names = ("generator",)
    representation = "lsn"

    def __init__(
        self,
        model: ScGAN,
        X,
        train_rows: np.ndarray,
        codes: np.ndarray | None,
        generator: Generator,
        critic: Critic,
        *,
        rng: np.random.Generator,
        max_steps: int,
        device: torch.device,
        monitor_codes: np.ndarray | None,
    ) -> None:
        p = model.params
        self.model, self.p, self.X, self.train_rows, self.codes = model, p, X, train_rows, codes
        self.generator, self.critic, self.device, self.max_steps = generator, critic, device, max_steps
        self.modules = {"generator": generator, "critic": critic}
        self.optimizers = {"generator": model._optimizer(generator, device), "critic": model._optimizer(critic, device)}
        self.batches = EpochBatches(len(train_rows), p["batch_size"], rng)
        self.freqs = (
            None if codes is None else torch.as_tensor(model.class_frequencies, dtype=torch.float32, device=device)
        )
        self.monitor_codes = monitor_codes
        self._critic_params, self._generator_params = list(critic.parameters()), list(generator.parameters())

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows = self.train_rows[self.batches.next()]
        real = lsn(torch.from_numpy(dense_rows(self.X, rows)).to(self.device, non_blocking=True))
        labels = None if self.codes is None else torch.from_numpy(self.codes[rows]).to(self.device)
        return real, labels

    def _draw_labels(self, n: int) -> torch.Tensor | None:
        return None if self.freqs is None else torch.multinomial(self.freqs, n, replacement=True)

    def _critic_step(self, lr: float) -> dict[str, torch.Tensor]:
        p, generator = self.p, self.generator
        real, labels = self._real_batch()
        n = real.shape[0]
        z = torch.randn(n, p["latent_dim"], device=self.device)
        with torch.no_grad():  # the generator runs in training mode (batch statistics), as in the reference
            if labels is not None and p["critic_fake_labels"] == "reference":
                fake_labels = self._draw_labels(n)
                fake, fake_gp = generator(z, fake_labels), generator(z, labels)
            else:
                fake_labels, fake = labels, generator(z, labels)
                fake_gp = fake
        terms = critic_loss(
            self.critic,
            real,
            fake,
            gp_weight=p["gp_weight"],
            labels=labels,
            fake_labels=fake_labels,
            fake_for_penalty=fake_gp,
        )
        optimizer = self.optimizers["critic"]
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward(inputs=self._critic_params)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        return {
            "critic_loss": terms["loss"],
            "wasserstein": terms["wasserstein"],
            "gradient_penalty": terms["gradient_penalty"],
        }

    def _generator_step(self, lr: float) -> torch.Tensor:
        n = self.p["batch_size"]
        labels = self._draw_labels(n)
        fake = self.generator(torch.randn(n, self.p["latent_dim"], device=self.device), labels)
        loss = generator_loss(self.critic, fake, labels)
        optimizer = self.optimizers["generator"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=self._generator_params)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        return loss

    def step(self, step: int) -> dict[str, torch.Tensor]:
        lr = self.model.learning_rate(step, self.max_steps)
        for _ in range(self.p["critic_iters"]):
            terms = self._critic_step(lr)
        return terms | {"generator_loss": self._generator_step(lr)}

    def log_columns(self, step: int) -> dict[str, Any]:
        return {"lr": self.model.learning_rate(step - 1, self.max_steps)}

    def generate(self, n: int, seed: int):
        z = torch.randn(
            n, self.p["latent_dim"], device=self.device, generator=torch.Generator(self.device).manual_seed(seed)
        )
        labels = None if self.monitor_codes is None else torch.from_numpy(self.monitor_codes[:n]).to(self.device)
        self.generator.eval()
        return generate_csr(self.generator, z, labels)

    def state(self) -> dict[str, Any]:
        return {"batches": self.batches.state()}

    def load_state(self, state) -> None:
        self.batches.load(state["batches"])


class ScGAN(GenerativeModel):
    """scGAN (Marouf et al. 2020): unconditional WGAN-GP generating LSN-normalised cells.

    Hyperparameters (``paper`` preset values; see docs/models.md for the sources):

    - ``latent_dim`` 128, ``generator_layers`` [256, 512, 1024], ``critic_layers`` [1024, 512, 256]
    - ``batch_size`` 128, ``critic_iters`` 5 (6 = what the reference code runs), ``gp_weight`` 10
    - ``learning_rate`` 1e-4 decaying exponentially to ``final_learning_rate`` 1e-5 at ``max_steps``;
      AMSGrad ``beta1`` 0.5, ``beta2`` 0.9
    - ``max_steps`` 1,000,000 generator steps (``fit(max_steps=...)`` overrides it)
    - ``log_every`` 100 (rows of the history), ``monitor_every`` 1000 and ``monitor_cells`` 3000 (model-selection
      statistics; 0 disables), ``monitor_holdout`` False, ``checkpoint_every`` 1000
    """

    name = "scgan"  # presets and hyperparameter types: scsynth_core.models.specs.scgan

    def __init__(self, preset: str = "paper", **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        self._generator: Generator | None = None
        self._device = torch.device("cpu")

    def _n_classes(self) -> int:
        return len(self.categories) if self.conditional else 0

    def _build(self, n_genes: int, n_classes: int, device: torch.device) -> tuple[Generator, Critic]:
        p = self.params
        generator = Generator(n_genes, latent_dim=p["latent_dim"], widths=p["generator_layers"], n_classes=n_classes)
        head = p["critic_head"] if n_classes else "unconditional"
        critic = Critic(n_genes, widths=p["critic_layers"], n_classes=n_classes, head=head)
        return generator.to(device), critic.to(device)

    def _optimizer(self, module: nn.Module, device: torch.device) -> torch.optim.Optimizer:
        p = self.params
        return torch.optim.Adam(
            module.parameters(),
            lr=p["learning_rate"],
            betas=(p["beta1"], p["beta2"]),
            eps=ADAM_EPS,
            amsgrad=True,
            fused=device.type in ("cpu", "cuda"),
        )

    def learning_rate(self, step: int, max_steps: int) -> float:
        """``lr0 * (lr_final / lr0) ** (step / max_steps)`` (continuous exponential decay)."""
        lr0, lr1 = float(self.params["learning_rate"]), float(self.params["final_learning_rate"])
        if lr0 == 0.0:
            return 0.0
        return lr0 * (lr1 / lr0) ** (step / max_steps)

    # -- training ---------------------------------------------------------------------------------------------
    def _fit(self, adata, *, seed, device, max_steps, progress, checkpoint) -> dict[str, list]:
        p = self.params
        max_steps = int(p["max_steps"] if max_steps is None else max_steps)
        dev = resolve_device(device)
        X = training_matrix(adata.X)  # a matrix on disk is read a minibatch at a time
        n_cells, n_genes = X.shape
        n_classes = self._n_classes()
        codes = None
        if n_classes:
            import pandas as pd

            codes = pd.Categorical(adata.obs[self.label_key].astype(str), categories=self.categories).codes
            codes = codes.astype(np.int64)
        monitor, rows, train_rows = held_out_monitor(p, X, seed=seed, labels=codes)
        monitor_codes = None if codes is None else codes[rows]
        rng = seed_everything(seed)
        generator, critic = self._build(n_genes, n_classes, dev)
        task = _GANTask(
            self,
            X,
            train_rows,
            codes,
            generator,
            critic,
            rng=rng,
            max_steps=max_steps,
            device=dev,
            monitor_codes=monitor_codes,
        )
        loop = TrainingLoop(
            self.name,
            p,
            max_steps=max_steps,
            rng=rng,
            monitor=monitor,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            identity={"shape": [n_cells, n_genes], "categories": self.categories},
        )
        history = loop.run(task)
        self.training_summary = loop.summary
        self._generator, self._device = generator.eval(), dev
        return history

    # -- generation -------------------------------------------------------------------------------------------
    def _label_codes(self, labels: np.ndarray | None) -> torch.Tensor | None:
        if not self.conditional or labels is None:
            return None
        lookup = {label: i for i, label in enumerate(self.categories)}
        codes = np.fromiter((lookup[str(v)] for v in labels), dtype=np.int64, count=len(labels))
        return torch.from_numpy(codes).to(self._device)

    def _sample_chunk(self, n, labels, rng):
        if self._generator is None:
            raise ConfigError(f"model '{self.name}' is not fitted")
        self._generator.eval()
        noise = torch.Generator(self._device).manual_seed(int(rng.integers(0, 2**63 - 1)))
        z = torch.randn(n, self._generator.latent_dim, device=self._device, generator=noise)
        return generate_csr(self._generator, z, self._label_codes(labels))

    # -- state ------------------------------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        g = self._generator
        return {
            "generator": {k: v.detach().cpu() for k, v in g.state_dict().items()},
            "n_genes": g.n_genes,
            "n_classes": g.n_classes,
        }

    def _set_state(self, state: dict[str, Any], *, device: str) -> None:
        dev = resolve_device(device)
        p = self.params
        generator = Generator(
            state["n_genes"], latent_dim=p["latent_dim"], widths=p["generator_layers"], n_classes=state["n_classes"]
        )
        generator.load_state_dict(state["generator"])
        self._generator, self._device = generator.to(dev).eval(), dev


class CscGAN(ScGAN):
    """cscGAN (Marouf et al. 2020): scGAN conditioned on cell clusters.

    Conditional batch normalisation in the generator and a projection critic; ``fit`` needs a ``label_key``
    and ``sample(n, labels=...)`` generates any cluster (a dict gives exact per-cluster counts; ``None`` draws
    clusters with the training frequencies). Extra hyperparameters, besides scGAN's:

    - ``critic_head``: ``"projection"`` (paper, default) or ``"projection_only"`` (the reference code)
    - ``critic_fake_labels``: ``"real_batch"`` (default) or ``"reference"`` (see docs/models.md)
    """

    name = "cscgan"
