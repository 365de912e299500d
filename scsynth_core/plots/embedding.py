"""Co-embedding of real and generated cells (Marouf 2020 Fig. 1-2 t-SNE, ACTIVA Fig. 2-3 UMAP/t-SNE).

Cells of every set are projected into the shared representation fitted on the real cells
(:mod:`scsynth_core.metrics.representation`), then embedded together with UMAP or t-SNE, so positions are
comparable across sets. Data prep (:func:`embedding_frame`) returns a DataFrame; rendering
(:func:`plot_embedding`) is separate and colours cells by set, by cluster, or by a gene's log expression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

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
    from collections.abc import Mapping, Sequence

    import anndata as ad
    from matplotlib.figure import Figure

METHODS = {"umap": "UMAP", "tsne": "t-SNE"}
BASE_COLUMNS = ("x", "y", "set", "cluster")
UNLABELLED = "unlabelled"


def _embed(coords: np.ndarray, method: str, *, seed: int, n_neighbors: int, perplexity: float) -> np.ndarray:
    if method == "umap":
        import umap

        return umap.UMAP(n_neighbors=n_neighbors, random_state=seed, n_jobs=1).fit_transform(coords)
    from sklearn.manifold import TSNE

    perplexity = min(perplexity, max(1.0, (len(coords) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(coords)


def embedding_frame(
    real: ad.AnnData,
    generated: Mapping[str, ad.AnnData],
    *,
    seed: int = 0,
    n_neighbors: int = 15,
    method: str = "umap",
    perplexity: float = 30.0,
    cluster_key: str | None = "cluster",
    genes: Sequence[str] = (),
) -> pd.DataFrame:
    """2-d coordinates of real and generated cells embedded together.

    Parameters
    ----------
    real
        Real cells (counts); the shared PCA is fitted on them.
    generated
        ``{model: cells}`` with the same genes as ``real``.
    seed
        Random state of the PCA and of the embedding.
    n_neighbors
        UMAP neighbourhood size.
    method
        ``"umap"`` or ``"tsne"`` (sklearn, PCA initialisation; perplexity capped at ``(n - 1) / 3``).
    perplexity
        t-SNE perplexity.
    cluster_key
        ``obs`` column copied into the ``cluster`` column (``"unlabelled"`` for sets without it, e.g. holistic
        models); ``None`` to skip.
    genes
        Genes whose log(LSN + 1) expression (the shared representation's normalisation) becomes a column each.

    Returns
    -------
    DataFrame with columns ``x``, ``y``, ``set`` ("real" or the model name), ``cluster`` (when
    ``cluster_key`` is found in any set) and one column per gene; ``attrs["method"]`` names the embedding.
    """
    from scsynth_core.metrics.representation import fit_representation, log_lsn

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, not {method!r}")
    sets = {"real": real} | dict(generated)
    missing = [g for g in genes if g not in real.var_names]
    if missing:
        raise ValueError(f"genes {missing} are not among the real cells' var_names")
    clash = [g for g in genes if g in BASE_COLUMNS]
    if clash:
        raise ValueError(f"genes {clash} clash with the frame's own columns {BASE_COLUMNS}")
    rep = fit_representation(real, seed=seed)
    coords = np.vstack([rep.transform(cells) for cells in sets.values()])
    xy = _embed(coords, method, seed=seed, n_neighbors=n_neighbors, perplexity=perplexity)
    frame = pd.DataFrame(
        {"x": xy[:, 0], "y": xy[:, 1], "set": np.concatenate([[name] * cells.n_obs for name, cells in sets.items()])}
    )
    if cluster_key is not None and any(cluster_key in cells.obs for cells in sets.values()):
        frame["cluster"] = np.concatenate(
            [
                cells.obs[cluster_key].astype(str).to_numpy()
                if cluster_key in cells.obs
                else np.full(cells.n_obs, UNLABELLED, dtype=object)
                for cells in sets.values()
            ]
        )
    if genes:
        idx = [real.var_names.get_loc(g) for g in genes]
        values = np.vstack([log_lsn(cells.X)[:, idx].toarray() for cells in sets.values()])
        for j, gene in enumerate(genes):
            frame[gene] = values[:, j]
    frame.attrs["method"] = method
    return frame


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
        From :func:`embedding_frame`: columns ``x``, ``y``, ``set``, plus ``cluster`` and gene columns as needed.
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
