"""Does latentflow's autoencoder over-fit with more steps? Held-out NB likelihood against autoencoder steps.

For each data set of the realism protocol (2,000 HVGs, the protocol's 80/20 split) and each step count, the
workstation autoencoder is trained for exactly that many steps (``ae_epochs: 1``, ``ae_min_steps: steps``; the
flow gets one step and is not used; no realism monitor, so every training cell trains), then scored by the
negative binomial log-likelihood per cell of the training cells and of the held-out test cells, each decoded
from its own code and library size. A held-out likelihood that falls while the training one rises is
over-fitting. One JSON record per line. Example::

    OMP_NUM_THREADS=1 python benchmarks/latentflow_ae_steps.py --datasets pancreas_endocrinogenesis_veloviz pbmc3k
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realism_protocol import commit, prepared_dataset


def log_likelihood_per_cell(model, adata) -> float:
    """Mean over cells of the NB log-likelihood of their counts under the decoder, at each cell's own code."""
    import numpy as np
    import torch

    from scsynth_core.models.flow import nb_log_likelihood

    X = adata.X.tocsr()
    mean = torch.from_numpy(model.decode_means(model._codes(X, model._device)).astype(np.float32))
    counts = torch.from_numpy(X.toarray().astype(np.float32))
    with torch.no_grad():
        return float(nb_log_likelihood(counts, mean, model._decoder.log_theta.exp()).sum(dim=1).mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 1000, 2000, 3000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from scsynth_core.models import get_model_class

    torch.set_num_threads(1)
    for dataset in args.datasets:
        adata = prepared_dataset(dataset)
        train = adata[adata.obs["split"] == "train"].copy()
        test = adata[adata.obs["split"] == "test"].copy()
        for steps in args.steps:
            model = get_model_class("latentflow")("workstation", ae_epochs=1, ae_min_steps=steps, monitor_every=0)
            t0 = time.perf_counter()
            model.fit(train, label_key="cluster", seed=args.seed, device="cpu", max_steps=1, progress=False)
            record = {
                "dataset": dataset,
                "training_cells": train.n_obs,
                "autoencoder_steps": steps,
                "train_loglik_per_cell": round(log_likelihood_per_cell(model, train), 2),
                "test_loglik_per_cell": round(log_likelihood_per_cell(model, test), 2),
                "fit_seconds": round(time.perf_counter() - t0, 1),
                "commit": commit(),
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
