"""Gene-gene correlation heatmaps, generated below the diagonal and real above (Heydari 2022 Fig. 4, Marouf 2020
Fig. 1d).

Showing both halves of one matrix lets the eye compare each gene pair's correlation in real and generated
cells at mirror-image positions. :func:`correlation_triangles` builds that matrix from two correlation
matrices; :func:`plot_correlation_heatmap` draws it. The two papers' heatmaps differ in genes and expression
scale (:data:`scsynth_core.metrics.correlation.HEATMAPS`); :func:`heatmap_title` and :data:`SPACE_LABELS` say
which one a figure shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.plots._style import DIVERGING_CMAP, new_figure, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colour-bar label per expression space of :func:`scsynth_core.metrics.correlation.marker_correlation_frame`.
SPACE_LABELS = {
    "lsn": "Pearson r of LSN values",
    "log1p_lsn": "Pearson r of log(LSN + 1)",
    "raw": "Pearson r of counts",
}

#: What each heatmap of :data:`scsynth_core.metrics.correlation.HEATMAPS` shows, for its title.
HEATMAP_TITLES = {
    "activa": "top DE genes of every cluster (Heydari 2022 Fig. 4)",
    "marouf": "top DE genes of the two largest clusters (Marouf 2020 Fig. 1d)",
}


def heatmap_title(heatmap: str, prefix: str = "") -> str:
    """Title of a heatmap's figure: ``prefix`` (e.g. the run) and what the heatmap shows.

    >>> heatmap_title("marouf", "pbmc68k, scgan")
    'pbmc68k, scgan: top DE genes of the two largest clusters (Marouf 2020 Fig. 1d)'
    """
    what = HEATMAP_TITLES.get(heatmap, heatmap)
    return f"{prefix}: {what}" if prefix else what


def correlation_triangles(real: pd.DataFrame, generated: pd.DataFrame) -> pd.DataFrame:
    """One gene x gene matrix: ``generated`` strictly below the diagonal, ``real`` on and above it.

    >>> r = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=list("ab"), columns=list("ab"))
    >>> correlation_triangles(r, r * 0 - 0.2).to_numpy().tolist()
    [[1.0, 0.5], [-0.2, 1.0]]
    """
    if (
        list(real.index) != list(real.columns)
        or list(generated.index) != list(real.index)
        or list(generated.columns) != list(real.columns)
    ):
        raise ValueError("real and generated must be square correlation frames over the same genes in the same order")
    lower = np.tril(np.ones(real.shape, dtype=bool), k=-1)
    return pd.DataFrame(
        np.where(lower, generated.to_numpy(float), real.to_numpy(float)), index=real.index, columns=real.columns
    )


@styled
def plot_correlation_heatmap(
    frame: pd.DataFrame,
    *,
    title: str = "",
    ax: Axes | None = None,
    lower_label: str = "generated",
    upper_label: str = "real",
    cmap: str = DIVERGING_CMAP,
    cbar_label: str = "correlation",
) -> Figure:
    """Square correlation heatmap on a fixed [-1, 1] diverging scale with gene labels (ACTIVA Fig. 4).

    Parameters
    ----------
    frame
        Square gene x gene DataFrame (index = columns = gene names); lower triangle generated, upper triangle real
        (:func:`correlation_triangles`).
    title
        Axes title.
    ax
        Draw into this axes instead of a new figure.
    lower_label, upper_label
        What each triangle holds, written in its corner.
    cmap
        Diverging colormap (default ``RdBu_r``: blue negative, red positive; colour-blind safe).
    cbar_label
        Colour bar label (e.g. "Pearson r").

    Returns
    -------
    The Figure: one image whose array equals ``frame``'s values, a colour bar, two corner labels.
    """
    if frame.shape[0] != frame.shape[1] or list(frame.index) != list(frame.columns):
        raise ValueError("frame must be square with the same genes as index and columns")
    n = frame.shape[0]
    side = min(9.0, max(3.6, 0.22 * n + 1.5))
    fig, axes = new_figure(ax=ax, panel_size=(side + 0.8, side))
    ax = axes[0, 0]
    image = ax.imshow(frame.to_numpy(float), cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(np.arange(n), [str(g) for g in frame.columns], rotation=90)
    ax.set_yticks(np.arange(n), [str(g) for g in frame.index])
    ax.tick_params(length=0, labelsize=max(4, min(8, 200 / max(n, 1))))
    for side_ in ("top", "right", "bottom", "left"):
        ax.spines[side_].set_visible(False)
    ax.plot([-0.5, n - 0.5], [-0.5, n - 0.5], color="black", lw=0.6)
    box = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
    ax.text(0.03, 0.03, f"{lower_label} (lower)", transform=ax.transAxes, ha="left", va="bottom", bbox=box)
    ax.text(0.97, 0.97, f"{upper_label} (upper)", transform=ax.transAxes, ha="right", va="top", bbox=box)
    fig.colorbar(image, ax=ax, label=cbar_label, shrink=0.8, ticks=[-1, -0.5, 0, 0.5, 1])
    if title:
        ax.set_title(title)
    return fig
