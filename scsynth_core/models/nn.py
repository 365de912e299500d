"""Network blocks shared by the models (issue 16): initialised linear layers, (conditional) batch normalisation,
hidden-layer activations, dense layer stacks in a chosen layer order, and the row blocks of sparse generation.

Each block builds its modules in a fixed order, so a seeded model draws the same initial weights whichever model
file builds it. Paper-specific constants (batch-norm momentum and eps, layer orders) stay with the models.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

from scsynth_core.errors import ConfigError

#: Hidden-layer activations (scGAN: ReLU everywhere; MichiGAN also uses leaky ReLU).
ACTIVATIONS = ("relu", "leaky_relu")
#: TF's default ``tf.nn.leaky_relu`` slope (MichiGAN's networks).
LEAKY_SLOPE = 0.2
#: Weight initialisations: Glorot uniform, or TF's truncated-normal FAN_AVG variance scaling (scGAN).
INITS = ("glorot", "fan_avg")
#: Layers of a dense block; ``"linear"`` comes first (the others have its output width).
LAYERS = ("linear", "norm", "act")
#: Truncated-normal correction of TF's ``variance_scaling_initializer(uniform=False)``.
_TRUNC_FACTOR = 1.3


# ------------------------------------------------------------------------------------------------ initialisers
def fan_avg_normal_(weight: torch.Tensor) -> torch.Tensor:
    """TF ``variance_scaling_initializer(factor=2, mode="FAN_AVG", uniform=False)`` for a 2-D weight.

    Truncated normal (cut at 2 sd) with ``sd = sqrt(1.3 * 2 / ((fan_in + fan_out) / 2))`` (either layout).
    """
    fan_out, fan_in = weight.shape
    std = math.sqrt(_TRUNC_FACTOR * 2.0 / ((fan_in + fan_out) / 2.0))
    return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


def init_weight_(weight: torch.Tensor, init: str) -> torch.Tensor:
    """Initialise a 2-D weight in place: ``"glorot"`` (Glorot & Bengio 2010, uniform) or ``"fan_avg"``."""
    if init not in INITS:
        raise ConfigError(f"weight init must be one of {', '.join(INITS)}, got '{init}'")
    with torch.no_grad():
        return nn.init.xavier_uniform_(weight) if init == "glorot" else fan_avg_normal_(weight)


def linear(n_in: int, n_out: int, *, init: str = "glorot", bias: bool = True) -> nn.Linear:
    """A :class:`torch.nn.Linear` with its weight re-initialised by ``init`` and a zero bias (TF's defaults).

    torch's default initialisation runs first (it draws from the global generator), as in every model so far.
    """
    layer = nn.Linear(n_in, n_out, bias=bias)
    init_weight_(layer.weight, init)
    if bias:
        with torch.no_grad():
            layer.bias.zero_()
    return layer


# -------------------------------------------------------------------------------------------- normalisation
def class_rows(table: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``table[labels]`` (one row, or value, per cell) through ``F.embedding``, whose gradient sums each row's
    cells in a fixed order. The gradient of indexing accumulates rows in parallel on the CPU, in a varying order:
    conditional training (cscGAN) gave different weights from run to run with 2 threads."""
    if table.dim() == 1:
        return F.embedding(labels, table[:, None])[:, 0]
    return F.embedding(labels, table)


class ConditionalBatchNorm(nn.Module):
    """Batch normalisation with optional per-class scale and shift: cscGAN's conditional batch norm (Marouf et al.
    2020, Methods "cscGAN"; Dumoulin et al. 2016, as the scGAN reference's ``batchnorm``), also the VAEs' plain one.

    Training: normalise with the batch mean and biased variance (``tf.nn.moments``), and move the running averages
    by ``momentum`` (TF decay ``1 - momentum``). Evaluation: normalise with the running averages. Scale and shift
    are vectors ``[width]`` without classes, tables ``[n_classes, width]`` looked up by label with classes.
    ``momentum`` and ``eps`` have no default: each model states its reference's (TF1 layers differ).
    """

    def __init__(self, width: int, n_classes: int = 0, *, momentum: float, eps: float) -> None:
        super().__init__()
        shape = (n_classes, width) if n_classes else (width,)
        self.n_classes = n_classes
        self.momentum = momentum
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(shape))
        self.shift = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(width))
        self.register_buffer("running_var", torch.ones(width))

    def affine(self, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and shift for each cell (conditional) or for all cells (unconditional)."""
        if not self.n_classes:
            return self.scale, self.shift
        if labels is None:
            raise ConfigError("conditional batch normalisation needs class labels")
        return class_rows(self.scale, labels), class_rows(self.shift, labels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=0)
            centered = x - mean
            var = (centered * centered).mean(dim=0)  # biased; x.var(dim=0) is ~50x slower on CPU here
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            centered, var = x - self.running_mean, self.running_var
        scale, shift = self.affine(labels)
        return centered * torch.rsqrt(var + self.eps) * scale + shift


# ------------------------------------------------------------------------------------------------ activations
def activation_names(names: Sequence[str] | None, n_layers: int) -> tuple[str, ...]:
    """One activation name per hidden layer (``None``: ReLU everywhere)."""
    names = ("relu",) * n_layers if names is None else tuple(names)
    if len(names) != n_layers or any(a not in ACTIVATIONS for a in names):
        raise ConfigError(f"activations must be {n_layers} of {', '.join(ACTIVATIONS)}, got {list(names)}")
    return names


def activate(x: torch.Tensor, name: str) -> torch.Tensor:
    """``name`` applied to ``x``: ReLU or leaky ReLU with slope :data:`LEAKY_SLOPE`."""
    return F.relu(x) if name == "relu" else F.leaky_relu(x, LEAKY_SLOPE)


# ------------------------------------------------------------------------------------------------ dense stacks
def normed_layers(
    sizes: Sequence[int], *, n_classes: int = 0, momentum: float, eps: float
) -> tuple[nn.ModuleList, nn.ModuleList]:
    """Hidden layers ``sizes[0] -> sizes[1] -> ...`` as two lists: bias-free Glorot :func:`linear` layers and
    :class:`ConditionalBatchNorm` layers, the scGAN generator's and MichiGAN VAE encoder's layout (state_dict keys
    ``linears.i`` and ``norms.i``); :func:`normed_forward` runs them."""
    linears = nn.ModuleList(linear(a, b, init="glorot", bias=False) for a, b in pairwise(sizes))
    norms = nn.ModuleList(ConditionalBatchNorm(b, n_classes, momentum=momentum, eps=eps) for b in sizes[1:])
    return linears, norms


def normed_forward(
    h: torch.Tensor,
    linears: nn.ModuleList,
    norms: nn.ModuleList,
    activations: Sequence[str],
    *,
    dropout: float,
    training: bool,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Linear -> (conditional) batch norm -> activation -> dropout (in training only) for each hidden layer."""
    for layer, norm, activation in zip(linears, norms, activations):
        h = activate(norm(layer(h), labels), activation)
        if dropout:
            h = F.dropout(h, dropout, training)
    return h


def dense_block(n_in: int, n_out: int, order: Sequence[str], *, activation: str = "relu") -> nn.Sequential:
    """One hidden layer as :class:`torch.nn.Sequential` of ``order``'s layers: ``"linear"`` (torch's default
    initialisation), ``"norm"`` (:class:`torch.nn.BatchNorm1d`, torch defaults) and ``"act"`` (``activation``).
    ``order`` starts with ``"linear"``; e.g. ``("linear", "act", "norm")`` is ACTIVA's reference order."""
    order = tuple(order)
    if not order or order[0] != "linear" or len(set(order)) != len(order) or not set(order) <= set(LAYERS):
        raise ConfigError(f"layer order must be 'linear' then any of 'norm', 'act' once each, got {list(order)}")
    activation_names([activation], 1)
    make = {
        "linear": lambda: nn.Linear(n_in, n_out),
        "norm": lambda: nn.BatchNorm1d(n_out),
        "act": lambda: nn.ReLU() if activation == "relu" else nn.LeakyReLU(LEAKY_SLOPE),
    }
    return nn.Sequential(*(make[layer]() for layer in order))


def dense_stack(
    sizes: Sequence[int], order: Sequence[str], *, activation: str = "relu", nested: bool = False
) -> nn.Sequential:
    """Hidden layers ``sizes[0] -> sizes[1] -> ...``, each a :func:`dense_block` in ``order``.

    Flat (``nested=False``) the layers' modules follow each other (state_dict keys ``0.weight``, ``1.weight``,
    ...); nested, each hidden layer is its own Sequential (``0.0.weight``, ``0.2.weight``, ...).
    """
    blocks = [dense_block(int(a), int(b), order, activation=activation) for a, b in pairwise(sizes)]
    return nn.Sequential(*blocks) if nested else nn.Sequential(*(m for block in blocks for m in block))


@contextmanager
def batchnorm_momentum(module: nn.Module, momentum: float | None) -> Iterator[list[nn.Module]]:
    """Every batch-norm layer of ``module`` updates its running statistics with ``momentum`` inside the block
    (``None``: cumulative averages; ``0``: frozen) and gets its own momentum back after it, also on an error.
    Yields the layers (e.g. to reset their statistics first)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = momentum
    try:
        yield norms
    finally:
        for m, saved in zip(norms, momenta, strict=True):
            m.momentum = saved


# ---------------------------------------------------------------------------------------------- generation
def block_rows(width: int, device: torch.device, *, cpu_floats: int, multiple: int = 1) -> int:
    """Rows per dense ``rows x width`` output block of sparse generation: ``cpu_floats`` values on the CPU (sized
    to the cache by the caller), 2^26 (256 MiB of float32) on a GPU; a multiple of ``multiple``, at least 64."""
    budget = cpu_floats if device.type == "cpu" else (1 << 26)
    return max(64, budget // max(width, 1) // multiple * multiple)
