"""Recovery of differential expression: do generated cells reproduce each cell type's markers?

For every cell type, one-vs-rest log fold changes are computed in the real and in the generated cells,
``LFC_g = mean_type(log1p LSN_g) - mean_rest(log1p LSN_g)`` (natural log: the difference of mean
log-normalised expression), and compared gene by gene:
Pearson and Spearman correlation of the two LFC vectors over all genes, and the Jaccard overlap of the
``top_k`` (default 20) genes with the largest LFC, i.e. the up-regulated markers. A conditional generator
that keeps each type's markers scores correlations and Jaccard near 1; one that mixes up genes scores near 0.

The papers look at the top up-regulated genes of each cluster only as heatmaps (Marouf et al. 2020, Heydari et
al. 2022; :mod:`scsynth_core.metrics.correlation`); this turns the marker check into numbers per type. It needs
the cell-type column in both sets (a conditional generator, or labels transferred to the generated cells first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scsynth_core.errors import DataError
from scsynth_core.metrics.representation import LSN_TARGET, log_lsn

if TYPE_CHECKING:
    import anndata as ad

#: Markers compared per type.
TOP_K = 20

#: Fewest cells of a type, in each set, for it to be scored (CFGen's per-type evaluation used 20).
MIN_CELLS = 20


def one_vs_rest_lfc(X, labels, groups, *, target_sum: float = LSN_TARGET) -> np.ndarray:
    """``groups x genes`` log fold changes of mean log1p(LSN) expression, each group vs all other cells.

    ``X``: cells x genes counts (dense or sparse, never densified); ``labels``: one per cell. A group without
    cells, or with no cells outside it, gives a row of NaN.
    """
    labels = np.asarray(labels).astype(str)
    logs = log_lsn(X, target_sum)
    groups = [str(g) for g in groups]
    code = pd.Categorical(labels, categories=groups).codes
    member = code >= 0
    indicator = sp.csr_matrix(
        (np.ones(member.sum()), (code[member], np.flatnonzero(member))), shape=(len(groups), logs.shape[0])
    )
    sums = np.asarray((indicator @ logs).todense())
    counts = np.bincount(code[member], minlength=len(groups)).astype(np.float64)[:, None]
    rest = logs.shape[0] - counts
    total = np.asarray(logs.sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        lfc = sums / counts - (total - sums) / rest
    lfc[((counts == 0) | (rest == 0)).ravel()] = np.nan
    return lfc


def _labels(adata: ad.AnnData, label_key: str, which: str) -> np.ndarray:
    if label_key not in adata.obs:
        raise DataError(f"DE recovery: obs[{label_key!r}] (cell types) is missing from the {which} cells")
    return adata.obs[label_key].astype(str).to_numpy()


def de_recovery(
    real: ad.AnnData, generated: ad.AnnData, *, label_key: str, top_k: int = TOP_K, min_cells: int = MIN_CELLS
) -> pd.DataFrame:
    """Per cell type: agreement of real and generated one-vs-rest log fold changes (module docstring).

    Scores every type with at least ``min_cells`` cells in both sets (and other cells beside it in both).

    Returns
    -------
    pandas.DataFrame
        Index: cell type (str); columns ``n_real``, ``n_generated``, ``lfc_pearson``, ``lfc_spearman``,
        ``top_k_jaccard`` (|A & B| / |A | B| of the ``top_k`` largest-LFC genes). Empty when no type qualifies.
        A correlation is NaN when one LFC vector is constant.
    """
    from scipy.stats import spearmanr

    if list(map(str, real.var_names)) != list(map(str, generated.var_names)):
        raise DataError("DE recovery: real and generated cells have different genes (var_names must match in order)")
    lab_real, lab_gen = _labels(real, label_key, "real"), _labels(generated, label_key, "generated")
    n_real = pd.Series(lab_real).value_counts()
    n_gen = pd.Series(lab_gen).value_counts()
    types = sorted(
        t
        for t in n_real.index
        if n_real[t] >= min_cells
        and n_gen.get(t, 0) >= min_cells
        and n_real[t] < len(lab_real)
        and n_gen[t] < len(lab_gen)
    )
    columns = ["n_real", "n_generated", "lfc_pearson", "lfc_spearman", "top_k_jaccard"]
    if not types:
        return pd.DataFrame(columns=columns, index=pd.Index([], name=label_key, dtype=str), dtype=float)
    k = min(int(top_k), real.n_vars)
    lfc_real = one_vs_rest_lfc(real.X, lab_real, types)
    lfc_gen = one_vs_rest_lfc(generated.X, lab_gen, types)
    rows = []
    for t, a, b in zip(types, lfc_real, lfc_gen, strict=True):
        constant = np.ptp(a) == 0 or np.ptp(b) == 0
        top_a = set(np.argsort(-a, kind="stable")[:k])
        top_b = set(np.argsort(-b, kind="stable")[:k])
        rows.append(
            [
                n_real[t],
                n_gen[t],
                np.nan if constant else float(np.corrcoef(a, b)[0, 1]),
                np.nan if constant else float(spearmanr(a, b).statistic),
                len(top_a & top_b) / len(top_a | top_b),
            ]
        )
    return pd.DataFrame(rows, columns=columns, index=pd.Index(types, name=label_key)).astype(float)
