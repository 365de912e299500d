"""Timings of the realism metrics at paper settings (not a test).

Measures
  1. MMD (Marouf kernel, unbiased) on 3,000 vs 3,000 points in 50 dimensions (bandwidth included);
  2. the 5-fold real-vs-generated random forest, 1,000 trees, 2 x 3,000 cells x 50 PCs;
  3. one full ``realism_metrics`` call: 2,000 real vs 2,000 generated cells x 2,000 genes of negative-binomial
     counts, through a shared representation fitted once beforehand (its fit is timed separately).

Usage: ``python benchmarks/bench_metrics.py [--n-jobs 2] [--n-trees 1000] [--skip-rf]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _nb_counts(rng: np.random.Generator, n_cells: int, n_genes: int, shift: float = 0.0):
    """NB counts (gene means fixed by seed 0, two cell groups, per-cell library factor); ``shift`` scales means.

    Real and "generated" sets share the gene parameters and differ only by ``shift`` and sampling noise, so the
    forest faces a realistic, not trivially separable, problem (tree depth, hence time, depends on that).
    """
    import anndata as ad
    import scipy.sparse as sp

    genes = np.random.default_rng(0)
    gene_mean = genes.lognormal(mean=-1.0, sigma=1.5, size=n_genes)
    effect = np.where(genes.random(n_genes) < 0.1, genes.lognormal(0, 1, n_genes), 1.0)
    group = rng.integers(0, 2, n_cells)
    mu = gene_mean[None, :] * np.where(group[:, None] == 1, effect[None, :], 1.0)
    mu *= rng.lognormal(0, 0.3, n_cells)[:, None] * (1.0 + shift)
    theta = 2.0
    counts = rng.negative_binomial(theta, theta / (theta + mu)).astype(np.float32)
    return ad.AnnData(sp.csr_matrix(counts))


def _time(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"{label:<58s} {elapsed:8.2f} s", flush=True)
    return value, elapsed


def main(args: argparse.Namespace) -> None:
    from scsynth_core.metrics.realism import mmd, mmd_bandwidth, realism_metrics, rf_real_vs_generated
    from scsynth_core.metrics.representation import fit_representation

    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(3000, 50)).astype(np.float32)
    y = (rng.normal(size=(3000, 50)) + 0.05).astype(np.float32)
    mmd(x[:100], y[:100])  # warm-up (imports)
    _time("MMD bandwidth (25-NN median), 3k+3k x 50", mmd_bandwidth, x, y)
    value, _ = _time("MMD total (bandwidth + kernel sums), 3k vs 3k x 50", mmd, x, y)
    print(f"  mmd = {value:.5f}")

    if not args.skip_rf:
        res, _ = _time(
            f"RF AUC 5-fold, {args.n_trees} trees, 2 x 3000 x 50, n_jobs={args.n_jobs}",
            rf_real_vs_generated,
            x,
            y,
            n_trees=args.n_trees,
            seed=args.seed,
            n_jobs=args.n_jobs,
        )
        print(f"  auc = {res.auc_mean:.3f} +- {res.auc_sd:.3f}, error = {res.error:.3f}")

    real = _nb_counts(np.random.default_rng(1), 2000, 2000)
    generated = _nb_counts(np.random.default_rng(2), 2000, 2000, shift=0.1)
    generated.var_names = real.var_names
    rep, _ = _time("shared representation fit (2000 real x 2000 genes, 50 PCs)", fit_representation, real, seed=0)
    out, _ = _time(
        f"realism_metrics 2000 vs 2000 x 2000 genes, {args.n_trees} trees",
        realism_metrics,
        real,
        generated,
        representation=rep,
        n_trees=args.n_trees,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
    print("  " + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in out.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel jobs of the random forests")
    parser.add_argument("--n-trees", type=int, default=1000, help="trees per forest (paper: 1,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-rf", action="store_true", help="skip the 2 x 3000 random-forest timing")
    main(parser.parse_args())
