"""Peak memory and time of streamed generation: 10 M cells x 2,000 genes written to one h5ad (not a test).

Fits a baseline on synthetic counts (2,000 cells of 10 types x ``--genes`` genes, ``--density`` of the entries non-zero) and
generates ``--n-cells`` cells with ``GenerativeModel.sample_to_h5ad``, the path ``scsynth generate`` and the
workflow use. Reports the peak resident memory of the process (``resource.getrusage``), before and after
generation, the time and the file's size, and writes them as JSON (``--results``). The in-memory path held
every cell (about 6 GB at 1 M cells of the noise baseline); the streamed one should stay under 2 GB.

``upsample`` keeps the training cells' sparsity; ``noise`` adds Poisson noise to every gene, so its cells are
dense (2,000 non-zeros each: 10 M cells would need about 160 GB of disk before compression). ``michigan`` (the
``demo`` preset, its beta-TCVAE trained 1 epoch, the GAN 20 steps: memory, not realism) writes its codes to
``obsm["X_codes"]`` chunk by chunk too.

Usage: ``nice python benchmarks/generate_streaming.py [--model upsample] [--n-cells 10000000] [--genes 2000]
[--density 0.05] [--batch-size 10000] [--out-dir /tmp] [--results benchmarks/results/generate_streaming.json]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _training_cells(n_genes: int, density: float):
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = sp.random(2_000, n_genes, density=density, format="csr", dtype=np.float32, rng=rng)
    X.data[:] = 1 + rng.poisson(2.0, X.nnz)  # counts >= 1 where non-zero
    obs = pd.DataFrame({"cluster": [f"type{i % 10}" for i in range(2_000)]}, index=[f"cell{i}" for i in range(2_000)])
    return ad.AnnData(X, obs=obs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["upsample", "noise", "michigan"], default="upsample")
    parser.add_argument("--n-cells", type=int, default=10_000_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--out-dir", default=tempfile.gettempdir(), help="where the h5ad goes (deleted afterwards)")
    parser.add_argument("--results", help="JSON file for the measurements")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from scsynth_core.models import get_model_class

    quick = {"michigan": ({"vae": {"epochs": 1}}, 20)}  # overrides and training steps: a model to generate from
    overrides, steps = quick.get(args.model, ({}, None))
    model = get_model_class(args.model)("demo" if overrides else "paper", **overrides)
    # upsample is fitted with labels, so obs gets a cluster for each generated cell too (10 types).
    label_key = "cluster" if model.conditional else None
    model.fit(_training_cells(args.genes, args.density), label_key=label_key, seed=0, progress=False, max_steps=steps)
    rss_before = _peak_rss_mb()
    # The commit is read now: others may commit while this runs for minutes.
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, check=False, capture_output=True, text=True).stdout.strip()
    out = Path(args.out_dir) / f"generate_streaming_{os.getpid()}.h5ad"
    t0 = time.perf_counter()
    try:
        generation = model.sample_to_h5ad(out, args.n_cells, seed=0, batch_size=args.batch_size, progress=True)
        wall = time.perf_counter() - t0
        size = out.stat().st_size
    finally:
        out.unlink(missing_ok=True)
    result = {
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "model": args.model,
        "n_cells": args.n_cells,
        "n_genes": args.genes,
        "training_density": args.density,
        "labelled": label_key is not None,
        "batch_size": args.batch_size,
        "peak_rss_mb_before_generation": round(rss_before, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "seconds_total": round(wall, 1),
        "seconds_generating": round(generation, 1),
        "file_gb": round(size / 1e9, 2),
        "cells_per_second": round(args.n_cells / wall),
    }
    print(json.dumps(result, indent=2))
    if args.results:
        from scsynth_core.atomic import write_json

        write_json(args.results, result)


if __name__ == "__main__":
    main()
