"""Co-embedding of real and generated cells (Marouf 2020 Fig. 1-2 t-SNE, ACTIVA Fig. 2-3 UMAP/t-SNE): the
computation; :mod:`scsynth_core.plots.embedding` draws it.

Cells of every set are projected into the shared representation fitted on the real cells
(:mod:`scsynth_core.metrics.representation`), then embedded together with UMAP or t-SNE, so positions are
comparable across sets. :func:`embedding_frame` returns a DataFrame of coordinates, sets, clusters and gene values;
:func:`embed` embeds any cells x features matrix (the experiments' codes and PCs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import anndata as ad

#: Embedding methods and their axis labels.
METHODS = {"umap": "UMAP", "tsne": "t-SNE"}
#: Columns of every :func:`embedding_frame` (``cluster`` when a set has the cluster key); genes may not reuse them.
BASE_COLUMNS = ("x", "y", "set", "cluster")
#: ``cluster`` value of cells from a set without the cluster key (e.g. a holistic model's).
UNLABELLED = "unlabelled"


def embed(coords: np.ndarray, method: str, *, seed: int, n_neighbors: int, perplexity: float) -> np.ndarray:
    """2-d UMAP (umap-learn, one thread) or t-SNE (sklearn, PCA initialisation; perplexity capped at
    ``(n - 1) / 3``) coordinates of ``coords`` (cells x features)."""
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
    xy = embed(coords, method, seed=seed, n_neighbors=n_neighbors, perplexity=perplexity)
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
