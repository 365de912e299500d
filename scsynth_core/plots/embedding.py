"""Co-embedding figures of real and generated cells (Marouf 2020 Fig. 1-2 t-SNE, ACTIVA Fig. 2-3 UMAP/t-SNE).

The coordinates come from :func:`scsynth_core.embedding.embedding_frame` (the computation); :func:`plot_embedding`
draws them and colours cells by set, by cluster, or by a gene's log expression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.embedding import METHODS, UNLABELLED
from scsynth_core.plots._style import (
    CONTINUOUS_CMAP,
    REAL_COLOR,
    categorical_colors,
    colors_for,
    finish,
    new_figure,
    styled,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _panel_sets(frame: pd.DataFrame, color_by: str) -> list[str]:
    models = [s for s in pd.unique(frame["set"]) if s != "real"]
    if color_by == "set":
        return models or ["real"]
    return (["real"] if (frame["set"] == "real").any() else []) + models


@styled
def plot_embedding(
    frame: pd.DataFrame,
    *,
    title: str = "",
    point_size: float = 4.0,
    color_by: str = "set",
    method: str | None = None,
    cmap: str = CONTINUOUS_CMAP,
) -> Figure:
    """Co-embedding panels, same axes limits everywhere (Marouf Fig. 1-2, ACTIVA Fig. 2-3).

    Parameters
    ----------
    frame
        From :func:`scsynth_core.embedding.embedding_frame`: columns ``x``, ``y``, ``set``, plus ``cluster`` and gene columns as needed.
    title
        Figure title.
    point_size
        Marker area.
    color_by
        ``"set"``: one panel per generated set, real cells grey beneath that set's cells (Marouf Fig. 2).
        ``"cluster"``: one panel per set (real first), cells coloured by the ``cluster`` column with one shared
        legend (ACTIVA Fig. 3). Any other frame column (a gene): one panel per set, cells coloured by that
        value on one continuous colour scale shared by all panels, with a colour bar (ACTIVA Fig. 3); cells
        with higher values are drawn on top.
    method
        ``"umap"`` or ``"tsne"`` for the axis labels; default ``frame.attrs["method"]``, else UMAP.
    cmap
        Colormap of gene values.

    Returns
    -------
    The Figure, one axes per panel (plus a colour bar axes when colouring by a gene).
    """
    if color_by != "set" and color_by not in frame.columns:
        raise ValueError(f"color_by={color_by!r} is neither 'set' nor a column of the frame {list(frame.columns)}")
    label = METHODS.get(method or frame.attrs.get("method", "umap"), "UMAP")
    panels = _panel_sets(frame, color_by)
    fig, axes = new_figure(1, len(panels), panel_size=(3.4, 3.2), sharex=True, sharey=True)
    real = frame[frame["set"] == "real"]
    if color_by == "cluster":
        clusters = sorted(pd.unique(frame["cluster"].astype(str)), key=lambda c: (c == UNLABELLED, c))
        named = [c for c in clusters if c != UNLABELLED]
        palette = dict(zip(named, categorical_colors(len(named)))) | {UNLABELLED: REAL_COLOR}
    elif color_by != "set":
        values = frame[color_by].to_numpy(dtype=float)
        vmin, vmax = np.nanmin(values), np.nanmax(values)
        vmax = vmax if vmax > vmin else vmin + 1.0
    set_colors = colors_for(panels)
    scatter = None
    for ax, name in zip(axes[0], panels):
        cells = frame[frame["set"] == name]
        if color_by == "set":
            ax.scatter(real["x"], real["y"], s=point_size, c=REAL_COLOR, linewidths=0, label="real", rasterized=True)
            if name != "real":
                ax.scatter(cells["x"], cells["y"], s=point_size, c=set_colors[name], alpha=0.6, linewidths=0,
                           label=name, rasterized=True)  # fmt: skip
            ax.legend(loc="best", frameon=False, markerscale=3)
        elif color_by == "cluster":
            for cluster in clusters:
                sub = cells[cells["cluster"].astype(str) == cluster]
                if len(sub):
                    ax.scatter(sub["x"], sub["y"], s=point_size, color=palette[cluster], linewidths=0,
                               label=cluster, rasterized=True)  # fmt: skip
        else:
            cells = cells.iloc[np.argsort(cells[color_by].to_numpy(dtype=float), kind="stable")]  # high on top
            scatter = ax.scatter(cells["x"], cells["y"], s=point_size, c=cells[color_by].to_numpy(dtype=float),
                                 cmap=cmap, vmin=vmin, vmax=vmax, linewidths=0, rasterized=True)  # fmt: skip
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_xlabel(f"{label} 1")
    axes[0][0].set_ylabel(f"{label} 2")
    if color_by == "cluster":
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], ls="", marker="o", color=palette[c], label=c) for c in clusters]
        fig.legend(handles=handles, title="cluster", loc="outside right center", frameon=False)
    elif color_by != "set":
        fig.colorbar(scatter, ax=list(axes[0]), label=f"{color_by} log(LSN + 1)", shrink=0.8)
    return finish(fig, title)
