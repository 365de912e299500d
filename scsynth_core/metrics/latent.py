"""Latent-space arithmetic and latent entropy (Yu & Welch 2021, Genome Biology 22:158, Methods "Latent space
arithmetic"; Figs. 6-7).

MichiGAN predicts an unseen cell type x condition combination (a drug never applied to a cell type) in the space
of disentangled codes: the codes of a control cell type under the target condition are shifted by the average
difference between the target type and the control type over the conditions observed for both,

    z_pred = z(control type, target condition)
             + mean over shared conditions c of [mean z(target type, c) - mean z(control type, c)],

and the predicted codes are decoded (by the generator) into cells. The entropy difference
``delta-H = H(z_pred) - H(z_real)`` summarises whether the predicted codes are as spread as the real codes of the
held-out combination (0 ideal; positive = too diffuse, negative = too concentrated).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from scsynth_core.errors import DataError
from scsynth_core.metrics.disentanglement import N_BINS, as_latents, discretize

#: The predictions of a held-out combination that the perturbation experiment scores against the real held-out
#: cells, in table order: latent arithmetic decoded by MichiGAN's generator, by the beta-TCVAE's decoder, and the
#: control cells themselves (Yu & Welch 2021, Figs. 6-7).
METHODS = ("michigan", "betatcvae", "control")
#: Value of ``obs["method"]`` for the real held-out cells in the predicted-cells file.
REAL = "real"


def _labels(values, n: int, what: str) -> np.ndarray:
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise DataError(f"{what} must have one value per cell ({n}), got shape {arr.shape}")
    if pd.isna(arr).any():
        raise DataError(f"{what} contains missing values")
    return arr.astype(object)


def latent_arithmetic(
    z,
    cell_type,
    condition,
    *,
    control_type,
    target_condition,
    target_type=None,
    balance: Literal["mean", "resample"] = "mean",
    seed: int = 0,
) -> np.ndarray:
    """Predict codes of ``target_type`` cells under ``target_condition`` by latent arithmetic (Yu & Welch 2021,
    Methods "Latent space arithmetic").

    Parameters
    ----------
    z
        Codes of observed cells, cells x dims. Cells of the held-out combination (``target_type`` x
        ``target_condition``) may be present; they are never used.
    cell_type, condition
        One label per cell.
    control_type
        The cell type observed under ``target_condition`` whose codes are shifted.
    target_condition
        The condition (drug) to predict.
    target_type
        The cell type to predict. When ``None`` it is inferred as the only cell type other than ``control_type``
        with no cells under ``target_condition``.
    balance
        How the type difference weighs the shared conditions (the conditions other than ``target_condition``
        observed for both types):

        - ``"mean"`` (default): every shared condition weighs the same, through its group means -- the exact
          expectation of the reference's oversampling, without its sampling noise.
        - ``"resample"``: the reference code's procedure (Yu & Welch 2021, Methods "Latent space arithmetic"):
          within each type, every shared condition's cells are resampled with replacement to the size of that
          type's largest condition; the larger of the two pools is subsampled without replacement to the size of
          the smaller; the shift is the difference of the pool means. Uses ``np.random.default_rng(seed)``.
    seed
        Seed of the ``"resample"`` balancing (the ``"mean"`` balancing is deterministic).

    Returns
    -------
    Predicted codes, one per ``control_type`` cell under ``target_condition`` (in the order of ``z``).

    Raises
    ------
    DataError
        When the control cells under ``target_condition`` are missing, when either type has no cells, or when
        the two types share no observed condition besides ``target_condition``.
    """
    z = as_latents(z, "z")
    ct = _labels(cell_type, z.shape[0], "cell_type")
    cond = _labels(condition, z.shape[0], "condition")
    types = pd.unique(ct)
    if control_type not in set(types):
        raise DataError(f"control_type '{control_type}' has no cells (cell types: {sorted(map(str, types))})")
    if target_type is None:
        candidates = [t for t in types if t != control_type and not ((ct == t) & (cond == target_condition)).any()]
        if len(candidates) != 1:
            raise DataError(
                f"target_type not given and cannot be inferred: cell types without condition '{target_condition}'"
                f" are {sorted(map(str, candidates))} (need exactly one)"
            )
        target_type = candidates[0]
    if target_type == control_type:
        raise DataError(f"target_type and control_type are both '{control_type}'")
    is_control, is_target = ct == control_type, ct == target_type
    if not is_target.any():
        raise DataError(f"target_type '{target_type}' has no cells (cell types: {sorted(map(str, types))})")
    source = is_control & (cond == target_condition)
    if not source.any():
        raise DataError(
            f"no cells of cell type '{control_type}' under condition '{target_condition}': latent arithmetic shifts"
            " those cells"
        )
    shared = [
        c
        for c in pd.unique(cond)
        if c != target_condition and (is_control & (cond == c)).any() and (is_target & (cond == c)).any()
    ]
    if not shared:
        raise DataError(
            f"cell types '{control_type}' and '{target_type}' share no observed condition besides"
            f" '{target_condition}': the type difference cannot be estimated"
        )

    if balance == "mean":
        diffs = [z[is_target & (cond == c)].mean(axis=0) - z[is_control & (cond == c)].mean(axis=0) for c in shared]
        shift = np.mean(diffs, axis=0)
    elif balance == "resample":
        rng = np.random.default_rng(seed)
        pools = []
        for mask in (is_target, is_control):
            groups = [np.flatnonzero(mask & (cond == c)) for c in shared]
            size = max(len(g) for g in groups)
            pools.append(np.concatenate([rng.choice(g, size=size, replace=True) for g in groups]))
        n_pool = min(len(p) for p in pools)
        pools = [p if len(p) == n_pool else rng.choice(p, size=n_pool, replace=False) for p in pools]
        shift = z[pools[0]].mean(axis=0) - z[pools[1]].mean(axis=0)
    else:
        raise DataError(f"unknown balancing '{balance}' (use 'mean' or 'resample')")
    return z[source] + shift


def latent_entropy(z, *, n_bins: int = N_BINS) -> float:
    """Entropy of codes in nats: the sum over dims of each dim's histogram estimate of differential entropy.

    Per dim, with ``n_bins`` equal-width bins of width ``w`` between the dim's minimum and maximum and bin
    frequencies ``p_i``: ``H_j = -sum_i p_i log p_i + log w`` (the entropy of the piecewise-uniform density). The
    ``log w`` term makes the estimate scale-aware (scaling a dim by ``s`` adds ``log s``), so a more spread code
    distribution has higher entropy. Summing marginals ignores dependence between dims (it is the joint entropy
    plus the total correlation); it is stable in 10 dims where joint (kNN) estimators are biased, and the bias
    largely cancels in :func:`delta_h` when both sets have similar sizes. The range is set by the extremes, so
    a few far outliers coarsen the bins.
    """
    x = as_latents(z, "z")
    if x.shape[0] < 2:
        raise DataError(f"latent entropy needs at least 2 cells, got {x.shape[0]}")
    width = (x.max(axis=0) - x.min(axis=0)) / n_bins
    if (width <= 0).any():
        raise DataError(f"latent dims {np.flatnonzero(width <= 0).tolist()} are constant: differential entropy is -inf")
    codes = discretize(x, n_bins)
    n, n_dims = x.shape
    counts = np.bincount((codes + np.arange(n_dims) * n_bins).ravel(), minlength=n_dims * n_bins)
    p = counts.reshape(n_dims, n_bins) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        h_discrete = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return float((h_discrete + np.log(width)).sum())


def delta_h(z_pred, z_real, *, n_bins: int = N_BINS) -> float:
    """MichiGAN's delta-H (Yu & Welch 2021, Figs. 6-7): ``latent_entropy(z_pred) - latent_entropy(z_real)``.

    ~0 when predicted and real codes of the held-out combination have the same spread; positive when the
    prediction is more diffuse, negative when it is more concentrated.
    """
    zp, zr = as_latents(z_pred, "z_pred"), as_latents(z_real, "z_real")
    if zp.shape[1] != zr.shape[1]:
        raise DataError(f"z_pred has {zp.shape[1]} dims but z_real has {zr.shape[1]}")
    return latent_entropy(zp, n_bins=n_bins) - latent_entropy(zr, n_bins=n_bins)
