"""Training and generation speed of scDBM on PBMC 4k (not a test).

Data: ``../shared/data/pbmc4k_scdcc`` (4,271 cells x 2,000 genes, UMI counts), a random 70/30 split as the
paper's scDBM runs (``splitdata(data, 0.3)``); a synthetic NB set of the same shape when the file is absent.

Parts (``--part``):
  ``train``: the ``--preset`` (default ``demo``) on the training cells: seconds per epoch of each phase
      (median), total time, the exact held-out negative log-likelihood per cell of the trained DBM next to an
      independent-gene NB (per-gene mean and theta), and the model saved to ``--model``.
  ``generate``: loads ``--model`` in a fresh process and generates ``--cells`` (default 10,000) cells with the
      default sampler (collapsed Gibbs, 50 steps) and, for comparison, the paper's blocked Gibbs and the exact
      sampler: wall time, cells/s, library size and zero fraction against the held-out cells, peak RSS.
  ``all`` (default): both, the generation in a subprocess so that its peak RSS is its own.

Usage: ``python benchmarks/bench_scdbm.py [--part all] [--threads 2] [--preset demo] [--cells 10000]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbmc4k_scdcc" / "pbmc4k_scdcc.h5ad"


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def load_data(path: Path = DATA):
    """(train, test, source): PBMC 4k split 70/30 at random (seed 0), or a synthetic stand-in."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    if path.exists():
        adata, source = ad.read_h5ad(path), str(path)
    else:  # 4,271 x 2,000 NB counts from 8 clusters, about as sparse as PBMC 4k
        rng = np.random.default_rng(0)
        means = rng.lognormal(-2.5, 1.5, (8, 2000))
        labels = rng.integers(0, 8, 4271)
        counts = rng.poisson(rng.gamma(0.5, means[labels] / 0.5))
        adata = ad.AnnData(
            sp.csr_matrix(counts.astype(np.float32)),
            obs=pd.DataFrame(index=[f"c{i}" for i in range(4271)]),
            var=pd.DataFrame(index=[f"g{j}" for j in range(2000)]),
        )
        source = "synthetic (PBMC 4k file absent)"
    order = np.random.default_rng(0).permutation(adata.n_obs)
    n_train = round(0.7 * adata.n_obs)
    return adata[order[:n_train]].copy(), adata[order[n_train:]].copy(), source


def independent_nb_nll(train, test) -> float:
    """Held-out NLL per cell of independent per-gene NBs (mean and theta fitted on the training cells)."""
    import torch

    from scsynth_core.models.scdbm import fit_nb_dispersion, nb_log_prob

    mean = np.maximum(np.asarray(train.X.mean(axis=0)).ravel(), 0.5 / train.n_obs)
    theta = fit_nb_dispersion(train.X, mean, lam=0.0)
    eta = torch.log(torch.as_tensor(mean / (mean + theta)))
    y = torch.as_tensor(test.X.toarray(), dtype=torch.float64)
    return float(-nb_log_prob(y, eta, torch.as_tensor(theta)).sum(1).mean())


def train_part(args: argparse.Namespace) -> dict:
    import torch

    from scsynth_core.models.scdbm import ScDBM

    torch.set_num_threads(args.threads)
    train, test, source = load_data()
    print(
        f"data: {source}: {train.n_obs:,} training / {test.n_obs:,} held-out cells x {train.n_vars:,} genes; "
        f"torch threads {torch.get_num_threads()}"
    )
    model = ScDBM(args.preset)
    start = time.perf_counter()
    history = model.fit(train, seed=0, device="cpu", progress=False)
    total = time.perf_counter() - start
    result = {"preset": args.preset, "n_train": train.n_obs, "n_genes": train.n_vars, "fit_s": round(total, 1)}
    for phase in ("nb_rbm", "bernoulli_rbm", "dbm"):
        seconds = [s for s, p in zip(history["epoch_s"], history["phase"]) if p == phase]
        if seconds:
            result[f"{phase}_epochs"] = len(seconds)
            result[f"{phase}_s_per_epoch"] = round(statistics.median(seconds), 3)
            result[f"{phase}_s_total"] = round(sum(seconds), 1)
    held_out = torch.as_tensor(test.X.toarray(), dtype=torch.float32)
    result["heldout_nll"] = round(-float(model.machine.log_likelihood(held_out).mean()), 2)
    result["independent_nb_nll"] = round(independent_nb_nll(train, test), 2)
    result["train_nll_first_last"] = [round(history["nll"][0], 2), round(history["nll"][-1], 2)]
    result["theta_median"] = round(history["theta_median"][-1], 3)
    model.save(args.model)
    print(json.dumps(result, indent=1))
    return result


def generate_part(args: argparse.Namespace) -> dict:
    import torch

    from scsynth_core.models import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    _, test, _ = load_data()
    real = test.X.toarray()
    model.sample(500, seed=1)  # warm-up
    result = {"cells": args.cells, "genes": len(model.var_names)}
    for label, options in (
        ("collapsed_gibbs", {"sampler": "gibbs", "gibbs_scheme": "collapsed"}),
        ("blocked_gibbs", {"sampler": "gibbs", "gibbs_scheme": "blocked"}),
        ("exact", {"sampler": "exact"}),
    ):
        model.params.update(options)
        start = time.perf_counter()
        cells = model.sample(args.cells, seed=0, batch_size=args.chunk)
        seconds = time.perf_counter() - start
        X = cells.X
        result[label] = {
            "seconds": round(seconds, 2),
            "cells_per_s": round(args.cells / seconds, 1),
            "median_library": float(np.median(np.asarray(X.sum(axis=1)).ravel())),
            "zero_fraction": round(1 - X.nnz / (X.shape[0] * X.shape[1]), 4),
        }
        print(label, result[label], flush=True)
    result["real_median_library"] = float(np.median(real.sum(1)))
    result["real_zero_fraction"] = round(float((real == 0).mean()), 4)
    result["peak_rss_gb"] = round(_peak_rss_gb(), 2)
    print(json.dumps(result, indent=1))
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "train", "generate"), default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--model", default="/tmp/bench_scdbm_model.pt")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    results = {}
    if args.part in ("all", "train"):
        results["train"] = train_part(args)
    if args.part == "generate":
        results["generate"] = generate_part(args)
    elif args.part == "all":
        cmd = [
            sys.executable,
            __file__,
            "--part",
            "generate",
            "--model",
            args.model,
            "--threads",
            str(args.threads),
            "--cells",
            str(args.cells),
            "--chunk",
            str(args.chunk),
            "--json",
            args.model + ".gen.json",
        ]
        subprocess.run(cmd, check=True)
        results["generate"] = json.loads(Path(args.model + ".gen.json").read_text())["generate"]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
