"""scDBM's generation (Treppner et al. 2021, eq. 6-8 as Gibbs conditionals): integer counts drawn from the
fitted DBM by Gibbs sampling (one chain per cell, or thinned persistent chains) or exactly through the
hidden marginal ``p(h1)`` (small ``H1``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch

from scsynth_core.models.scdbm.nb import bernoulli, sample_nb
from scsynth_core.models.training import flush_denormals

if TYPE_CHECKING:
    from scsynth_core.models.scdbm.dbm import NegativeBinomialDBM


def sample_cells(
    machine: NegativeBinomialDBM,
    params: Mapping[str, Any],
    n: int,
    gen: torch.Generator,
    state: dict[str, Any],
    device: torch.device,
) -> sp.csr_matrix:
    """``n`` cells (one ``sample`` chunk) of the fitted ``machine`` as a float32 CSR matrix of counts;
    ``state``: the persistent chains of the ``sample`` call (``sample_chains``)."""
    p = params
    with torch.inference_mode(), flush_denormals():
        if p["sampler"] == "exact":
            states = machine.hidden_states()
            weights = torch.softmax(machine.h1_log_weights(states), 0)
            idx = torch.multinomial(weights, n, replacement=True, generator=gen)
            h1 = states[idx].to(machine.W1.dtype)
            cells = sample_nb(machine.visible_mean(h1), machine.theta, gen)
        elif p["sample_chains"] is None:
            h1 = bernoulli(torch.full((n, machine.hidden_sizes[0]), 0.5, device=device), gen)
            h1 = machine.gibbs(h1, p["burn_in"], gen, scheme=p["gibbs_scheme"])
            cells = sample_nb(machine.visible_mean(h1), machine.theta, gen)
        else:
            cells = thinned_cells(machine, p, n, gen, state, device)
    return to_csr(cells)


def thinned_cells(
    machine: NegativeBinomialDBM,
    params: Mapping[str, Any],
    n: int,
    gen: torch.Generator,
    state: dict[str, Any],
    device: torch.device,
) -> torch.Tensor:
    """``n`` cells from ``sample_chains`` persistent chains, one cell per chain every ``thinning`` steps."""
    p = params
    parts = [] if state["leftover"] is None else [state["leftover"]]
    have = sum(x.shape[0] for x in parts)
    while have < n:
        if state["h1"] is None:
            h1 = bernoulli(torch.full((p["sample_chains"], machine.hidden_sizes[0]), 0.5, device=device), gen)
            state["h1"] = machine.gibbs(h1, p["burn_in"], gen, scheme=p["gibbs_scheme"])
        else:
            state["h1"] = machine.gibbs(state["h1"], p["thinning"], gen, scheme=p["gibbs_scheme"])
        parts.append(sample_nb(machine.visible_mean(state["h1"]), machine.theta, gen))
        have += parts[-1].shape[0]
    cells = torch.cat(parts)
    state["leftover"] = cells[n:] if cells.shape[0] > n else None
    return cells[:n]


def to_csr(cells: torch.Tensor) -> sp.csr_matrix:
    """Integer-valued counts (cells x genes) as a float32 CSR matrix, converted in row blocks."""
    rows = max(1, (1 << 22) // max(cells.shape[1], 1))
    blocks = [
        sp.csr_matrix(cells[i : i + rows].to(torch.float32).cpu().numpy()) for i in range(0, cells.shape[0], rows)
    ]
    if not blocks:
        return sp.csr_matrix((0, cells.shape[1]), dtype=np.float32)
    return sp.vstack(blocks, format="csr")
