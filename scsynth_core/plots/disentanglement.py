"""MichiGAN's figures (Yu & Welch 2021): UMAPs of a representation coloured by factor and by latent dimension
(Fig. 1, 4a), per-dimension |rho| and MI bars (Fig. 1c-d) and latent traversals (Fig. 5). The score bars of
Fig. 1 and 4 are :func:`scsynth_core.plots.bars.plot_metric_bars`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.data.checks import require_columns
from scsynth_core.plots._style import colors_for, finish, new_figure, styled
from scsynth_core.plots.bars import plot_metric_bars

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.figure import Figure


@styled
def plot_latent_umap(
    coords: np.ndarray, factors: pd.DataFrame, latents: np.ndarray, *, title: str = "", point_size: float = 3.0
) -> Figure:
    """UMAP of a representation coloured by each ground-truth factor, then by each latent dimension (MichiGAN
    Fig. 1b-c: a disentangled code has one dimension per factor).

    ``coords``: cells x 2; ``factors``: one column per factor (discrete factors with at most 20 levels get one
    colour per level and a legend, others a continuous scale); ``latents``: cells x dims. One panel per factor and
    per dimension, five per row.
    """
    from scsynth_core.plots._style import CONTINUOUS_CMAP, categorical_colors

    coords, latents = np.asarray(coords), np.asarray(latents)
    if coords.shape != (len(factors), 2) or latents.shape[0] != len(factors):
        raise ValueError(
            f"plot_latent_umap: coords {coords.shape}, factors {len(factors)} rows and latents "
            f"{latents.shape} must describe the same cells"
        )
    panels = [(str(name), factors[name]) for name in factors.columns]
    panels += [(f"z{j}", pd.Series(latents[:, j])) for j in range(latents.shape[1])]
    ncols = min(5, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(nrows, ncols, panel_size=(2.6, 2.5))
    for ax, (name, values) in zip(axes.ravel(), panels):
        levels = pd.unique(values)
        if not name.startswith("z") and (len(levels) <= 20 or not pd.api.types.is_numeric_dtype(values)):
            levels = sorted(levels, key=str)
            colors = categorical_colors(len(levels))
            for level, color in zip(levels, colors):
                mask = (values == level).to_numpy()
                ax.scatter(
                    coords[mask, 0],
                    coords[mask, 1],
                    s=point_size,
                    color=color,
                    label=str(level),
                    linewidths=0,
                    rasterized=True,
                )
            if len(levels) <= 6:
                ax.legend(frameon=False, fontsize="x-small", markerscale=2, loc="best")
        else:
            order = np.argsort(values.to_numpy(float))
            ax.scatter(
                coords[order, 0],
                coords[order, 1],
                c=values.to_numpy(float)[order],
                s=point_size,
                cmap=CONTINUOUS_CMAP,
                linewidths=0,
                rasterized=True,
            )
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    return finish(fig, title)


@styled
def plot_dimension_bars(tables: Mapping[str, pd.DataFrame], *, title: str = "") -> Figure:
    """Per model, bars of ``|Spearman rho|`` and normalised mutual information between every latent dimension and
    every factor (MichiGAN Fig. 1c-d): a disentangled code has one tall bar per factor, each in its own dimension.

    ``tables``: model -> one row per (factor, dimension) with ``factor``, ``dimension``, ``abs_rho`` and
    ``mi_normalised`` (MI / factor entropy, so a factor's largest minus second-largest bar is its MIG). One row
    of two panels per model.
    """
    fig, axes = new_figure(len(tables), 2, panel_size=(4.8, 2.8))
    for row, (model, table) in zip(axes, tables.items()):
        require_columns(table, ["factor", "dimension", "abs_rho", "mi_normalised"], "plot_dimension_bars")
        for ax, metric, label in zip(row, ("abs_rho", "mi_normalised"), ("|Spearman rho|", "MI / H(factor)")):
            plot_metric_bars(table, metric=metric, by="dimension", hue="factor", title=f"{model}: {label}", ax=ax)
            ax.set_ylabel(label)
            ax.set_ylim(0, 1)
    return finish(fig, title)


@styled
def plot_traversals(
    values: np.ndarray,
    pcs: np.ndarray,
    factors: np.ndarray,
    *,
    background: np.ndarray,
    factor_names: Sequence[str],
    factor_range: np.ndarray,
    title: str = "",
    point_size: float = 2.0,
) -> Figure:
    """Latent traversals (MichiGAN Fig. 5): cells generated while one code dimension moves and the others and
    the noise stay fixed, one column per dimension.

    Top row: the traversal cells (coloured by the traversed value, a line per noise draw) over the real cells
    (grey) on the real cells' first two principal components. Bottom row: the factors the cells' nearest real
    cells give them, scaled to the real factor's range, along the traversal (mean over noise draws): a
    disentangled dimension moves one factor and leaves the others flat.

    ``values``: dims x steps; ``pcs``: dims x draws x steps x 2; ``factors``: dims x draws x steps x factors;
    ``background``: real cells x 2; ``factor_range``: factors x 2 (real minimum, maximum).
    """
    from scsynth_core.plots._style import CONTINUOUS_CMAP

    values, pcs, factors = np.asarray(values), np.asarray(pcs), np.asarray(factors)
    n_dims, n_steps = values.shape
    if pcs.shape[:1] + pcs.shape[2:] != (n_dims, n_steps, 2) or factors.shape[:3] != pcs.shape[:3]:
        raise ValueError(
            f"plot_traversals: values {values.shape}, pcs {pcs.shape} and factors {factors.shape} "
            "must be dims x steps, dims x draws x steps x 2 and dims x draws x steps x factors"
        )
    if factors.shape[3] != len(factor_names) or np.shape(factor_range) != (len(factor_names), 2):
        raise ValueError(
            f"plot_traversals: {factors.shape[3]} factor columns, {len(factor_names)} names and "
            f"factor_range {np.shape(factor_range)} disagree"
        )
    lo, hi = np.asarray(factor_range, dtype=float).T
    scaled = (factors - lo) / np.where(hi > lo, hi - lo, 1.0)
    colors = colors_for(factor_names)
    fig, axes = new_figure(2, n_dims, panel_size=(2.3, 2.2))
    for j in range(n_dims):
        top, bottom = axes[0, j], axes[1, j]
        top.scatter(background[:, 0], background[:, 1], s=point_size, color="0.8", linewidths=0, rasterized=True)
        for path in pcs[j]:
            top.plot(path[:, 0], path[:, 1], color="0.3", lw=0.6)
            top.scatter(path[:, 0], path[:, 1], c=values[j], cmap=CONTINUOUS_CMAP, s=12, zorder=3, linewidths=0)
        top.set_title(f"z{j}")
        top.set_xticks([])
        top.set_yticks([])
        for k, name in enumerate(factor_names):
            bottom.plot(values[j], scaled[j, :, :, k].mean(axis=0), color=colors[name], label=str(name), lw=1.2)
        bottom.set_ylim(-0.05, 1.05)
        bottom.set_xlabel(f"z{j} value")
    axes[0, 0].set_ylabel("PC 2 (PC 1 across)")
    axes[1, 0].set_ylabel("predicted factor (scaled)")
    axes[1, 0].legend(frameon=False, fontsize="x-small", loc="best")
    return finish(fig, title)
