"""scDBM's units (Treppner et al. 2021, eq. 3-6): negative-binomial visible units in natural form and their
gamma-Poisson draws, and Bernoulli and categorical draws of the hidden units."""

from __future__ import annotations

import torch

#: Upper bound of the NB natural parameters ``a`` (paper: ``a_m <= -1e-10``).
A_MAX = -1e-10
#: Largest Poisson rate drawn (a guard against ``eta`` next to 0, where the NB mean explodes).
MAX_RATE = 1e8


def nb_mean(eta: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Mean ``theta e^eta / (1 - e^eta)`` of the NB with natural parameter ``eta < 0`` (paper eq. 6).

    ``eta`` below -60 counts as -60 (mean ``< 1e-26 theta``): smaller means are zero for every purpose, and
    subnormal floats would slow every operation on them down a hundredfold."""
    return theta / torch.expm1((-eta).clamp(max=60.0))


def nb_log_prob(y: torch.Tensor, eta: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``log p(y)`` of NB counts in natural form: ``y eta + theta log(1 - e^eta) + log C(y + theta - 1, y)``."""
    return (
        y * eta
        + theta * torch.log(-torch.expm1(eta))
        + torch.lgamma(y + theta)
        - torch.lgamma(theta)
        - torch.lgamma(y + 1.0)
    )


def sample_nb(mean: torch.Tensor, theta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """NB counts with the given means (cells x genes) and per-gene ``theta``, as a gamma-Poisson mixture."""
    shape = theta.expand_as(mean).contiguous()
    rate = torch._standard_gamma(shape, generator=generator) * (mean / theta)
    return torch.poisson(rate.clamp_(max=MAX_RATE), generator=generator)


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.bernoulli(p, generator=generator)


def gumbel_argmax(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One categorical draw per row with probabilities ``softmax(logits)`` (Gumbel-max)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    return (logits - torch.log(-torch.log(u.clamp_(min=1e-12)))).argmax(1)
