"""A leaderboard drawn as a table: one row per model, one column per metric, each cell its value, coloured by the
model's rank in that column (ranks from :func:`scsynth_core.leaderboard.rank_columns`, so every metric reads the
same way whichever direction it is better in). Grey cells are unranked: a reference row (the real control) or a
missing value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
from matplotlib.ticker import MaxNLocator

from scsynth_core.plots._style import (
    CONTINUOUS_CMAP,
    finish,
    metric_label,
    new_figure,
    styled,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

UNRANKED = "0.88"


def _cell_text(value: float) -> str:
    return "NA" if not np.isfinite(value) else f"{value:.3g}"


@styled
def plot_rank_table(values: pd.DataFrame, ranks: pd.DataFrame, *, title: str = "") -> Figure:
    """Rows x metrics table of ``values`` coloured by ``ranks`` (1 = best, brightest; NaN = grey, unranked).

    ``values`` and ``ranks`` share index (row labels) and columns (metric names, shown through
    :func:`~scsynth_core.plots._style.metric_label`); a missing value is written "NA".
    """
    if list(values.index) != list(ranks.index) or list(values.columns) != list(ranks.columns):
        raise ValueError("plot_rank_table: values and ranks must have the same rows and columns in the same order")
    if values.empty:
        raise ValueError("plot_rank_table needs at least one row and one column")
    n_rows, n_cols = values.shape
    fig, axes = new_figure(panel_size=(max(4.0, 0.7 * n_cols + 2.0), max(2.4, 0.36 * n_rows + 1.8)))
    ax = axes[0, 0]
    cmap = mpl.colormaps[CONTINUOUS_CMAP + "_r"].with_extremes(bad=UNRANKED)
    rank = ranks.to_numpy(float)
    worst = max(2.0, np.nanmax(rank)) if np.isfinite(rank).any() else 2.0
    norm = mpl.colors.Normalize(1.0, worst)
    image = ax.imshow(np.ma.masked_invalid(rank), cmap=cmap, norm=norm, aspect="auto")
    data = values.to_numpy(float)
    for i in range(n_rows):
        for j in range(n_cols):
            r, g, b, _ = cmap(norm(rank[i, j])) if np.isfinite(rank[i, j]) else mpl.colors.to_rgba(UNRANKED)
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(j, i, _cell_text(data[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(np.arange(n_cols), [metric_label(str(c)) for c in values.columns], rotation=40, ha="right")
    ax.set_yticks(np.arange(n_rows), [str(r) for r in values.index])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01)
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bar.set_label("rank (1 = best)")
    return finish(fig, title)
