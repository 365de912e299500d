"""ROC curves of the real-vs-generated random-forest classifier (Marouf et al. 2020 Fig. 1e, ACTIVA Fig. 2).

A classifier that cannot tell generated from real cells sits on the diagonal (AUC 0.5). Each cross-validation
fold gives one curve; the mean curve averages the folds' true-positive rates on a common false-positive-rate grid
(vertical averaging, Fawcett 2006), and the legend carries the AUC as mean ± sd over folds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from scsynth_core.plots._style import REAL_COLOR, colors_for, finish, new_figure, styled

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Curve = tuple["np.ndarray", "np.ndarray"]


def mean_roc(folds: Sequence[Curve], grid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vertical average of ROC curves: ``(grid, mean tpr)`` with the curve pinned to (0, 0) and (1, 1).

    >>> fpr, tpr = mean_roc([(np.array([0.0, 1.0]), np.array([0.0, 1.0]))], grid=np.array([0.0, 0.5, 1.0]))
    >>> tpr.tolist()
    [0.0, 0.5, 1.0]
    """
    grid = np.linspace(0.0, 1.0, 201) if grid is None else np.asarray(grid, dtype=float)
    rows = []
    for fpr, tpr in folds:
        fpr, tpr = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
        if fpr.shape != tpr.shape or fpr.ndim != 1 or fpr.size < 2:
            raise ValueError("each ROC fold must be two 1-d arrays (fpr, tpr) of equal length >= 2")
        order = np.argsort(fpr, kind="stable")
        rows.append(np.interp(grid, fpr[order], tpr[order]))
    if not rows:
        raise ValueError("no ROC folds given")
    mean = np.mean(rows, axis=0)
    mean[grid <= 0.0] = 0.0
    mean[grid >= 1.0] = 1.0
    return grid, mean


def _auc_label(prefix: str, mean: float, sd: float) -> str:
    return f"{prefix}AUC = {mean:.3f} ± {sd:.3f}"


def _draw_folds(ax: Axes, folds: Sequence[Curve], color, label: str | None, *, alpha: float = 0.35) -> None:
    for i, (fpr, tpr) in enumerate(folds):
        ax.plot(fpr, tpr, color=color, lw=0.8, alpha=alpha, label=label if (i == 0 and label) else "_nolegend_")


def _draw_frame(ax: Axes) -> None:
    ax.plot([0, 1], [0, 1], ls="--", lw=1.0, color=REAL_COLOR, label="chance (AUC = 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_aspect("equal")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.legend(loc="lower right", frameon=False)


@styled
def plot_roc(
    folds: Sequence[Curve],
    *,
    auc_mean: float,
    auc_sd: float,
    title: str = "",
    ax: Axes | None = None,
    color: str | None = None,
) -> Figure:
    """Per-fold ROC curves (thin, light), their mean (thick) and the chance diagonal (Marouf Fig. 1e, ACTIVA Fig. 2).

    Parameters
    ----------
    folds
        One ``(fpr, tpr)`` pair of arrays per cross-validation fold (as ``sklearn.metrics.roc_curve`` returns).
    auc_mean, auc_sd
        AUC over folds, shown in the legend as ``AUC = mean ± sd`` (3 decimals).
    title
        Axes title.
    ax
        Draw into this axes instead of a new figure.
    color
        Colour of the curves (default: the first palette colour).

    Returns
    -------
    The Figure; its axes hold ``len(folds) + 2`` lines (folds, mean, diagonal).
    """
    fig, axes = new_figure(ax=ax, panel_size=(3.4, 3.4))
    ax = axes[0, 0]
    color = color or colors_for(["classifier"])["classifier"]
    _draw_folds(ax, folds, color, f"folds (n = {len(folds)})")
    grid, mean = mean_roc(folds)
    ax.plot(grid, mean, color=color, lw=2.2, label=_auc_label("mean ROC, ", auc_mean, auc_sd))
    _draw_frame(ax)
    if title:
        ax.set_title(title)
    return fig


@styled
def plot_roc_comparison(
    curves: Mapping[str, Sequence[Curve]],
    aucs: Mapping[str, tuple[float, float]],
    *,
    title: str = "",
    ax: Axes | None = None,
    show_folds: bool = True,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Mean ROC curve of several models on one axes, folds faint behind them (ACTIVA Fig. 2 vs scGAN/cscGAN).

    Parameters
    ----------
    curves
        ``{model: [(fpr, tpr), ...]}``, the per-fold curves of each model.
    aucs
        ``{model: (mean, sd)}``; the legend reads ``model (AUC = mean ± sd)``.
    title
        Axes title.
    ax
        Draw into this axes instead of a new figure.
    show_folds
        Also draw each model's fold curves (thin, light).
    colors
        ``{model: colour}`` (default: :func:`~scsynth_core.plots._style.colors_for` of the models), so that
        several panels can keep one colour per model.

    Returns
    -------
    The Figure; one thick line per model, plus the folds when shown, plus the diagonal.
    """
    missing = [m for m in curves if m not in aucs]
    if missing:
        raise ValueError(f"aucs lacks (mean, sd) for model(s) {missing}")
    fig, axes = new_figure(ax=ax, panel_size=(3.6, 3.6))
    ax = axes[0, 0]
    colors = colors_for(curves) if colors is None else colors
    for model, folds in curves.items():
        if show_folds:
            _draw_folds(ax, folds, colors[model], None, alpha=0.2)
        grid, mean = mean_roc(folds)
        m, sd = aucs[model]
        ax.plot(grid, mean, color=colors[model], lw=2.0, label=f"{model} ({_auc_label('', m, sd)})")
    _draw_frame(ax)
    if title:
        ax.set_title(title)
    return fig


@styled
def plot_roc_per_cluster(
    curves: Mapping[str, Mapping[str, Sequence[Curve]]],
    aucs: Mapping[str, Mapping[str, tuple[float, float]]],
    *,
    title: str = "",
    ncols: int = 4,
) -> Figure:
    """One panel per cluster, each model's mean ROC curve in it (Heydari 2022 Fig. 5; Marouf 2020 Fig. 2).

    Parameters
    ----------
    curves
        ``{cluster: {model: [(fpr, tpr), ...]}}``: per-fold curves of the models scored on that cluster, panels
        in this order.
    aucs
        ``{cluster: {model: (mean, sd)}}`` for the legends.
    title
        Figure title.
    ncols
        Panels per row.

    Returns
    -------
    The Figure; one axes per cluster (unused grid cells hidden), drawn by :func:`plot_roc_comparison` without
    the fold curves, each model in the same colour in every panel.
    """
    if not curves:
        raise ValueError("no cluster to draw: every cluster was skipped (too few cells)")
    colors = colors_for(dict.fromkeys(m for by_model in curves.values() for m in by_model))
    ncols = max(1, min(ncols, len(curves)))
    nrows = -(-len(curves) // ncols)
    fig, axes = new_figure(nrows, ncols, panel_size=(3.6, 3.6))
    for ax, (cluster, by_model) in zip(axes.flat, curves.items()):
        plot_roc_comparison(by_model, aucs[cluster], title=f"cluster {cluster}", ax=ax, show_folds=False, colors=colors)
    for ax in list(axes.flat)[len(curves) :]:
        ax.set_visible(False)
    return finish(fig, title)
