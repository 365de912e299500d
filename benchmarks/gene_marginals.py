"""Which way generated cells' gene-wise marginals are off: medians over genes of generated / test-cell ratios.

For cells kept by ``realism_grid.py run --modern`` (``benchmarks/out/realism_cells/<dataset>__<model>.h5ad``)
against the realism protocol's test cells: per-gene mean and variance of log(LSN + 1) (genes with a test mean
above 0.05), per-gene zero fraction, and per-cell library size and zero fraction. The SimBench-style scores in
``scsynth_core.metrics.marginals`` say how far the distributions are apart; this says in which direction
(from the same per-cell and per-gene statistics, ``marginal_statistics``). Example::

    python benchmarks/gene_marginals.py pbmc3k latentflow scvi_posterior real_control
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realism_protocol import ROOT, prepared_dataset

#: LSN scale of the recorded tables (benchmarks/results/realism_modern/README.md): the usual 10,000, not the
#: project's 20,000 (``LSN_TARGET``); the direction of each ratio is the same on either.
TARGET_SUM = 1e4


def main(argv=None) -> None:
    import anndata as ad
    import numpy as np

    from scsynth_core.metrics.marginals import marginal_statistics

    dataset, *models = argv or sys.argv[1:]
    cells = prepared_dataset(dataset)
    real = marginal_statistics(cells[cells.obs["split"] == "test"].X, target_sum=TARGET_SUM)
    keep = real["gene_mean"] > 0.05
    for model in models:
        path = ROOT / "benchmarks" / "out" / "realism_cells" / f"{dataset}__{model}.h5ad"
        gen = marginal_statistics(ad.read_h5ad(path).X, target_sum=TARGET_SUM)

        print(
            f"{dataset} {model}: gene log-mean ratio {np.median(gen['gene_mean'][keep] / real['gene_mean'][keep]):.3f}, "
            f"log-variance ratio {np.median(gen['gene_variance'][keep] / real['gene_variance'][keep]):.3f}, "
            f"gene zero fraction {np.median(gen['gene_zero_fraction'] - real['gene_zero_fraction']):+.4f}, "
            f"library {np.median(gen['library_size']):.0f} vs {np.median(real['library_size']):.0f}, "
            f"cell zero fraction {np.median(gen['cell_zero_fraction']):.4f} vs "
            f"{np.median(real['cell_zero_fraction']):.4f}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
