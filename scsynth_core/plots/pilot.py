"""Pilot-study figures (Treppner et al. 2021, Sci Rep): metric boxplots over pilot sizes (Fig. 2), the
table of per-gene statistic discrepancies (Fig. 3), gene marginals (Supp. Figs 3-4) and per-gene zero fractions
after adding zeros (Supp. Fig. 5).

Models (scDBM, scVI drawing from the prior or the posterior, a noise baseline) are trained on pilot subsamples
of increasing size, several seeds each, and generate data the size of the original study. Fig. 2 compares a
clustering metric of the generated data (the Davies-Bouldin index) with the original data's value; Fig. 3
lists the median absolute deviation (MAD) between real and generated per-gene statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from scsynth_core.data.checks import require_columns
from scsynth_core.plots._style import (
    REAL_COLOR,
    colors_for,
    finish,
    metric_label,
    new_figure,
    styled,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STATISTIC_ORDER = ("median", "iqr", "cv", "zeros")
STATISTIC_LABELS = {"median": "median", "iqr": "IQR", "cv": "CV", "zeros": "zero fraction", "mean": "mean"}
RANK_CMAP = "Blues_r"


def _offsets(n: int, width: float) -> np.ndarray:
    """Deterministic horizontal spread of ``n`` points within ``width``."""
    return np.zeros(1) if n <= 1 else np.linspace(-width / 2, width / 2, n)


def _boxplot_panel_size(frame: pd.DataFrame) -> tuple[float, float]:
    """Inches of a boxplot panel: room for one box per pilot size and model."""
    return max(3.6, 0.45 * frame["pilot_size"].nunique() * frame["model"].nunique() + 1.5), 3.2


@styled
def plot_metric_boxplots(
    frame: pd.DataFrame,
    *,
    metric: str,
    reference: float | None = None,
    reference_label: str = "original data",
    title: str = "",
    ax: Axes | None = None,
    show_points: bool = True,
    ylabel: str | None = None,
) -> Figure:
    """Boxplots of a metric over seeds, grouped by pilot size with one box per model (Treppner Fig. 2).

    Parameters
    ----------
    frame
        One row per (pilot_size, model, seed): columns ``pilot_size``, ``model``, ``seed`` and ``metric``.
    metric
        The value column (e.g. ``dbi``).
    reference
        The original data's value, drawn as a dashed horizontal line.
    reference_label
        Legend entry of the reference line.
    title
        Axes title.
    ax
        Draw into this axes instead of a new figure.
    show_points
        Overlay the seeds' values (deterministic spread) instead of outlier markers.
    ylabel
        Y-axis label (default: the metric's label).

    Returns
    -------
    The Figure: one box (a patch) per (pilot size, model) present in ``frame``, pilot sizes ascending.
    """
    require_columns(frame, ["pilot_size", "model", metric], "plot_metric_boxplots")
    sizes = sorted(pd.unique(frame["pilot_size"]))
    models = list(pd.unique(frame["model"]))
    colors = colors_for(models)
    width = 0.8 / len(models)
    fig, axes = new_figure(ax=ax, panel_size=_boxplot_panel_size(frame))
    ax = axes[0, 0]
    for i, size in enumerate(sizes):
        for j, model in enumerate(models):
            values = frame.loc[(frame["pilot_size"] == size) & (frame["model"] == model), metric].dropna()
            if values.empty:
                continue
            pos = i + (j - (len(models) - 1) / 2) * width
            ax.boxplot(
                [values.to_numpy(float)],
                positions=[pos],
                widths=width * 0.8,
                patch_artist=True,
                manage_ticks=False,
                showfliers=not show_points,
                boxprops={"facecolor": mpl.colors.to_rgba(colors[model], 0.45), "edgecolor": colors[model]},
                medianprops={"color": colors[model], "lw": 1.8},
                whiskerprops={"color": colors[model]},
                capprops={"color": colors[model]},
                flierprops={"markeredgecolor": colors[model], "markersize": 3},
            )
            if show_points:
                ax.scatter(pos + _offsets(len(values), width * 0.4), values, s=6, color=colors[model], zorder=3, lw=0)
    handles = [Patch(facecolor=mpl.colors.to_rgba(colors[m], 0.45), edgecolor=colors[m], label=str(m)) for m in models]
    if reference is not None:
        ax.axhline(reference, ls="--", lw=1.0, color="black")
        handles.append(Line2D([], [], ls="--", lw=1.0, color="black", label=reference_label))
    ax.set_xticks(np.arange(len(sizes)), [str(s) for s in sizes])
    ax.set_xlim(-0.6, len(sizes) - 0.4)
    ax.set_xlabel("pilot size (cells)")
    ax.set_ylabel(metric_label(metric) if ylabel is None else ylabel)
    ax.legend(handles=handles, frameon=False, loc="best")
    if title:
        ax.set_title(title)
    return fig


@styled
def plot_metric_panels(frame: pd.DataFrame, panels: Sequence[Mapping[str, object]], *, title: str = "") -> Figure:
    """:func:`plot_metric_boxplots` panels side by side, e.g. Fig. 2's DBI in the UMAP and on the count matrices.

    ``panels``: one mapping of :func:`plot_metric_boxplots` keyword arguments (``metric``, ``reference``,
    ``title``, ``ylabel``, ...) per panel, left to right. Returns the Figure, one axes per panel.
    """
    fig, axes = new_figure(1, len(panels), panel_size=_boxplot_panel_size(frame))
    for ax, kwargs in zip(axes[0], panels):
        plot_metric_boxplots(frame, ax=ax, **kwargs)
    return finish(fig, title)


def mad_matrix(
    frame: pd.DataFrame, *, value: str = "mad", statistics: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Wide rows x statistics matrix of MAD values (mean over seeds) and each row's pilot size (or ``None``).

    A tidy ``frame`` (columns ``model``, ``statistic``, ``value``, optionally ``pilot_size``, ``seed``) is
    pivoted with rows ordered by pilot size, then model in order of appearance; a frame without a
    ``statistic`` column is taken as already wide (index = row labels, columns = statistics).
    """
    if "statistic" in frame.columns:
        require_columns(frame, ["model", value], "plot_mad_table")
        keys = ["pilot_size", "model"] if "pilot_size" in frame.columns else ["model"]
        models = list(pd.unique(frame["model"]))
        wide = frame.groupby([*keys, "statistic"], sort=False)[value].mean().unstack("statistic")
        wide = wide.reset_index()
        wide["_model_order"] = wide["model"].map(models.index)
        wide = wide.sort_values([k if k != "model" else "_model_order" for k in keys], kind="stable")
        if "pilot_size" in keys:
            pilot = wide["pilot_size"].reset_index(drop=True)
            labels = [f"{m} ({p} cells)" for m, p in zip(wide["model"], wide["pilot_size"])]
        else:
            pilot = None
            labels = [str(m) for m in wide["model"]]
        wide = wide.drop(columns=[*keys, "_model_order"])
        wide.index = labels
        wide.columns.name = None
    else:
        wide, pilot = frame.select_dtypes("number"), None
    cols = list(statistics) if statistics is not None else (
        [s for s in STATISTIC_ORDER if s in wide.columns] + [c for c in wide.columns if c not in STATISTIC_ORDER]
    )  # fmt: skip
    return wide[cols].astype(float), pilot


def _rank_fraction(wide: pd.DataFrame, groups: pd.Series | None) -> np.ndarray:
    """Per column (and pilot-size group): 0 for the smallest MAD, 1 for the largest, ties share the better rank."""
    out = np.zeros(wide.shape)
    keys = np.zeros(len(wide)) if groups is None else groups.to_numpy()
    for key in pd.unique(keys):
        rows = np.flatnonzero(keys == key)
        ranks = wide.iloc[rows].rank(method="min", na_option="keep").to_numpy()
        top = np.nanmax(ranks, axis=0, initial=1)
        out[rows] = np.where(top > 1, (ranks - 1) / np.maximum(top - 1, 1), 0.0)
    out[np.isnan(wide.to_numpy())] = np.nan
    return out


@styled
def plot_mad_table(
    frame: pd.DataFrame,
    *,
    value: str = "mad",
    statistics: Sequence[str] | None = None,
    rank_within_pilot: bool = True,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Table of MAD values between real and generated per-gene statistics, coloured by rank (Treppner Fig. 3).

    Parameters
    ----------
    frame
        Tidy: one row per (model, statistic[, pilot_size][, seed]) with columns ``model``, ``statistic``
        (``median``, ``iqr``, ``cv``, ``zeros``, ...) and ``mad``; seeds are averaged. Or already wide: index =
        row labels, one numeric column per statistic.
    value
        The MAD column of a tidy frame.
    statistics
        Columns to show, in order (default: median, IQR, CV, zeros, then any others).
    rank_within_pilot
        Rank models against each other within a pilot size (otherwise over all rows of a column).
    title
        Axes title.
    ax
        Draw into this axes instead of a new figure.

    Returns
    -------
    The Figure: an image of ranks (darker = smaller MAD = closer to the real data) and one text per cell
    with the MAD to 2 decimals.
    """
    wide, pilot = mad_matrix(frame, value=value, statistics=statistics)
    shade = _rank_fraction(wide, pilot if rank_within_pilot else None)
    n_rows, n_cols = wide.shape
    fig, axes = new_figure(ax=ax, panel_size=(1.1 * n_cols + 2.6, 0.32 * n_rows + 1.2))
    ax = axes[0, 0]
    # the palest end of Blues is near-white: stop at 80% so the worst cell still reads as a coloured cell
    cmap = mpl.colors.ListedColormap(mpl.colormaps[RANK_CMAP](np.linspace(0.0, 0.8, 256)), name="rank")
    image = ax.imshow(np.ma.masked_invalid(shade), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for (r, c), v in np.ndenumerate(wide.to_numpy()):
        if np.isnan(v):
            continue
        rgb = cmap(shade[r, c])[:3]
        luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="white" if luminance < 0.5 else "black")
    ax.set_xticks(np.arange(n_cols), [STATISTIC_LABELS.get(str(s), str(s)) for s in wide.columns])
    ax.set_yticks(np.arange(n_rows), [str(i) for i in wide.index])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if pilot is not None:
        for r in np.flatnonzero(pilot.to_numpy()[1:] != pilot.to_numpy()[:-1]):
            ax.axhline(r + 0.5, color="white", lw=3)
    cbar = fig.colorbar(image, ax=ax, shrink=0.8, ticks=[0, 1])
    cbar.ax.set_yticklabels(["lowest MAD", "highest MAD"])
    cbar.set_label("rank within column" + (" and pilot size" if pilot is not None and rank_within_pilot else ""))
    if title:
        ax.set_title(title)
    return fig


def example_genes(X, n_genes: int = 4) -> np.ndarray:
    """Column indices of ``n_genes`` genes spread over the range of mean expression (highest to lowest quantile
    of the expressed genes), as the high/medium/low examples of Treppner Supplementary Fig. 3-4."""
    import scipy.sparse as sp

    means = np.asarray(X.mean(axis=0)).ravel() if sp.issparse(X) else np.asarray(X).mean(axis=0)
    expressed = np.flatnonzero(means > 0)
    if expressed.size == 0:
        return np.arange(min(n_genes, len(means)))
    order = expressed[np.argsort(-means[expressed], kind="stable")]
    picks = np.linspace(0, len(order) - 1, min(n_genes, len(order))).round().astype(int)
    return order[np.unique(picks)]


#: Most histogram bins of a gene marginal panel (one per count up to this many counts).
MAX_COUNT_BINS = 100
#: Gene panels per row of the marginal figure (the paper's 12 pancreas genes make three rows).
MARGINAL_COLUMNS = 4


@styled
def plot_gene_marginals(
    sets: dict[str, object],
    gene_names: Sequence[str],
    *,
    genes: Sequence[int] | None = None,
    n_genes: int = 4,
    title: str = "",
) -> Figure:
    """Count distributions of example genes in the original data and in each synthetic set (Treppner
    Supplementary Fig. 3-4): one panel per gene (rows of :data:`MARGINAL_COLUMNS`), one histogram (fraction of
    cells per count) per set.

    ``sets``: name -> cells x genes count matrix (dense or sparse), the first being the original data (filled
    grey; the others are coloured lines); ``genes``: column indices (default :func:`example_genes` of the first set).
    """
    import scipy.sparse as sp

    names = list(sets)
    first = sets[names[0]]
    cols = list(genes) if genes is not None else list(example_genes(first, n_genes))
    colors = colors_for(names[1:])
    n_cols = min(len(cols), MARGINAL_COLUMNS)
    n_rows = -(-len(cols) // n_cols)
    fig, grid = new_figure(n_rows, n_cols, panel_size=(3.0, 2.8))
    for ax in grid.ravel()[len(cols) :]:  # the last row's empty places
        ax.remove()
    axes = grid.ravel()[: len(cols)]
    for ax, col in zip(axes, cols):
        columns = {}
        for name in names:
            X = sets[name]
            values = X[:, col].toarray().ravel() if sp.issparse(X) else np.asarray(X)[:, col]
            columns[name] = np.rint(values).astype(np.int64)
        top = int(max(np.percentile(v, 99) for v in columns.values())) + 1
        # One bin per count while that stays readable; a set with huge counts (a diverged model) gets 100 equal
        # bins instead of one per count, which would need memory in proportion to its largest value.
        if top <= MAX_COUNT_BINS:
            bins = np.arange(-0.5, top + 1.5)
        else:
            bins = np.linspace(-0.5, top + 0.5, MAX_COUNT_BINS + 1)
        for name, values in columns.items():
            weights = np.full(len(values), 1.0 / max(len(values), 1))
            if name == names[0]:  # the original data: a grey filled histogram behind the synthetic sets' lines
                ax.hist(
                    np.minimum(values, top), bins=bins, weights=weights, histtype="stepfilled", color="0.8", label=name
                )
            else:
                ax.hist(
                    np.minimum(values, top),
                    bins=bins,
                    weights=weights,
                    histtype="step",
                    lw=1.4,
                    color=colors[name],
                    label=name,
                )
        ax.set_title(str(gene_names[col]))
        ax.set_xlabel("counts (last bin: 99th percentile and above)")
    for ax in grid[:, 0]:
        ax.set_ylabel("fraction of cells")
    grid[0, -1].legend(frameon=False, fontsize="small")
    return finish(fig, title)


#: Columns of the per-gene zero-fraction table of the added-zeros check (:func:`scsynth_core.experiments.
#: pilot.zero_inflation_check`): the data, then each model's cells by training set.
ZERO_DATA_COLUMNS = {"original": "original", "pilot": "pilot", "pilot_with_added_zeros": "pilot +\nadded zeros"}
ZERO_SYNTHETIC_COLUMNS = {
    "pilot_synthetic": "trained on the pilot",
    "pilot_with_added_zeros_synthetic": "trained on the pilot with added zeros",
}


@styled
def plot_gene_zero_fractions(per_gene: Mapping[str, pd.DataFrame], *, title: str = "") -> Figure:
    """Per-gene proportions of zeros after adding zeros (Treppner Supplementary Fig. 5): boxplots over genes of
    the original data, the pilot and the pilot with added zeros (grey), then per model its cells trained on the
    pilot (open box) and on the pilot with added zeros (filled box). A model that does not impute the added
    zeros has a filled box as high as the data's "added zeros" box.

    ``per_gene``: model -> one row per gene with the columns of :data:`ZERO_DATA_COLUMNS` and
    :data:`ZERO_SYNTHETIC_COLUMNS`; the data boxes come from the first model's table (every model is trained
    on the same pilot). Returns the Figure: one box (a patch) per data column and per model and training set.
    """
    if not per_gene:
        raise ValueError("plot_gene_zero_fractions: no model's table given")
    for model, table in per_gene.items():
        require_columns(table, [*ZERO_DATA_COLUMNS, *ZERO_SYNTHETIC_COLUMNS], f"plot_gene_zero_fractions ({model})")
    models = list(per_gene)
    colors = colors_for(models)
    first = per_gene[models[0]]
    fig, axes = new_figure(panel_size=(1.2 * (len(ZERO_DATA_COLUMNS) + len(models)) + 1.5, 3.4))
    ax = axes[0, 0]

    def box(values, pos, color, filled):
        face = mpl.colors.to_rgba(color, 0.55 if filled else 0.0)
        ax.boxplot(
            [np.asarray(values, dtype=float)],
            positions=[pos],
            widths=0.35,
            patch_artist=True,
            manage_ticks=False,
            boxprops={"facecolor": face, "edgecolor": color},
            medianprops={"color": color, "lw": 1.8},
            whiskerprops={"color": color},
            capprops={"color": color},
            flierprops={"markeredgecolor": color, "markersize": 2},
        )

    for i, column in enumerate(ZERO_DATA_COLUMNS):
        box(first[column], i, REAL_COLOR, filled=column == "pilot_with_added_zeros")
    offset = len(ZERO_DATA_COLUMNS)
    for i, model in enumerate(models):
        for j, column in enumerate(ZERO_SYNTHETIC_COLUMNS):
            box(per_gene[model][column], offset + i + (j - 0.5) * 0.4, colors[model], filled=j == 1)
    ax.set_xticks(np.arange(offset + len(models)), [*ZERO_DATA_COLUMNS.values(), *models])
    ax.set_xlim(-0.6, offset + len(models) - 0.4)
    ax.axvline(offset - 0.5, color="0.85", lw=1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("proportion of zeros per gene")
    handles = [
        Patch(facecolor="none", edgecolor="0.3", label=ZERO_SYNTHETIC_COLUMNS["pilot_synthetic"]),
        Patch(
            facecolor=mpl.colors.to_rgba("0.3", 0.55),
            edgecolor="0.3",
            label=ZERO_SYNTHETIC_COLUMNS["pilot_with_added_zeros_synthetic"],
        ),
    ]
    ax.legend(handles=handles, frameon=False, loc="best", fontsize="small")
    return finish(fig, title)
