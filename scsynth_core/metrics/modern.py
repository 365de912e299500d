"""Today's generative-model metrics beside the papers': one entry point, :func:`modern_metrics`.

Computes, for real vs generated cells with the same genes:

* in a shared PC space (PCA of log1p library-size-normalised counts, fitted on the real cells,
  :mod:`scsynth_core.metrics.representation`; 30 components as CFGen): Wasserstein-1/-2 and RBF MMD^2
  (:mod:`~scsynth_core.metrics.distribution`), kNN precision/recall/density/coverage and the 1-NN two-sample
  accuracy (:mod:`~scsynth_core.metrics.knn_fidelity`), all on equal-size subsamples of at most ``max_cells``;
* on the expression matrices: SimBench-style marginal and structural scores (:mod:`~scsynth_core.metrics.marginals`)
  and, with cell types, recovery of one-vs-rest log fold changes (:mod:`~scsynth_core.metrics.de_recovery`).

Keys are flat: an overall value under its name (``"w2"``) and, where ``label_key`` is a column of both sets, one
value per real cell type with at least ``min_cells`` real cells under ``"name[cell type]"``
(:func:`per_type_key`; :func:`metrics_frame` splits them into a table). Which way is better for each overall key
is in :data:`DIRECTIONS`.

Which real cells the PCA is fitted on matters a great deal. Cells inside the fit spread wider in their own
components than any cells outside it, and generated cells are always outside (see
:mod:`scsynth_core.metrics.representation`). Measured on the PBMC 68k demo set in thirds (233 cells each):
real held-out cells against real cells scored kNN recall 0.04 and density 6.2 when the PCA was fitted on those
real cells, but 0.95 and 0.93 with a PCA fitted on the third third. The default (fit on ``real``, as CFGen did)
is therefore only fair between models, never against the real-vs-real ideal; pass a representation fitted on
other real cells (``representation=``, e.g. the realism protocol's, fitted on the training cells) to compare in
a PCA that excludes the compared real cells.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.data.preprocess import output_representation
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.metrics.de_recovery import MIN_CELLS, TOP_K, de_recovery
from scsynth_core.metrics.distribution import (
    MAX_CELLS,
    equal_subsample,
    rbf_mmd,
    wasserstein,
)
from scsynth_core.metrics.knn_fidelity import (
    K_DEFAULT,
    knn_fidelity_per_cell,
    nn_two_sample_accuracy,
)
from scsynth_core.metrics.marginals import SCORES as MARGINAL_SCORES
from scsynth_core.metrics.marginals import marginal_scores

if TYPE_CHECKING:
    import anndata as ad

    from scsynth_core.metrics.representation import SharedRepresentation

#: Metric groups :func:`modern_metrics` can compute (all by default).
METRICS = ("wasserstein", "mmd", "prdc", "nn1", "marginals", "de")

#: Principal components of the shared space (CFGen evaluated in 30 PCs).
N_PCS = 30

#: Keys each group adds (overall; the per-type keys are these with ``[cell type]``).
GROUP_KEYS = {
    "wasserstein": ("w1", "w2"),
    "mmd": ("mmd2_rbf",),
    "prdc": ("knn_precision", "knn_recall", "knn_density", "knn_coverage"),
    "nn1": ("nn1_accuracy",),
    "marginals": MARGINAL_SCORES,
    "de": ("de_lfc_pearson", "de_lfc_spearman", "de_top_k_jaccard"),
}

#: Best direction of every metric key: "lower" (0 is identical), "higher" (1 is best), "half" (0.5 is best) or
#: "one" (1 is best: Naeem et al. 2020, Sec. 3.2, density's expectation for identical distributions; above 1 means
#: generated cells crowd into the dense real regions, which "higher" would reward).
DIRECTIONS = {
    **dict.fromkeys(("w1", "w2", "mmd2_rbf", *MARGINAL_SCORES), "lower"),
    **dict.fromkeys(("knn_precision", "knn_recall", "knn_coverage", *GROUP_KEYS["de"]), "higher"),
    "knn_density": "one",
    "nn1_accuracy": "half",
}


def per_type_key(name: str, cell_type: str) -> str:
    """The key of a per-cell-type value: ``"name[cell type]"``."""
    return f"{name}[{cell_type}]"


def metrics_frame(values: dict[str, float]) -> pd.DataFrame:
    """A :func:`modern_metrics` dict as a table: ``metric``, ``cell_type`` ("" for overall values), ``value``."""
    rows = []
    for key, value in values.items():
        name, _, rest = key.partition("[")
        rows.append((name, rest[:-1] if rest.endswith("]") else "", float(value)))
    return pd.DataFrame(rows, columns=["metric", "cell_type", "value"])


def _check_metrics(metrics) -> tuple[str, ...]:
    chosen = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in chosen if m not in METRICS]
    if unknown or not chosen:
        raise ConfigError(
            f"modern metrics: unknown or empty metric group(s) {unknown or list(chosen)}; "
            f"expected some of {list(METRICS)}"
        )
    return chosen


def _labels(real: ad.AnnData, generated: ad.AnnData, label_key: str | None):
    """Cell types of both sets as strings, or ``(None, None)`` when the generated cells carry none."""
    if label_key is None:
        return None, None
    if label_key not in real.obs:
        raise DataError(f"modern metrics: label_key {label_key!r} is not a column of the real cells' obs")
    if label_key not in generated.obs:
        return None, None  # an unconditional generator: overall values only
    return real.obs[label_key].astype(str).to_numpy(), generated.obs[label_key].astype(str).to_numpy()


def _pc_space_metrics(real_pcs, gen_pcs, chosen, *, max_cells: int | None, seed: int) -> dict[str, float]:
    """The two-sample PC-space metrics of the chosen groups (the kNN fidelity is computed once, per cell)."""
    out: dict[str, float] = {}
    if "wasserstein" in chosen:
        out["w1"] = wasserstein(real_pcs, gen_pcs, p=1, max_cells=max_cells, seed=seed)
        out["w2"] = wasserstein(real_pcs, gen_pcs, p=2, max_cells=max_cells, seed=seed)
    if "mmd" in chosen:
        out["mmd2_rbf"] = rbf_mmd(real_pcs, gen_pcs, max_cells=max_cells, seed=seed)
    if "nn1" in chosen:
        out["nn1_accuracy"] = nn_two_sample_accuracy(real_pcs, gen_pcs, max_cells=max_cells, seed=seed)
    return out


def modern_metrics(
    real: ad.AnnData,
    generated: ad.AnnData,
    *,
    label_key: str | None = None,
    n_pcs: int = N_PCS,
    seed: int = 0,
    metrics=METRICS,
    k: int = K_DEFAULT,
    max_cells: int = MAX_CELLS,
    min_cells: int = MIN_CELLS,
    top_k: int = TOP_K,
    representation: SharedRepresentation | None = None,
) -> dict[str, float]:
    """Distribution, kNN, marginal and DE-recovery metrics of generated vs real cells, as one flat dict.

    Parameters
    ----------
    real, generated
        Cells with the same genes in the same order; ``X`` holds counts (or LSN values for the PC-space and DE
        metrics, which re-normalise; the library-size score of :mod:`~scsynth_core.metrics.marginals` needs counts
        and is NaN for cells whose ``uns["scsynth"]["representation"]`` is not ``counts``).
    label_key
        Cell-type column. Must be in ``real.obs`` when given; per-type values and DE recovery need it in
        ``generated.obs`` too (otherwise only overall values, DE keys NaN).
    n_pcs
        Components of the PCA fitted on ``real`` (capped for small sets as in
        :func:`~scsynth_core.metrics.representation.fit_representation`); ignored with ``representation``.
    seed
        Seeds the PCA and every subsample.
    metrics
        Groups to compute, from :data:`METRICS`.
    k, max_cells, min_cells, top_k
        kNN neighbours (Naeem: 5); cells per set in PC-space metrics (equal-size subsamples, overall and per
        type); fewest cells of a type in each set for it to be scored; marker genes compared per type.
    representation
        A fitted shared PCA to use instead of fitting one on ``real``.

    Returns
    -------
    dict[str, float]
        ``n_real``, ``n_generated``, ``n_compared`` (cells per set in the PC-space metrics) and the keys of
        :data:`GROUP_KEYS` for the chosen groups, overall and as ``name[cell type]`` (NaN where a type has too
        few cells in one set, e.g. W2 of a type the generator never produced, while its recall and coverage are
        0). Overall DE values are the means over the scored types.
    """
    from scsynth_core.metrics.representation import fit_representation

    chosen = _check_metrics(metrics)
    if min_cells < 2:
        raise ConfigError(
            f"modern metrics: min_cells must be at least 2 (two-sample metrics per type), got {min_cells}"
        )
    if list(map(str, real.var_names)) != list(map(str, generated.var_names)):
        raise DataError("modern metrics: real and generated cells have different genes (var_names must match in order)")
    lab_real, lab_gen = _labels(real, generated, label_key)
    types = []
    if lab_real is not None:
        counts = pd.Series(lab_real).value_counts()
        types = sorted(counts.index[counts >= min_cells])
    rng = np.random.default_rng(seed)
    rows_real, rows_gen = equal_subsample(real.n_obs, generated.n_obs, max_cells=max_cells, rng=rng)
    out: dict[str, float] = {"n_real": real.n_obs, "n_generated": generated.n_obs, "n_compared": len(rows_real)}

    if {"wasserstein", "mmd", "prdc", "nn1"} & set(chosen):
        if representation is None:
            rep = fit_representation(real, n_components=n_pcs, seed=seed)
        else:  # PCs are ordered: the first n_pcs of a wider saved projection are the same space
            rep = replace(representation, components=representation.components[:n_pcs])
        real_pcs = rep.transform(real).astype(np.float64)
        gen_pcs = rep.transform(generated).astype(np.float64)
        sub_real, sub_gen = real_pcs[rows_real], gen_pcs[rows_gen]
        out |= _pc_space_metrics(sub_real, sub_gen, chosen, max_cells=None, seed=seed)
        fidelity = knn_fidelity_per_cell(sub_real, sub_gen, k=k) if "prdc" in chosen else None
        if fidelity is not None:
            out |= {f"knn_{name}": value for name, value in fidelity.summary().items()}
        for t in types:
            in_real, in_gen = lab_real == t, lab_gen == t
            if in_gen.sum() >= min_cells:
                values = _pc_space_metrics(real_pcs[in_real], gen_pcs[in_gen], chosen, max_cells=max_cells, seed=seed)
            else:  # too few generated cells of the type (e.g. dropped): no distance to measure
                values = dict.fromkeys(
                    (key for g in ("wasserstein", "mmd", "nn1") if g in chosen for key in GROUP_KEYS[g]), float("nan")
                )
            if fidelity is not None:
                values |= {
                    f"knn_{name}": value
                    for name, value in fidelity.summary(lab_real[rows_real] == t, lab_gen[rows_gen] == t).items()
                }
            out |= {per_type_key(name, t): value for name, value in values.items()}

    if "marginals" in chosen:
        out |= marginal_scores(real.X, generated.X)
        if output_representation(generated) != "counts":
            out["ks_library_size"] = float("nan")  # LSN/log1p cells have no library size of their own
    if "de" in chosen:
        out |= dict.fromkeys(GROUP_KEYS["de"], float("nan"))
        if lab_gen is not None:
            frame = de_recovery(real, generated, label_key=label_key, top_k=top_k, min_cells=min_cells)
            for column in ("lfc_pearson", "lfc_spearman", "top_k_jaccard"):
                out[f"de_{column}"] = float(frame[column].mean()) if len(frame) else float("nan")
                out |= {per_type_key(f"de_{column}", t): float(frame[column].get(t, np.nan)) for t in types}
    return {key: float(value) for key, value in out.items()}
