"""Classifier F1 against the fraction of a cluster kept (Marouf et al. 2020 Fig. 3a, ACTIVA Fig. 6).

One cluster is downsampled to nested fractions; a classifier is trained on the downsampled data, on the data
with the kept cells upsampled, and on the data augmented with generated cells. The figure shows, per variant,
the mean F1 over seeds against the fraction (log scale, descending left to right like the paper) with the
min-max range over seeds shaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.data.checks import require_columns
from scsynth_core.plots._style import colors_for, finish, new_figure, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

VARIANT_ORDER = ("downsampled", "upsampled", "augmented")


def percent_label(fraction: float) -> str:
    """``0.005`` -> ``"0.5%"``, ``0.5`` -> ``"50%"``.

    >>> [percent_label(f) for f in (1.0, 0.25, 0.005)]
    ['100%', '25%', '0.5%']
    """
    return f"{100 * fraction:.4g}%"


def f1_summary(frame: pd.DataFrame, *, metric: str = "f1", by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean, min and max of ``metric`` over seeds per ``by`` + (variant, fraction): the data the figure draws."""
    keys = [*by, "variant", "fraction"]
    return frame.groupby(keys, sort=True)[metric].agg(["mean", "min", "max", "count"]).reset_index()


#: Panel titles of the two forests behind a pairwise F1 (column ``forest`` of the augmentation protocol).
FOREST_LABELS = {"all": "all-cluster forest", "pair": "two-cluster forest"}


def comparison_panels(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows relabelled by comparison and forest, in panel order: ``vs rest``, then per cluster its F1 from the
    all-cluster forest and from the forest retrained on the two clusters (Marouf 2020 Supplementary Fig. 14).

    >>> frame = pd.DataFrame({"comparison": ["3", "rest", "3"], "forest": ["pair", "all", "all"]})
    >>> comparison_panels(frame)["comparison"].tolist()
    ['vs rest', 'vs 3 (all-cluster forest)', 'vs 3 (two-cluster forest)']
    """
    unknown = set(frame["forest"]) - set(FOREST_LABELS)
    if unknown:
        raise ValueError(f"forest must be one of {sorted(FOREST_LABELS)}, got {sorted(map(str, unknown))}")
    comparison = frame["comparison"].astype(str)
    rest = comparison == "rest"
    order = pd.DataFrame({"other": ~rest, "comparison": comparison, "pair": frame["forest"] == "pair"})
    labels = "vs " + comparison + (" (" + frame["forest"].map(FOREST_LABELS) + ")").where(~rest, "")
    out = frame.assign(comparison=labels)
    return out.loc[order.sort_values(["other", "comparison", "pair"], kind="stable").index].reset_index(drop=True)


@styled
def plot_f1_vs_fraction(
    frame: pd.DataFrame,
    *,
    metric: str = "f1",
    title: str = "",
    ax: Axes | None = None,
    facet: str = "comparison",
    reference: float | None = None,
) -> Figure:
    """Mean F1 per variant over the kept fraction with the seeds' min-max band (Marouf Fig. 3a, ACTIVA Fig. 6).

    Parameters
    ----------
    frame
        Tidy results, one row per (fraction, variant, seed): columns ``fraction`` (in (0, 1]), ``variant``
        (``downsampled``, ``upsampled``, ``augmented``, or any other name), ``seed`` and ``f1`` (or ``metric``);
        optionally a ``comparison`` column (e.g. the model, or the downsampled cluster) giving one panel each;
        with a ``forest`` column too (``all``/``pair``), one panel per comparison and forest
        (:func:`comparison_panels`).
    metric
        The value column.
    title
        Title (the axes' for one panel, the figure's for facets).
    ax
        Draw into this axes (only without facets).
    facet
        Column that splits panels when present in ``frame``.
    reference
        Optional horizontal line, e.g. the F1 of a classifier trained on all cells.

    Returns
    -------
    The Figure: per panel and variant one line of means (with markers) and one shaded band.
    """
    require_columns(frame, ["fraction", "variant", metric], "plot_f1_vs_fraction")
    if (frame["fraction"] <= 0).any():
        raise ValueError("fractions must be positive (the x axis is logarithmic)")
    if facet == "comparison" and {"comparison", "forest"} <= set(frame.columns):
        frame = comparison_panels(frame)
    facets = list(pd.unique(frame[facet])) if facet in frame.columns else [None]
    if ax is not None and len(facets) > 1:
        raise ValueError(f"ax= draws one panel, but column {facet!r} asks for {len(facets)}")
    variants = list(pd.unique(frame["variant"]))
    variants.sort(key=lambda v: (VARIANT_ORDER.index(v) if v in VARIANT_ORDER else len(VARIANT_ORDER), str(v)))
    colors = colors_for(variants)
    fractions = np.sort(pd.unique(frame["fraction"]))[::-1]
    fig, axes = new_figure(1, len(facets), ax=ax, panel_size=(4.0, 3.2), sharey=True)
    summary = f1_summary(frame, metric=metric, by=(facet,) if facets != [None] else ())
    for i, (panel, key) in enumerate(zip(axes[0], facets)):
        sub = summary if key is None else summary[summary[facet] == key]
        for variant in variants:
            rows = sub[sub["variant"] == variant].sort_values("fraction", ascending=False)
            if rows.empty:
                continue
            panel.fill_between(rows["fraction"], rows["min"], rows["max"], color=colors[variant], alpha=0.2, lw=0)
            panel.plot(rows["fraction"], rows["mean"], marker="o", ms=4, lw=1.6, color=colors[variant], label=variant)
        if reference is not None:
            panel.axhline(reference, ls="--", lw=1.0, color="0.4", label="all cells")
        panel.set_xscale("log")
        panel.set_xticks(fractions, [percent_label(f) for f in fractions])
        panel.minorticks_off()
        panel.set_xlim(fractions[0] * 1.25, fractions[-1] / 1.25)  # descending, as in the paper
        panel.set_xlabel("fraction of the cluster kept")
        if i == 0:
            panel.set_ylabel("F1 score" if metric == "f1" else metric)
            panel.legend(frameon=False, loc="best")
        if len(facets) > 1:
            panel.set_title(str(key))
        elif title or key is not None:
            panel.set_title(title or str(key))
    return finish(fig, title if len(facets) > 1 else "")
