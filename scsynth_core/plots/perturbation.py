"""Figures of the ``perturbation`` experiment (Yu & Welch 2021, MichiGAN Figs. 6-7): RF error of each prediction of a
held-out cell type x condition combination, delta-H of the predicted codes against the GAN's improvement over the
beta-TCVAE decoder, an embedding of predicted over real held-out cells and (Fig. 7b) the two decoders' RF errors
in the retrained runs of the lowest-delta-H combinations (:mod:`scsynth_core.experiments.perturbation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.data.checks import require_columns
from scsynth_core.metrics.latent import METHODS, REAL
from scsynth_core.plots._style import REAL_COLOR, colors_for, finish, new_figure, styled
from scsynth_core.plots.bars import plot_metric_bars

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@styled
def plot_error_bars(runs: pd.DataFrame, *, metric: str = "rf_error", title: str = "", ax: Axes | None = None) -> Figure:
    """Fig. (a): one group per held-out combination, one bar per method (mean over seeds, error bar: sd); a dashed
    line at 0.5 (real and predicted cells indistinguishable) for the RF error."""
    require_columns(runs, ["combination", "method", metric], "plot_error_bars")
    order = {m: i for i, m in enumerate(METHODS)}
    frame = runs.rename(columns={"method": "model"}).sort_values("model", key=lambda c: c.map(order), kind="stable")
    fig = plot_metric_bars(frame, metric=metric, by="combination", title=title, ax=ax)
    axis = fig.axes[0] if ax is None else ax
    if metric == "rf_error":
        axis.axhline(0.5, ls="--", lw=1.0, color="0.3")
    axis.set_xlabel("held-out combination")
    return fig


@styled
def plot_delta_h_improvement(improvement: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Figure:
    """Fig. (b): delta-H of the predicted codes (x) against the improvement of the GAN over the VAE decoder
    (y), one point per held-out combination and seed, coloured by combination; Spearman rho when >= 3 points."""
    require_columns(improvement, ["combination", "delta_h", "improvement"], "plot_delta_h_improvement")
    groups = list(pd.unique(improvement["combination"]))
    colors = colors_for(groups)
    fig, axes = new_figure(ax=ax, panel_size=(4.2, 3.4))
    axis = axes[0, 0]
    for group in groups:
        rows = improvement[improvement["combination"] == group]
        axis.scatter(
            rows["delta_h"],
            rows["improvement"],
            s=22,
            color=colors[group],
            edgecolor="black",
            linewidths=0.4,
            label=str(group),
            zorder=3,
        )
    axis.axhline(0.0, ls="--", lw=0.8, color="0.5")
    axis.axvline(0.0, ls="--", lw=0.8, color="0.5")
    axis.set_xlabel("delta-H of the predicted codes")
    axis.set_ylabel("improvement: RF error MichiGAN - beta-TCVAE")
    points = improvement[["delta_h", "improvement"]].dropna()
    heading = title
    if len(points) >= 3 and points.nunique().min() > 1:
        rho = points["delta_h"].corr(points["improvement"], method="spearman")
        heading = f"{title}{', ' if title else ''}Spearman rho {rho:.2f} (n = {len(points)})"
    if heading:
        axis.set_title(heading)
    axis.legend(frameon=False, loc="best", fontsize="x-small")
    return fig


@styled
def plot_prediction_embedding(coords: np.ndarray, methods, *, title: str = "", point_size: float = 5.0) -> Figure:
    """Fig. (c): one panel per prediction (``michigan``, ``betatcvae``, ``control``), its cells over the real
    held-out cells (grey) in a shared 2-d embedding of all of them. ``methods``: one label per row of
    ``coords``."""
    xy = np.asarray(coords)
    labels = np.asarray(methods, dtype=str)
    if xy.ndim != 2 or xy.shape != (len(labels), 2):
        raise ValueError(
            f"plot_prediction_embedding: coords {xy.shape} and {len(labels)} method labels must describe the same cells"
        )
    panels = [m for m in METHODS if (labels == m).any()]
    colors = colors_for(panels)
    fig, axes = new_figure(1, max(1, len(panels)), panel_size=(3.0, 3.0), sharex=True, sharey=True)
    is_real = labels == REAL
    for axis, method in zip(axes.ravel(), panels):
        mine = labels == method
        axis.scatter(
            xy[is_real, 0],
            xy[is_real, 1],
            s=point_size,
            color=REAL_COLOR,
            linewidths=0,
            label=f"real ({int(is_real.sum())})",
            rasterized=True,
        )
        axis.scatter(
            xy[mine, 0],
            xy[mine, 1],
            s=point_size,
            color=colors[method],
            linewidths=0,
            alpha=0.8,
            label=f"{method} ({int(mine.sum())})",
            rasterized=True,
        )
        axis.set_title(method)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(frameon=False, fontsize="x-small", markerscale=2, loc="best")
    return finish(fig, title)


@styled
def plot_retrained_errors(table: pd.DataFrame, *, title: str = "", ax: Axes | None = None) -> Figure:
    """Fig. 7b: for each retrained lowest-delta-H combination (in rank order, labelled with the mean delta-H it
    was ranked by), the RF error of the beta-TCVAE decoder (left) and of MichiGAN (right) in every retrained run,
    the two of one run joined by a line (rising: the GAN's cells are harder to tell from the real ones), and
    the mean of each; a dashed line at 0.5 (indistinguishable)."""
    require_columns(
        table,
        ["rank", "combination", "seed", "delta_h_ranked", "rf_error_betatcvae", "rf_error_michigan"],
        "plot_retrained_errors",
    )
    order = table.sort_values(["rank", "combination"], kind="stable")["combination"].drop_duplicates().tolist()
    colors = colors_for(["betatcvae", "michigan"])
    fig, axes = new_figure(ax=ax, panel_size=(max(3.0, 1.6 * len(order) + 1.0), 3.4))
    axis = axes[0, 0]
    for i, combination in enumerate(order):
        rows = table[table["combination"] == combination]
        left, right = i - 0.18, i + 0.18
        for _, row in rows.iterrows():
            axis.plot(
                [left, right], [row["rf_error_betatcvae"], row["rf_error_michigan"]], color="0.6", lw=0.8, zorder=2
            )
        for x, method in ((left, "betatcvae"), (right, "michigan")):
            values = rows[f"rf_error_{method}"]
            axis.scatter(
                np.full(len(values), x),
                values,
                s=20,
                color=colors[method],
                edgecolor="black",
                linewidths=0.4,
                zorder=3,
                label=method if i == 0 else None,
            )
            axis.hlines(values.mean(), x - 0.1, x + 0.1, color="black", lw=1.6, zorder=4)
    axis.axhline(0.5, ls="--", lw=1.0, color="0.3")
    labels = [f"{c}\ndelta-H {table.loc[table['combination'] == c, 'delta_h_ranked'].iloc[0]:.2f}" for c in order]
    axis.set_xticks(range(len(order)), labels, fontsize="small")
    axis.set_xlim(-0.6, len(order) - 0.4)
    axis.set_xlabel("held-out combination (lowest delta-H first)")
    axis.set_ylabel("RF error (0.5 = indistinguishable)")
    better = int((table["rf_error_michigan"] > table["rf_error_betatcvae"]).sum())
    heading = f"MichiGAN above the beta-TCVAE decoder in {better} of {len(table)} runs"
    axis.set_title(f"{title}\n{heading}" if title else heading, fontsize="medium")
    axis.legend(frameon=False, loc="center right", fontsize="x-small")
    return fig
