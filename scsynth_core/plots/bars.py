"""Bar charts comparing models on scalar metrics: scores per model and group (MichiGAN's disentanglement scores per
factor, Yu & Welch 2021 Fig. 1 and 4; the perturbation errors) and the realism leaderboard of the report (small
multiples, one per metric: RF AUC, MMD, correlation discrepancy, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.data.checks import require_columns
from scsynth_core.plots._style import colors_for, finish, metric_label, new_figure, styled

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Reference values drawn as dashed lines in the leaderboard (a classifier at chance has AUC 0.5).
DEFAULT_REFERENCES: dict[str, float] = {"rf_auc_mean": 0.5, "rf_auc": 0.5}


def _spread(n: int, width: float) -> np.ndarray:
    return np.zeros(1) if n <= 1 else np.linspace(-width / 2, width / 2, n)


@styled
def plot_metric_bars(
    frame: pd.DataFrame,
    *,
    metric: str,
    by: str | None = None,
    hue: str = "model",
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars: one group per latent dimension (or factor), one bar per model (MichiGAN Fig. 1, 4).

    Parameters
    ----------
    frame
        One row per (model, group[, replicate]): columns ``model``, ``latent_dim`` or ``factor``, and ``metric``.
        Replicates are averaged; their standard deviation is the error bar.
    metric
        The value column (e.g. ``mig``, ``factorvae``, ``correlation_gap``).
    by
        Grouping column; default ``latent_dim`` when present, else ``factor``.
    hue
        The column with one bar (and colour) per value within a group.
    title
        Axes title.
    ax
        Draw into this axes instead of a new figure.

    Returns
    -------
    The Figure: one bar (a Rectangle patch) per (group, model) present in ``frame``.
    """
    if by is None:
        by = "latent_dim" if "latent_dim" in frame.columns else "factor"
    require_columns(frame, [hue, by, metric], "plot_metric_bars")
    groups = list(pd.unique(frame[by]))
    if pd.api.types.is_numeric_dtype(frame[by]):
        groups.sort()
    models = list(pd.unique(frame[hue]))
    colors = colors_for(models)
    stats = frame.groupby([hue, by], sort=False)[metric].agg(["mean", "std", "count"])
    width = 0.8 / len(models)
    fig, axes = new_figure(ax=ax, panel_size=(max(3.6, 0.35 * len(groups) * len(models) + 1.6), 3.2))
    ax = axes[0, 0]
    for j, model in enumerate(models):
        idx = [i for i, g in enumerate(groups) if (model, g) in stats.index]
        if not idx:
            continue
        rows = stats.loc[[(model, groups[i]) for i in idx]]
        x = np.asarray(idx, dtype=float) + (j - (len(models) - 1) / 2) * width
        ax.bar(x, rows["mean"], width=width * 0.9, color=colors[model], label=str(model))
        has_sd = (rows["count"] > 1).to_numpy()
        if has_sd.any():
            ax.errorbar(x[has_sd], rows["mean"][has_sd], yerr=rows["std"][has_sd], fmt="none", ecolor="black",
                        elinewidth=0.8, capsize=2)  # fmt: skip
    ax.set_xticks(np.arange(len(groups)), [str(g) for g in groups])
    ax.set_xlabel("latent dimensions" if by == "latent_dim" else by.replace("_", " "))
    ax.set_ylabel(metric_label(metric))
    ax.legend(frameon=False, loc="best")
    if title:
        ax.set_title(title)
    return fig


@styled
def plot_leaderboard(
    frame: pd.DataFrame,
    *,
    metrics: Sequence[str],
    references: Mapping[str, float] | None = None,
    ncols: int | None = None,
    title: str = "",
) -> Figure:
    """Small multiples, one bar chart per metric: models on x, mean bar and one point per replicate.

    The realism leaderboard of the report (scGAN Table 1, ACTIVA Table 1-2 in figure form).

    Parameters
    ----------
    frame
        One row per (model, replicate): a ``model`` column and one column per metric (NaN = not computed).
    metrics
        Metric columns, one panel each, in this order.
    references
        ``{metric: value}`` drawn as dashed lines; default 0.5 for ``rf_auc_mean`` (chance).
    ncols
        Panels per row (default: all in one row up to 4).
    title
        Figure title.

    Returns
    -------
    The Figure: one axes per metric, each with one bar per model that has a value and the replicate points.
    """
    metrics = list(metrics)
    if not metrics:
        raise ValueError("plot_leaderboard needs at least one metric")
    require_columns(frame, ["model", *metrics], "plot_leaderboard")
    references = DEFAULT_REFERENCES if references is None else references
    models = list(pd.unique(frame["model"]))
    colors = colors_for(models)
    ncols = ncols or min(4, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = new_figure(nrows, ncols, panel_size=(max(2.6, 0.5 * len(models) + 1.2), 2.8))
    flat = axes.ravel()
    for ax, metric in zip(flat, metrics):
        for i, model in enumerate(models):
            values = frame.loc[frame["model"] == model, metric].dropna().to_numpy(float)
            if values.size == 0:
                continue
            ax.bar(i, values.mean(), width=0.7, color=colors[model], alpha=0.55)
            ax.scatter(i + _spread(values.size, 0.35), values, s=10, color=colors[model], edgecolor="black",
                       linewidths=0.4, zorder=3)  # fmt: skip
        if metric in references:
            ax.axhline(references[metric], ls="--", lw=1.0, color="0.3")
        ax.set_xticks(np.arange(len(models)), [str(m) for m in models], rotation=45 if len(models) > 3 else 0,
                      ha="right" if len(models) > 3 else "center")  # fmt: skip
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_title(metric_label(metric))
    for ax in flat[len(metrics) :]:
        ax.remove()
    return finish(fig, title)
