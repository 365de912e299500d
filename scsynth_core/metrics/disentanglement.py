"""Disentanglement and code-data metrics of MichiGAN (Yu & Welch 2021, Genome Biology 22:158, Methods).

The paper scores a representation ``z`` (cells x latent dims) against known generating factors (simulated batch,
path, step, library size) with three disentanglement metrics, and scores generated cells with an inception score
and with "code-data correlations":

- :func:`mig` -- mutual information gap (Chen et al. 2018, "Isolating sources of disentanglement in VAEs", Sec. 4),
  histogram estimate from codes; :func:`posterior_mig` -- the same gap estimated through the encoder posterior.
- :func:`factorvae_metric` -- the FactorVAE metric (Kim & Mnih 2018, "Disentangling by factorising", Sec. 4).
- :func:`spearman_correlation_gap` -- MichiGAN's rank-correlation analogue of MIG.
- :func:`inception_score` / :func:`rf_inception_score` -- Salimans et al. 2016 ("Improved techniques for training
  GANs", Sec. 4), with a random-forest cell-type classifier trained on real cells in place of Inception.
- :func:`knn_factor_regression` / :func:`code_factor_spearman` / :func:`code_factor_gaps` -- the factors of
  generated cells are predicted from their k = 3 nearest real cells and correlated with the codes the cells were
  generated from (Table 4: the correlation gap of the generated cells).

Conventions: ``latents`` is a float array (cells x dims); ``factors`` is a 1-D array, a 2-D array (cells x
factors) or a DataFrame (column names become factor names). Discrete factors (integers, strings, categoricals,
booleans, or floats with at most ``n_bins`` distinct values) are used as labels; continuous float factors with
more distinct values are discretised with :func:`discretize`. Mutual information and entropies are in nats.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from scsynth_core.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

N_BINS = 20


# ----------------------------------------------------------------------------------------------- input handling
def as_latents(latents, what: str = "latents") -> np.ndarray:
    """``latents`` as a finite, non-empty float64 array of cells x dims (a vector is one dim)."""
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[0] == 0:
        raise DataError(f"{what} must be a non-empty 2-D array (cells x dims), got shape {np.shape(latents)}")
    if not np.isfinite(z).all():
        raise DataError(f"{what} contain non-finite values (NaN or inf)")
    return z


def _column(series: pd.Series):
    """A Series as a NumPy array, or as a ``pd.Categorical`` to keep the category order."""
    return series.array if isinstance(series.dtype, pd.CategoricalDtype) else series.to_numpy()


def _factor_columns(factors, n_cells: int) -> tuple[list[str], list[np.ndarray]]:
    """Split ``factors`` into named 1-D columns, checking the number of cells."""
    if isinstance(factors, pd.DataFrame):
        names = [str(c) for c in factors.columns]
        cols = [_column(factors[c]) for c in factors.columns]
    elif isinstance(factors, pd.Series):
        names = [str(factors.name) if factors.name is not None else "factor0"]
        cols = [_column(factors)]
    else:
        arr = np.asarray(factors)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise DataError(f"factors must be 1-D or 2-D (cells x factors), got shape {arr.shape}")
        names = [f"factor{k}" for k in range(arr.shape[1])]
        cols = [arr[:, k] for k in range(arr.shape[1])]
    if not cols:
        raise DataError("factors has no columns")
    for name, col in zip(names, cols):
        if len(col) != n_cells:
            raise DataError(f"factor '{name}' has {len(col)} values but there are {n_cells} cells")
        if pd.isna(col).any():
            raise DataError(f"factor '{name}' contains missing values")
    return names, cols


def _is_continuous(col: np.ndarray, n_bins: int) -> bool:
    return col.dtype.kind == "f" and len(np.unique(col)) > n_bins


def _encode_factors(factors, n_cells: int, n_bins: int) -> tuple[list[str], np.ndarray]:
    """Integer level codes (cells x factors); continuous factors are discretised, one-level factors rejected."""
    names, cols = _factor_columns(factors, n_cells)
    codes = np.empty((n_cells, len(cols)), dtype=np.int64)
    for k, (name, col) in enumerate(zip(names, cols)):
        if isinstance(col, pd.Categorical):
            codes[:, k] = col.codes
        elif _is_continuous(col, n_bins):
            codes[:, k] = discretize(col.astype(np.float64), n_bins)
        else:
            codes[:, k] = np.unique(col.astype(str) if col.dtype == object else col, return_inverse=True)[1]
        # re-index to consecutive levels (empty bins of a discretised factor are not levels)
        codes[:, k] = np.unique(codes[:, k], return_inverse=True)[1]
        if codes[:, k].max() == 0:
            raise DataError(f"factor '{name}' has a single level: it cannot be related to any latent dimension")
    return names, codes


def _numeric_factors(factors, n_cells: int) -> tuple[list[str], np.ndarray]:
    """Factors as floats for rank correlation and regression; non-numeric labels become codes of sorted levels
    (ordered categoricals keep their category order)."""
    names, cols = _factor_columns(factors, n_cells)
    out = np.empty((n_cells, len(cols)), dtype=np.float64)
    for k, col in enumerate(cols):
        if isinstance(col, pd.Categorical):
            out[:, k] = col.codes
        elif col.dtype.kind in "biuf":
            out[:, k] = col.astype(np.float64)
        else:
            out[:, k] = np.unique(col.astype(str), return_inverse=True)[1]
    return names, out


# --------------------------------------------------------------------------------------------- discretisation
def discretize(values, n_bins: int = N_BINS, *, strategy: Literal["uniform", "quantile"] = "uniform") -> np.ndarray:
    """Bin continuous values column by column into integer codes ``0 .. n_bins - 1``.

    Parameters
    ----------
    values
        1-D array (one variable) or 2-D array (cells x variables); each column is binned on its own.
    n_bins
        Number of bins per column.
    strategy
        - ``"uniform"`` (default): equal-width bins between the column's minimum and maximum, the last bin closed
          (as ``numpy.histogram``). This is the histogram discretisation of Locatello et al. 2019
          (disentanglement_lib) for MIG; it keeps the shape of the marginal, so MI is not inflated for skewed codes.
        - ``"quantile"``: equal-frequency bins from ranks (ties share a bin, so heavy ties give fewer bins).

    Returns
    -------
    Integer codes with the shape of ``values``. A constant column is all zeros.

    Examples
    --------
    >>> discretize(np.array([0.0, 0.5, 1.0]), n_bins=2)
    array([0, 1, 1])
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise DataError(f"values to discretise must be a non-empty 1-D or 2-D array, got shape {x.shape}")
    if n_bins < 1:
        raise DataError(f"n_bins must be >= 1, got {n_bins}")
    if not np.isfinite(x).all():
        raise DataError("values to discretise contain non-finite values (NaN or inf)")
    if strategy == "uniform":
        lo, hi = x.min(axis=0), x.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        codes = np.floor((x - lo) / span * n_bins).astype(np.int64)
        return np.clip(codes, 0, n_bins - 1)
    if strategy == "quantile":
        ranks = stats.rankdata(x, method="min", axis=0) - 1  # 0-based, ties share the lowest rank
        return np.minimum((ranks * n_bins) // x.shape[0], n_bins - 1).astype(np.int64)
    raise DataError(f"unknown discretisation strategy '{strategy}' (use 'uniform' or 'quantile')")


# --------------------------------------------------------------------------------------------- information
def _entropy_of_codes(codes: np.ndarray) -> np.ndarray:
    """Empirical entropy (nats) of each column of integer codes."""
    n = codes.shape[0]
    out = np.empty(codes.shape[1])
    for k in range(codes.shape[1]):
        p = np.bincount(codes[:, k]) / n
        p = p[p > 0]
        out[k] = -(p * np.log(p)).sum()
    return out


def _mi_from_codes(fcodes: np.ndarray, lcodes: np.ndarray) -> np.ndarray:
    """Plug-in MI (nats) between each factor column and each latent column of integer codes, (K x D).

    One joint contingency table per factor covers all latent dims at once (a bincount over offset indices).
    """
    n, n_dims = lcodes.shape
    n_lbins = int(lcodes.max()) + 1
    offsets = np.arange(n_dims) * n_lbins
    mi = np.empty((fcodes.shape[1], n_dims))
    for k in range(fcodes.shape[1]):
        n_levels = int(fcodes[:, k].max()) + 1
        idx = (fcodes[:, k, None] * n_lbins + lcodes) + offsets * n_levels
        joint = np.bincount(idx.ravel(), minlength=n_dims * n_levels * n_lbins).reshape(n_dims, n_levels, n_lbins)
        p = joint / n
        outer = p.sum(axis=2, keepdims=True) * p.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p / np.where(outer > 0, outer, 1.0)), 0.0)
        mi[k] = np.maximum(terms.sum(axis=(1, 2)), 0.0)
    return mi


def mutual_information_matrix(latents, factors, *, n_bins: int = N_BINS) -> pd.DataFrame:
    """Mutual information (nats) between every factor and every latent dimension.

    Latent dims are discretised into ``n_bins`` equal-width bins (:func:`discretize`); factors are used as labels
    (continuous float factors discretised the same way). The estimate is the plug-in MI of the contingency table,
    identical to ``sklearn.metrics.mutual_info_score`` per pair.

    Returns
    -------
    DataFrame (factors x latent dims); columns ``z0, z1, ...``.
    """
    z = as_latents(latents)
    names, fcodes = _encode_factors(factors, z.shape[0], n_bins)
    mi = _mi_from_codes(fcodes, discretize(z, n_bins))
    return pd.DataFrame(mi, index=names, columns=[f"z{j}" for j in range(z.shape[1])])


def _top_gap(scores: np.ndarray) -> np.ndarray:
    """Per row: largest minus second-largest value."""
    top2 = -np.sort(-scores, axis=1)[:, :2]
    return top2[:, 0] - top2[:, 1]


def _gap_summary(names: list[str], fcodes: np.ndarray, mi: np.ndarray, normalise: str) -> dict[str, object]:
    """MIG from an MI matrix (factors x dims): per factor (top1 - top2) / normaliser, averaged."""
    if normalise == "entropy":
        norm = _entropy_of_codes(fcodes)
    elif normalise == "levels":
        norm = np.log(fcodes.max(axis=0) + 1.0)
    else:
        raise DataError(f"unknown MIG normalisation '{normalise}' (use 'entropy' or 'levels')")
    gaps = _top_gap(mi) / norm
    return {
        "mig": float(gaps.mean()),
        "gaps": {name: float(g) for name, g in zip(names, gaps)},
        "mi": pd.DataFrame(mi, index=names, columns=[f"z{j}" for j in range(mi.shape[1])]),
        "normaliser": {name: float(v) for name, v in zip(names, norm)},
    }


def mig(
    latents, factors, *, normalise: Literal["entropy", "levels"] = "entropy", n_bins: int = N_BINS
) -> dict[str, object]:
    """Mutual information gap (Chen et al. 2018, Sec. 4; Yu & Welch 2021 Methods "Disentanglement metrics").

    For each factor ``v_k``: ``(I(v_k; z_a) - I(v_k; z_b)) / norm_k`` with ``z_a``, ``z_b`` the latent dims of
    largest and second-largest MI; MIG is the mean over factors.

    MI is the histogram estimate of :func:`mutual_information_matrix` (as in Locatello et al. 2019): it needs only
    codes, so PCA, GAN and VAE codes are scored the same way. :func:`posterior_mig` is Chen et al.'s estimator
    through the encoder posterior ``q(z|x)`` (the paper's), for models that have one.

    Parameters
    ----------
    latents
        Codes, cells x dims (at least 2 dims).
    factors
        Ground-truth factors (see module docstring).
    normalise
        - ``"entropy"``: ``norm_k = H(v_k)``, the empirical factor entropy (Chen et al. 2018).
        - ``"levels"``: ``norm_k = log(#levels of v_k)``, the "balanced" variant MichiGAN reports, equal to
          ``H(v_k)`` for a uniformly distributed factor.
    n_bins
        Bins per latent dim (and per continuous factor).

    Returns
    -------
    dict with ``mig`` (float), ``gaps`` ({factor: normalised gap}), ``mi`` (DataFrame factors x dims, nats) and
    ``normaliser`` ({factor: norm_k}).
    """
    z = as_latents(latents)
    if z.shape[1] < 2:
        raise DataError(f"MIG needs at least 2 latent dimensions, got {z.shape[1]}")
    names, fcodes = _encode_factors(factors, z.shape[0], n_bins)
    mi = _mi_from_codes(fcodes, discretize(z, n_bins))
    return _gap_summary(names, fcodes, mi, normalise)


# --------------------------------------------------------------------------------- MIG through the posterior
#: Elements of one (points x cells x dims) block of Gaussian log densities (16 MB of float32).
_DENSITY_BLOCK = 4_000_000


def _mixture_log_density(points: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``log (1/n) sum_n N(points_ij; mu_nj, sd_nj)`` for every point ``i`` and dim ``j`` (points x dims), the
    density of the aggregate posterior of ``n`` cells, one dim at a time, in blocks of points. Torch float32
    (several times faster than NumPy for this O(points x n) work; entropies agree to ~1e-6)."""
    import torch

    n, dims = mu.shape
    p, m, s = (torch.as_tensor(np.asarray(x), dtype=torch.float32) for x in (points, mu, sd))
    inv, log_norm = 1.0 / s, -torch.log(s) - 0.5 * math.log(2 * math.pi)
    out = torch.empty(p.shape, dtype=torch.float32)
    step = max(1, _DENSITY_BLOCK // (n * dims))
    for start in range(0, p.shape[0], step):
        log_pdf = log_norm - 0.5 * ((p[start : start + step, None, :] - m) * inv) ** 2  # (block, n, dims)
        out[start : start + step] = torch.logsumexp(log_pdf, dim=1) - math.log(n)
    return out.numpy().astype(np.float64)


def posterior_mig(
    mu,
    logvar,
    factors,
    *,
    normalise: Literal["entropy", "levels"] = "entropy",
    max_cells: int = 12_000,
    seed: int = 0,
    n_bins: int = N_BINS,
) -> dict[str, object]:
    """Mutual information gap estimated through a Gaussian encoder posterior ``q(z|x) = N(mu, diag(exp(logvar)))``
    (Chen et al. 2018, Sec. 4 "MIG"; the estimator of MichiGAN's ``metrics/DisentangleMetrics.py``).

    With one draw ``z_n ~ q(z|x_n)`` per cell, ``H(z_j) = -mean_n log q(z_nj)`` where ``q(z_j) = (1/N) sum_m
    q(z_j|x_m)`` is the aggregate posterior, and ``H(z_j | v_k) = sum_v p(v) H(z_j | v_k = v)`` with the aggregate
    over the cells at level ``v``; ``I(z_j; v_k) = H(z_j) - H(z_j | v_k)``. Gaps and normalisation as :func:`mig`.
    Unlike the histogram estimate it accounts for the encoder's uncertainty: a dim with a wide posterior carries
    little information however its means spread. Costs ``O(N^2 D)``; at most ``max_cells`` cells (drawn with
    ``seed``) are used, 12,000 as in the reference.

    Returns the dict of :func:`mig`.
    """
    mu = as_latents(mu, "posterior means")
    logvar = as_latents(logvar, "posterior log-variances")
    if logvar.shape != mu.shape:
        raise DataError(f"posterior means {mu.shape} and log-variances {logvar.shape} differ in shape")
    if mu.shape[1] < 2:
        raise DataError(f"MIG needs at least 2 latent dimensions, got {mu.shape[1]}")
    names, fcodes = _encode_factors(factors, mu.shape[0], n_bins)
    rng = np.random.default_rng(seed)
    if mu.shape[0] > max_cells:
        keep = np.sort(rng.choice(mu.shape[0], max_cells, replace=False))
        mu, logvar, fcodes = mu[keep], logvar[keep], fcodes[keep]
    sd = np.exp(0.5 * logvar)
    z = mu + sd * rng.standard_normal(mu.shape)
    marginal = -_mixture_log_density(z, mu, sd).mean(axis=0)  # H(z_j)
    mi = np.empty((len(names), mu.shape[1]))
    for k in range(len(names)):
        conditional = np.zeros(mu.shape[1])
        for level in np.unique(fcodes[:, k]):
            at = fcodes[:, k] == level
            conditional -= at.mean() * _mixture_log_density(z[at], mu[at], sd[at]).mean(axis=0)
        mi[k] = np.maximum(marginal - conditional, 0.0)
    return _gap_summary(names, fcodes, mi, normalise)


# ------------------------------------------------------------------------------------------- FactorVAE metric
def factorvae_metric(
    latents,
    factors,
    *,
    n_votes: int = 10_000,
    batch: int = 40,
    n_train: int = 8_000,
    seed: int = 0,
    n_bins: int = N_BINS,
) -> float:
    """FactorVAE disentanglement metric (Kim & Mnih 2018, Sec. 4; Yu & Welch 2021 Methods: 10,000 votes of 40
    cells, 8,000 to train and 2,000 to test).

    1. Each latent dim is divided by its standard deviation over all cells.
    2. A vote: draw a factor ``k`` uniformly, fix it at the level of a uniformly drawn cell (so levels follow their
       empirical frequency), draw ``batch`` cells with that level (with replacement), and record the dim with the
       LOWEST variance across those cells (the dim that encodes ``k`` barely moves when ``k`` is fixed).
       Constant latent dims are never chosen.
    3. A majority-vote classifier maps each dim to the factor it was most often recorded for (on the first
       ``n_train`` votes; ties and unseen dims go to the lowest factor index); the score is its accuracy on the
       remaining votes. Chance level is ``1 / n_factors``.

    Continuous factors are discretised into ``n_bins`` levels, as in :func:`mig`.
    """
    z = as_latents(latents)
    _, fcodes = _encode_factors(factors, z.shape[0], n_bins)
    if not 0 < n_train < n_votes:
        raise DataError(f"n_train must be in 1 .. n_votes - 1 (n_votes={n_votes}), got {n_train}")
    if batch < 2:
        raise DataError(f"batch must be >= 2 cells to compute a variance, got {batch}")
    n, n_dims = z.shape
    n_factors = fcodes.shape[1]
    sd = z.std(axis=0)
    active = sd > 0
    if not active.any():
        raise DataError("all latent dimensions are constant")
    zs = np.where(active, (z - z.mean(axis=0)) / np.where(active, sd, 1.0), 0.0)

    # cells grouped by (factor, level): one stable ordering per factor, concatenated
    order = np.argsort(fcodes, axis=0, kind="stable")  # (n, K)
    perm = order.T.ravel()  # factor k occupies perm[k*n:(k+1)*n]
    level_sizes = [np.bincount(fcodes[:, k]) for k in range(n_factors)]
    start = np.full((n_factors, max(len(s) for s in level_sizes)), -1, dtype=np.int64)
    size = np.zeros_like(start)
    for k, s in enumerate(level_sizes):
        start[k, : len(s)] = k * n + np.concatenate([[0], np.cumsum(s)[:-1]])
        size[k, : len(s)] = s

    rng = np.random.default_rng(seed)
    vote_factor = rng.integers(n_factors, size=n_votes)
    anchor = rng.integers(n, size=n_votes)
    vote_level = fcodes[anchor, vote_factor]
    g_start, g_size = start[vote_factor, vote_level], size[vote_factor, vote_level]
    vote_dim = np.empty(n_votes, dtype=np.int64)
    chunk = max(1, 2_000_000 // (batch * n_dims))  # bound the (votes x batch x dims) block
    for lo in range(0, n_votes, chunk):
        hi = min(lo + chunk, n_votes)
        u = rng.random((hi - lo, batch))
        cells = perm[g_start[lo:hi, None] + (u * g_size[lo:hi, None]).astype(np.int64)]
        var = zs[cells].var(axis=1)  # (votes, dims)
        var[:, ~active] = np.inf
        vote_dim[lo:hi] = var.argmin(axis=1)

    counts = np.zeros((n_dims, n_factors), dtype=np.int64)
    np.add.at(counts, (vote_dim[:n_train], vote_factor[:n_train]), 1)
    classifier = counts.argmax(axis=1)
    return float((classifier[vote_dim[n_train:]] == vote_factor[n_train:]).mean())


# ---------------------------------------------------------------------------------------- rank correlations
def _spearman_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rho between each column of ``a`` and each column of ``b`` (NaN where a column is constant)."""
    ok_a = np.ptp(a, axis=0) > 0
    ok_b = np.ptp(b, axis=0) > 0
    out = np.full((a.shape[1], b.shape[1]), np.nan)
    na, nb = int(ok_a.sum()), int(ok_b.sum())
    if na == 0 or nb == 0:
        return out
    rho = stats.spearmanr(np.column_stack([a[:, ok_a], b[:, ok_b]])).statistic
    rho = np.atleast_2d(rho)
    if rho.shape == (1, 1):  # two columns: spearmanr returns the scalar
        rho = np.array([[1.0, rho[0, 0]], [rho[0, 0], 1.0]])
    out[np.ix_(ok_a, ok_b)] = rho[:na, na:]
    return out


def spearman_correlation_gap(latents, factors) -> dict[str, object]:
    """MichiGAN's correlation gap (Yu & Welch 2021 Methods): the MIG recipe with |Spearman rho| in place of MI.

    ``|rho|`` is computed for every (factor, latent dim) pair; per factor the gap is the largest minus the
    second-largest value; the score is the mean over factors. Non-numeric factors are ranked by their sorted
    labels (a binary factor's ordering does not change |rho|). A constant latent dim counts as ``|rho| = 0``.

    Returns
    -------
    dict with ``gap`` (float), ``gaps`` ({factor: gap}) and ``abs_rho`` (DataFrame factors x dims).
    """
    z = as_latents(latents)
    if z.shape[1] < 2:
        raise DataError(f"the correlation gap needs at least 2 latent dimensions, got {z.shape[1]}")
    names, f = _numeric_factors(factors, z.shape[0])
    for name, col in zip(names, f.T):
        if np.ptp(col) == 0:
            raise DataError(f"factor '{name}' is constant: its rank correlation is undefined")
    abs_rho = np.nan_to_num(np.abs(_spearman_block(f, z)), nan=0.0)
    gaps = _top_gap(abs_rho)
    return {
        "gap": float(gaps.mean()),
        "gaps": {name: float(g) for name, g in zip(names, gaps)},
        "abs_rho": pd.DataFrame(abs_rho, index=names, columns=[f"z{j}" for j in range(z.shape[1])]),
    }


# ------------------------------------------------------------------------------------------ inception score
def inception_score(
    classifier_probs,
    *,
    n_splits: int = 3,
    eps: float = 1e-6,
    marginal: Literal["split", "all"] = "split",
    seed: int | None = 0,
) -> tuple[float, float]:
    """Inception score ``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016, Sec. 4; Yu & Welch 2021 Methods).

    High when each generated cell is confidently one type (low entropy of ``p(y|x)``) and the types are evenly
    represented (high entropy of ``p(y)``): C confident, evenly spread classes give C; uniform predictions give 1.

    Parameters
    ----------
    classifier_probs
        Class probabilities, generated cells x classes (rows sum to 1).
    n_splits
        The cells are split into this many parts; the score is computed per part.
    eps
        Added inside both logarithms, ``p * (log(p + eps) - log(p_y + eps))``, so zero probabilities are finite.
    marginal
        - ``"split"`` (default): ``p(y)`` is the mean prediction within each split, as in Salimans et al. 2016,
          so every split is an independent estimate and their sd measures the estimator's spread.
        - ``"all"``: ``p(y)`` is the mean prediction over all cells, as in the MichiGAN reference code.
    seed
        Rows are shuffled with ``np.random.default_rng(seed)`` before splitting, so cells generated in label order
        do not give each split only a few classes; ``None`` keeps the given order.

    Returns
    -------
    ``(mean, sd)`` of the per-split scores (sd with ddof 0, as Salimans et al.).
    """
    p = np.asarray(classifier_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise DataError(f"classifier_probs must be a non-empty 2-D array (cells x classes), got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise DataError("classifier_probs must be finite, non-negative, and each row must sum to 1")
    if not 1 <= n_splits <= p.shape[0]:
        raise DataError(f"n_splits must be between 1 and the number of cells ({p.shape[0]}), got {n_splits}")
    if marginal not in ("split", "all"):
        raise DataError(f"unknown inception-score marginal '{marginal}' (use 'split' or 'all')")
    if seed is not None:
        p = p[np.random.default_rng(seed).permutation(p.shape[0])]
    log_p = np.log(p + eps)
    p_all = p.mean(axis=0)
    scores = []
    for part, log_part in zip(np.array_split(p, n_splits), np.array_split(log_p, n_splits)):
        p_y = part.mean(axis=0) if marginal == "split" else p_all
        kl = (part * (log_part - np.log(p_y + eps))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    scores = np.asarray(scores)
    return float(scores.mean()), float(scores.std())


def rf_inception_score(
    real_pcs,
    real_labels: Sequence,
    gen_pcs,
    *,
    n_trees: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    n_splits: int = 3,
    marginal: Literal["split", "all"] = "split",
) -> tuple[float, float]:
    """Inception score of generated cells under a random forest trained on real cells (Yu & Welch 2021 Methods:
    RF of 1,000 trees on real cells' principal components with their cell-type labels).

    ``real_pcs`` and ``gen_pcs`` must be in one representation (e.g. the shared PCA of
    :mod:`scsynth_core.metrics.representation`). See :func:`inception_score` for ``n_splits`` and ``marginal``;
    the forest uses ``random_state=seed`` and the split shuffle uses the same ``seed``.
    """
    from sklearn.ensemble import RandomForestClassifier

    x_real = as_latents(real_pcs, "real_pcs")
    x_gen = as_latents(gen_pcs, "gen_pcs")
    labels = np.asarray(real_labels)
    if len(labels) != x_real.shape[0]:
        raise DataError(f"real_labels has {len(labels)} values but real_pcs has {x_real.shape[0]} cells")
    if x_gen.shape[1] != x_real.shape[1]:
        raise DataError(f"gen_pcs has {x_gen.shape[1]} columns but real_pcs has {x_real.shape[1]}")
    if pd.isna(labels).any():
        raise DataError("real_labels contain missing values")
    if len(np.unique(labels.astype(str))) < 2:
        raise DataError("real_labels have a single class: an inception score needs at least 2 cell types")
    rf = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=n_jobs)
    rf.fit(x_real, labels.astype(str))
    return inception_score(rf.predict_proba(x_gen), n_splits=n_splits, marginal=marginal, seed=seed)


# -------------------------------------------------------------------------------- code-data correlations
def knn_factor_regression(real_pcs, real_factors, gen_pcs, *, k: int = 3) -> np.ndarray:
    """Predict the factors of generated cells as the mean over their ``k`` nearest real cells (Euclidean, in a
    shared representation) -- MichiGAN's "code-data correlation" step (Yu & Welch 2021 Methods, k = 3).

    Non-numeric factors are coded by their sorted labels first (see :func:`spearman_correlation_gap`).

    Returns
    -------
    float array (generated cells x factors); 1-D if ``real_factors`` is 1-D.
    """
    from sklearn.neighbors import KNeighborsRegressor

    x_real = as_latents(real_pcs, "real_pcs")
    x_gen = as_latents(gen_pcs, "gen_pcs")
    if x_gen.shape[1] != x_real.shape[1]:
        raise DataError(f"gen_pcs has {x_gen.shape[1]} columns but real_pcs has {x_real.shape[1]}")
    if not 1 <= k <= x_real.shape[0]:
        raise DataError(f"k must be between 1 and the number of real cells ({x_real.shape[0]}), got {k}")
    _, f = _numeric_factors(real_factors, x_real.shape[0])
    pred = KNeighborsRegressor(n_neighbors=k).fit(x_real, f).predict(x_gen)
    pred = np.asarray(pred, dtype=np.float64).reshape(x_gen.shape[0], f.shape[1])
    return pred[:, 0] if np.ndim(real_factors) == 1 and not isinstance(real_factors, pd.DataFrame) else pred


def code_factor_spearman(codes, predicted_factors) -> pd.DataFrame:
    """Signed Spearman rho between each code dim used to generate cells and each factor predicted for those cells
    (:func:`knn_factor_regression`); MichiGAN keeps the code-factor correlations of its beta-TCVAE codes.

    Returns
    -------
    DataFrame (factors x code dims; columns from ``codes`` when it is a DataFrame, else ``z0, z1, ...``); NaN
    where a code dim or a predicted factor is constant.
    """
    z = as_latents(codes, "codes")
    names, f = _numeric_factors(predicted_factors, z.shape[0])
    columns = (
        [str(c) for c in codes.columns] if isinstance(codes, pd.DataFrame) else [f"z{j}" for j in range(z.shape[1])]
    )
    return pd.DataFrame(_spearman_block(f, z), index=names, columns=columns)


def code_factor_gaps(codes, predicted_factors) -> pd.DataFrame:
    """MichiGAN's correlation gap of generated cells (Yu & Welch 2021, Table 4): per factor, the largest
    ``|Spearman rho|`` between a code dim and the factor predicted for the cells (:func:`code_factor_spearman`)
    and the gap, largest minus second-largest ``|rho|``; the table's score is the gap's mean over factors.

    The largest ``|rho|`` alone rewards a code that spreads one factor over several dims; the gap is high only
    when one dim carries the factor. A constant code dim or predicted factor counts as ``|rho| = 0`` (a generator
    whose cells all take one level of a factor relates no code to it).

    Returns
    -------
    DataFrame indexed by factor: ``abs_rho`` (largest), ``gap`` and ``top_dim`` (the dim of the largest).
    """
    abs_rho = code_factor_spearman(codes, predicted_factors).abs().fillna(0.0)
    if abs_rho.shape[1] < 2:
        raise DataError(f"the correlation gap needs at least 2 code dimensions, got {abs_rho.shape[1]}")
    values = abs_rho.to_numpy()
    return pd.DataFrame(
        {"abs_rho": values.max(axis=1), "gap": _top_gap(values), "top_dim": abs_rho.columns[values.argmax(axis=1)]},
        index=abs_rho.index,
    )
