"""scDBM's dispersion updates (Treppner et al. 2021, eq. 9): per-gene NB inverse dispersion by regularised
Fisher scoring, and the shift of ``a`` that keeps means when ``theta`` changes (``dispersion_keep_means``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from scsynth_core.errors import ConfigError
from scsynth_core.models.scdbm.nb import nb_mean


def keep_means_shift(
    a: torch.Tensor, theta_old: torch.Tensor, theta_new: torch.Tensor, gene_means: torch.Tensor
) -> torch.Tensor:
    """Shift of ``a`` that goes with a new ``theta`` (``dispersion_keep_means``): ``log((r + theta_old) /
    (r + theta_new))``, which keeps the mean of a cell whose mean count is ``r``.

    With ``eta`` fixed a new ``theta`` would move every mean (by about ``theta_new / theta_old`` for small means),
    so ``r`` is the gene's mean count; where ``theta`` falls, ``r`` is at least the mean of the hidden-off state
    (``nb_mean(a, theta_old)``, the gene's largest: ``W1 <= 0``), so that no state's mean exceeds it and no
    ``eta`` crosses 0. Keeping the mean count alone moves every state whose mean is above about
    ``r + theta_new`` past ``eta = 0``, where the projection leaves ``eta = -1e-10`` and a mean of ~1e10 (on
    pbmc3k ``theta`` 1.61 -> 0.35 gave gene ARF6 (mean 0.47) a mean of 3.5e9 in the monocytes' state)."""
    falls = theta_new < theta_old
    ref = torch.where(falls, torch.maximum(gene_means, nb_mean(a, theta_old)), gene_means)
    return torch.log((ref + theta_old) / (ref + theta_new))


def _nonzeros(X, start: int, stop: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row (within the block), column and value of every non-zero of rows ``start:stop`` (float64 values)."""
    if sp.issparse(X):
        block = sp.coo_matrix(X[start:stop])
        rows, cols, vals = block.row, block.col, block.data
    elif isinstance(X, torch.Tensor):
        block = X[start:stop]
        rows, cols = block.nonzero(as_tuple=True)
        return rows.to(device), cols.to(device), block[rows, cols].to(device, torch.float64)
    else:
        block = np.asarray(X[start:stop])
        rows, cols = np.nonzero(block)
        vals = block[rows, cols]
    return (
        torch.as_tensor(rows.astype(np.int64), device=device),
        torch.as_tensor(cols.astype(np.int64), device=device),
        torch.as_tensor(np.asarray(vals, dtype=np.float64), device=device),
    )


def _mean_block(mu, start: int, stop: int, n_genes: int, device: torch.device) -> torch.Tensor:
    if callable(mu):
        block = mu(start, stop)
    else:
        block = mu if np.ndim(mu) == 1 else mu[start:stop]
    block = torch.as_tensor(np.asarray(block) if not isinstance(block, torch.Tensor) else block)
    block = block.to(device, torch.float64)
    if block.ndim == 1:
        block = block.expand(stop - start, n_genes)
    return block.clamp(min=1e-8)


def fit_nb_dispersion(
    X,
    mu,
    *,
    lam: float = 1.0,
    n_iter: int = 20,
    theta0=None,
    tol: float = 1e-6,
    theta_min: float = 0.01,
    theta_max: float = 1e6,
    block_rows: int = 4096,
    cache_elements: int = 1 << 24,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Per-gene NB inverse dispersion ``theta`` for counts with known means, by regularised Fisher scoring.

    Treppner et al. 2021, eq. 9: for every gene ``g`` maximise
    ``sum_i log NB(y_ig | mu_ig, theta_g) - lam / theta_g^2`` by the iteration
    ``theta <- theta + (score + 2 lam / theta^3) / (info + 6 lam / theta^4)`` with the observed information
    (MASS ``theta.ml`` style, as the reference's ``mle_for_θ``), all genes at once. A gene stops when its step is
    ``<= tol``; ``theta`` is floored at ``theta_min`` before every iteration (the reference's 0.01) and each step
    stays within a factor of 10 (a step with non-positive information doubles or halves ``theta`` in the
    direction of the score). ``lam = 0`` gives the plain maximum-likelihood estimate.

    Parameters
    ----------
    X
        Counts, cells x genes (scipy sparse, numpy or torch). Streamed in blocks of ``block_rows`` cells.
    mu
        NB means: an array (cells x genes, or one value per gene) or a callable ``(start, stop) -> means`` of the
        cells ``start:stop``. Blocks are kept (float64) while ``cells x genes <= cache_elements``, otherwise
        re-read on every iteration.
    lam
        Penalty weight ``lambda`` (reference notebooks: 1.0, 2.5).
    n_iter
        Maximum number of iterations (reference: 20).
    theta0
        Start value (scalar or per gene). ``None``: the reference's moment value ``n / sum_i (y_i / mu_i - 1)^2``.

    Returns
    -------
    ``theta`` per gene (float64 array).
    """
    n, n_genes = X.shape
    dev = torch.device("cpu") if device is None else torch.device(device)
    if n < 1:
        raise ConfigError("fit_nb_dispersion: no cells")

    def load(start: int) -> tuple[torch.Tensor, ...]:
        stop = min(start + block_rows, n)
        return (*_nonzeros(X, start, stop, dev), _mean_block(mu, start, stop, n_genes, dev))

    starts = range(0, n, block_rows)
    cached = [load(start) for start in starts] if n * n_genes <= cache_elements else None

    def blocks():
        yield from cached if cached is not None else (load(start) for start in starts)

    if theta0 is None:  # the reference's start: n / sum (y / mu - 1)^2, zeros contributing 1 each
        acc = torch.zeros(n_genes, dtype=torch.float64, device=dev)
        for rows, cols, vals, m in blocks():
            r = vals / m[rows, cols]
            acc.index_add_(0, cols, r * (r - 2.0))
        theta = n / (n + acc)
        theta = torch.where(theta > 0, theta, torch.full_like(theta, theta_max))
    else:
        theta = torch.as_tensor(np.asarray(theta0, dtype=np.float64), device=dev).expand(n_genes).clone()
    theta = theta.nan_to_num(nan=1.0, posinf=theta_max).clamp(theta_min, theta_max)
    active = torch.ones(n_genes, dtype=torch.bool, device=dev)
    for _ in range(int(n_iter)):
        genes = active.nonzero().squeeze(1)  # only genes still moving are computed
        position = torch.full((n_genes,), -1, dtype=torch.long, device=dev)
        position[genes] = torch.arange(len(genes), device=dev)
        th_g = theta[genes].clamp(min=theta_min)
        # Sums over cells: dense terms in mu, sparse terms in the non-zero counts (for y = 0 the digamma and
        # trigamma differences vanish).
        s_log = torch.zeros(len(genes), dtype=torch.float64, device=dev)  # sum log(mu + theta)
        s_inv = torch.zeros_like(s_log)  # sum 1 / (mu + theta)
        s_inv2 = torch.zeros_like(s_log)  # sum 1 / (mu + theta)^2
        t_dig = torch.zeros_like(s_log)  # sum_nz digamma(y + theta) - digamma(theta)
        t_tri = torch.zeros_like(s_log)  # sum_nz trigamma(y + theta) - trigamma(theta)
        t_y1 = torch.zeros_like(s_log)  # sum_nz y / (mu + theta)
        t_y2 = torch.zeros_like(s_log)  # sum_nz y / (mu + theta)^2
        for rows, cols, vals, m in blocks():
            inv = (m if len(genes) == n_genes else m[:, genes]) + th_g
            s_log += inv.log().sum(0)
            inv.reciprocal_()
            s_inv += inv.sum(0)
            s_inv2 += inv.square().sum(0)
            keep = active[cols]
            r, c, y = rows[keep], position[cols[keep]], vals[keep]
            th = th_g[c]
            inv_nz = inv[r, c]
            t_dig.index_add_(0, c, torch.special.digamma(y + th) - torch.special.digamma(th))
            t_tri.index_add_(0, c, torch.special.polygamma(1, y + th) - torch.special.polygamma(1, th))
            t_y1.index_add_(0, c, y * inv_nz)
            t_y2.index_add_(0, c, y * inv_nz.square())
        score = t_dig + n * (th_g.log() + 1.0) - s_log - (t_y1 + th_g * s_inv) + 2.0 * lam / th_g**3
        info = -t_tri - n / th_g + 2.0 * s_inv - (t_y2 + th_g * s_inv2) + 6.0 * lam / th_g**4
        step = score / info
        usable = torch.isfinite(step) & (info > 0)
        step = torch.where(usable, step, torch.where(score > 0, th_g, -0.5 * th_g))
        theta[genes] = torch.minimum(torch.maximum(th_g + step, th_g / 10), th_g * 10).clamp(theta_min, theta_max)
        active[genes[usable & (step.abs() <= tol)]] = False
        if not bool(active.any()):
            break
    return theta.clamp(theta_min, theta_max).cpu().numpy()
