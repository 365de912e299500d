"""Which way generated cells' gene-wise marginals are off: medians over genes of generated / test-cell ratios.

For cells kept by ``realism_grid.py run --modern`` (``benchmarks/out/realism_cells/<dataset>__<model>.h5ad``)
against the realism protocol's test cells: per-gene mean and variance of log(LSN + 1) (genes with a test mean
above 0.05), per-gene zero fraction, and per-cell library size and zero fraction. The SimBench-style scores in
``scsynth_core.metrics.marginals`` say how far the distributions are apart; this says in which direction. Example::

    python benchmarks/gene_marginals.py pbmc3k latentflow scvi_posterior real_control
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realism_protocol import ROOT, prepared_dataset


def marginals(X):
    """(gene log means, gene log variances, gene zero fractions, cell libraries, cell zero fractions)."""
    import numpy as np
    import scipy.sparse as sp

    X = sp.csr_matrix(X, dtype=np.float64)
    library = np.asarray(X.sum(axis=1)).ravel()
    logs = sp.diags(1e4 / np.maximum(library, 1)) @ X
    logs.data = np.log1p(logs.data)
    mean = np.asarray(logs.mean(axis=0)).ravel()
    variance = np.asarray(logs.multiply(logs).mean(axis=0)).ravel() - mean**2
    expressed = X > 0
    return (
        mean,
        variance,
        1 - np.asarray(expressed.mean(axis=0)).ravel(),
        library,
        1 - np.asarray(expressed.mean(axis=1)).ravel(),
    )


def main(argv=None) -> None:
    import anndata as ad
    import numpy as np

    dataset, *models = argv or sys.argv[1:]
    cells = prepared_dataset(dataset)
    real = marginals(cells[cells.obs["split"] == "test"].X)
    keep = real[0] > 0.05
    for model in models:
        gen = marginals(ad.read_h5ad(ROOT / "benchmarks" / "out" / "realism_cells" / f"{dataset}__{model}.h5ad").X)
        print(
            f"{dataset} {model}: gene log-mean ratio {np.median(gen[0][keep] / real[0][keep]):.3f}, "
            f"log-variance ratio {np.median(gen[1][keep] / real[1][keep]):.3f}, "
            f"gene zero fraction {np.median(gen[2] - real[2]):+.4f}, library {np.median(gen[3]):.0f} vs "
            f"{np.median(real[3]):.0f}, cell zero fraction {np.median(gen[4]):.4f} vs {np.median(real[4]):.4f}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
