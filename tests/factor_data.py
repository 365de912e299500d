"""Synthetic counts with known continuous generative factors, for the disentanglement models' tests."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def two_factor_counts(n_cells: int = 200, n_genes: int = 40, seed: int = 0) -> ad.AnnData:
    """Poisson counts driven by two continuous factors in [0, 1] (obs ``f1``, ``f2``): a third of the genes rise
    or fall non-linearly with each factor, the rest are noise; library sizes vary log-normally."""
    rng = np.random.default_rng(seed)
    factors = rng.uniform(size=(n_cells, 2))
    driver = rng.integers(0, 3, n_genes)  # 0: f1, 1: f2, 2: none
    amplitude = rng.uniform(1.5, 3.0, n_genes) * rng.choice([-1.0, 1.0], n_genes)
    response = np.where(driver == 0, factors[:, [0]] ** 2, np.where(driver == 1, np.sqrt(factors[:, [1]]), 0.0))
    logits = rng.normal(0.0, 0.5, n_genes) + amplitude * response
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    library = rng.lognormal(np.log(3000), 0.3, n_cells)[:, None]
    X = rng.poisson(probs * library).astype(np.float32)
    obs = pd.DataFrame({"f1": factors[:, 0], "f2": factors[:, 1]}, index=[f"c{i}" for i in range(n_cells)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))
