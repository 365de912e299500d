"""Co-embedding of real and generated cells (Marouf 2020 Fig. 1-2 t-SNE, ACTIVA Fig. 2 UMAP).

Cells of every set are projected into the shared representation fitted on the real cells
(:mod:`scsynth_core.metrics.representation`), then embedded together with UMAP, so positions are comparable
across sets. Data prep returns a DataFrame; rendering is separate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping

    import anndata as ad
    from matplotlib.figure import Figure


def embedding_frame(
    real: ad.AnnData, generated: Mapping[str, ad.AnnData], *, seed: int = 0, n_neighbors: int = 15
) -> pd.DataFrame:
    """UMAP coordinates of real and generated cells: columns ``x``, ``y``, ``set`` ("real" or the model name)."""
    import umap

    from scsynth_core.metrics.representation import fit_representation

    rep = fit_representation(real, seed=seed)
    blocks = {"real": rep.transform(real)} | {name: rep.transform(g) for name, g in generated.items()}
    coords = np.vstack(list(blocks.values()))
    xy = umap.UMAP(n_neighbors=n_neighbors, random_state=seed, n_jobs=1).fit_transform(coords)
    labels = np.concatenate([[name] * len(block) for name, block in blocks.items()])
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "set": labels})


def plot_embedding(frame: pd.DataFrame, *, title: str = "", point_size: float = 4.0) -> Figure:
    """One panel per generated set: real cells in grey, that set's cells in colour, same axes everywhere."""
    import matplotlib.pyplot as plt

    models = [s for s in frame["set"].unique() if s != "real"]
    n = max(1, len(models))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 4), squeeze=False, sharex=True, sharey=True)
    real = frame[frame["set"] == "real"]
    for ax, model in zip(axes[0], models or [None]):
        ax.scatter(real["x"], real["y"], s=point_size, c="0.75", label="real", rasterized=True)
        if model is not None:
            gen = frame[frame["set"] == model]
            ax.scatter(gen["x"], gen["y"], s=point_size, c="tab:red", alpha=0.6, label=model, rasterized=True)
            ax.set_title(model)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="best", fontsize="small", markerscale=3)
    axes[0][0].set_xlabel("UMAP 1")
    axes[0][0].set_ylabel("UMAP 2")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
