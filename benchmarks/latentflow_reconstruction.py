"""How realistic latentflow's autoencoder alone is: training cells encoded, decoded and drawn from the NB.

The realism protocol (``realism_protocol.py``: 2,000 HVGs, balanced 80/20 split, 50 PCs of log LSN) scores, in
place of generated cells, training cells of the test set's types (drawn per type with replacement) passed
through the autoencoder: code -> decoder mean x library size -> negative binomial draw. The flow is trained for
one epoch only (it is not used), so a run costs the autoencoder's training. Each ``--draws`` repeats the cell
draw, the NB draw and the forest with another seed (the spread of the score on small test sets). Example::

    python benchmarks/latentflow_reconstruction.py --dataset pancreas_endocrinogenesis_veloviz \\
        --set code_noise=0 --set dispersion_learning_rate=1e-3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realism_protocol import DATASETS, commit, machine, parse_sets, prepared_dataset, score


def reconstruction_cells(model, train, labels, rng):
    """Training cells with the types and counts of ``labels``, through the autoencoder and the NB."""
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    types, counts = np.unique(labels, return_counts=True)
    cluster = train.obs["cluster"].astype(str).to_numpy()
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(cluster == t), size=k, replace=True) for t, k in zip(types, counts, strict=True)]
    )
    X = model.decode_counts(model._codes(train.X[rows], model._device), rng).astype(np.float32)
    return ad.AnnData(sp.csr_matrix(X), var=train.var.copy())


def main(argv=None) -> None:
    import numpy as np
    import torch

    from scsynth_core.metrics.representation import fit_protocol_representation
    from scsynth_core.models import get_model_class

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--preset", default="workstation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--out", help="JSON results file (default: print)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    adata = prepared_dataset(args.dataset)
    train = adata[adata.obs["split"] == "train"].copy()
    test = adata[adata.obs["split"] == "test"].copy()
    representation = fit_protocol_representation(adata, n_components=50, seed=0)
    overrides = parse_sets(args.set)
    model = get_model_class("latentflow")(args.preset, **(overrides | {"epochs": 1, "monitor_every": 0}))
    start = time.perf_counter()
    model.fit(train, label_key="cluster", seed=0, progress=False)
    theta = model._decoder.log_theta.exp().detach().numpy()
    labels = test.obs["cluster"].astype(str).to_numpy()
    aucs = []
    for draw in range(args.draws):
        cells = reconstruction_cells(model, train, labels, np.random.default_rng(draw))
        aucs.append(score(test, cells, representation, trees=args.trees, seed=draw, threads=1)["rf_auc_mean"])
    result = {
        "dataset": args.dataset,
        "preset": args.preset,
        "overrides": overrides,
        "autoencoder_seconds": round(time.perf_counter() - start, 1),
        "dispersion_quantiles_5_50_95": np.quantile(theta, [0.05, 0.5, 0.95]).round(2).tolist(),
        "reconstruction_rf_auc": [round(float(a), 3) for a in aucs],
        "commit": commit(),
        "machine": machine(),
    }
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
