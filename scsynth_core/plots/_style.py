"""The shared look of every scsynth figure: colour-blind-safe palettes, font sizes and a figure factory.

Figures are built on :class:`matplotlib.figure.Figure` directly (not through ``pyplot``), so plotting never
touches global pyplot state, needs no interactive backend and leaves nothing open for the caller to close.

Colours: models and categorical variables use the Okabe & Ito (2008) palette followed by Paul Tol's "muted"
scheme; both are designed to stay distinguishable under the common colour-vision deficiencies. Well-known
names (models of the four papers, the augmentation variants, ``real``) keep one colour in every figure.
Continuous values use ``viridis``; signed correlations use the diverging ``RdBu_r``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from matplotlib.axes import Axes

#: Okabe-Ito (yellow last: weak on white) then Tol "muted".
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
    "#332288", "#CC6677", "#117733", "#882255", "#44AA99", "#999933", "#AA4499", "#88CCEE", "#DDCC77",
)  # fmt: skip

REAL_COLOR = "#8C8C8C"

#: Fixed colours for names that appear across figures (models, augmentation variants, real data).
FIXED_COLORS: dict[str, str] = {
    "real": REAL_COLOR,
    "train": REAL_COLOR,
    "original": REAL_COLOR,
    "scgan": "#0072B2",
    "cscgan": "#56B4E9",
    "activa": "#D55E00",
    "scvi": "#009E73",
    "scvi_prior": "#009E73",
    "scvi_posterior": "#117733",
    "scdbm": "#E69F00",
    "michigan": "#CC79A7",
    "wgan_gp": "#332288",
    "vae": "#44AA99",
    "beta_tcvae": "#882255",
    "pca": "#999933",
    "upsample": "#000000",
    "noise": "#000000",
    "downsampled": "#D55E00",
    "upsampled": "#E69F00",
    "augmented": "#0072B2",
}

#: Axis labels for metric column names (anything else is shown as is).
METRIC_LABELS: dict[str, str] = {
    "f1": "F1 score",
    "dbi": "Davies-Bouldin index",
    "ari": "adjusted Rand index",
    "rf_auc_mean": "RF AUC (real vs generated)",
    "rf_error": "RF error",
    "mmd": "MMD",
    "correlation_discrepancy": "correlation discrepancy",
    "proportion_error": "cluster proportion error",
    "mig": "MIG",
    "mig_posterior": "MIG through q(z|x)",
    "mig_balanced": "MIG (balanced)",
    "factorvae": "FactorVAE metric",
    "correlation_gap": "correlation gap",
    "inception_score": "inception score",
    "abs_rho": "|Spearman rho| code vs kNN factor",
}

CONTINUOUS_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"

#: Font sizes (points) and a few defaults applied while a figure is built.
RC: dict[str, object] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 150,
    "image.cmap": CONTINUOUS_CMAP,
}


def colors_for(names: Iterable[object]) -> dict[object, str]:
    """A colour per name: its fixed colour when it has one (and no other name here took it), else the next free
    palette colour in order of appearance. Deterministic; colours are unique within one call while the palette
    lasts."""
    names = list(dict.fromkeys(names))
    out: dict[object, str] = {}
    used: set[str] = set()
    for name in names:
        fixed = FIXED_COLORS.get(str(name).lower())
        if fixed is not None and fixed not in used:
            out[name] = fixed
            used.add(fixed)
    free = [c for c in PALETTE if c not in used and c != REAL_COLOR]
    for i, name in enumerate(n for n in names if n not in out):
        out[name] = free[i] if i < len(free) else mpl.colormaps[CONTINUOUS_CMAP](((i - len(free)) % 10) / 9)
    return out


def categorical_colors(n: int) -> list:
    """``n`` distinguishable colours for unnamed categories (clusters): the palette, then evenly spaced viridis."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    return [mpl.colormaps[CONTINUOUS_CMAP](x) for x in np.linspace(0, 1, n)]


def styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under :data:`RC` (fonts are fixed on each artist when it is created)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper


def root_figure(ax: Axes) -> Figure:
    """The top-level Figure holding ``ax`` (also when ``ax`` lives in a SubFigure)."""
    fig = ax.figure
    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    ax: Axes | None = None,
    panel_size: tuple[float, float] = (3.6, 3.0),
    sharex: bool = False,
    sharey: bool = False,
    **subplot_kw,
) -> tuple[Figure, np.ndarray]:
    """A Figure and a 2-d array of axes (``nrows x ncols``), each panel ``panel_size`` inches.

    With ``ax`` given (single-panel figures only), draw into it instead and return its figure.
    """
    if ax is not None:
        if nrows * ncols != 1:
            raise ValueError("ax= can only be used for a single-panel figure")
        return root_figure(ax), np.array([[ax]])
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey, subplot_kw=subplot_kw or None)
    return fig, axes


def finish(fig: Figure, title: str = "") -> Figure:
    """Add the figure title (when given) and return the figure."""
    if title:
        fig.suptitle(title)
    return fig


def metric_label(name: str) -> str:
    """Human-readable axis label of a metric column."""
    return METRIC_LABELS.get(name, name)
