"""Where latentflow's pilot count difference comes from: the flow, or the autoencoder it decodes through.

One pilot replicate of ``issue17_aug_pilot.py pilot`` (the same pilot draw, reference and scoring:
``pilot.draw_pilot``, ``metrics.pilot.evaluate_pilot_set``), latentflow trained once on it, then three synthetic
sets of the original data's size scored against the reference:

- ``sample``: latentflow's own cells (the pilot experiment's result);
- ``ode<N>``: the same model sampled with ``--ode-steps`` integration steps (is the integrator the error?);
- ``reconstruction``: pilot cells drawn uniformly, encoded, decoded and drawn from the NB (what scVI posterior
  does with its decoder): the count difference a perfect flow over these codes would reach.

Each line of output is one JSON record with the summed count difference (Table 1 of Treppner 2021) and the
synthetic/original cell count of every reference cluster. Example::

    python benchmarks/latentflow_pilot_diagnosis.py --size 768 --seed 0 --set code_clusters=40
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from issue17_aug_pilot import WORK
from realism_protocol import commit, parse_sets


def reconstructions(model, train, n: int, rng):
    """``n`` pilot cells drawn uniformly, through the autoencoder and the negative binomial."""
    import numpy as np

    X = train.X.tocsr()
    codes = model._codes(X, model._device)  # latent codes + log library size
    rows = rng.integers(0, X.shape[0], n)
    return model.decode_counts(codes[rows], rng).astype(np.float32)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="pbmc4k_scdcc")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="workstation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="hyperparameter override")
    parser.add_argument("--ode-steps", type=int, default=200)
    parser.add_argument("--work", type=Path, default=WORK, help="issue17_aug_pilot.py's work folder (reference)")
    args = parser.parse_args(argv)

    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    import torch

    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.experiments.pilot import draw_pilot, training_cells
    from scsynth_core.metrics.pilot import GROUND_TRUTH, ReferenceSpace, evaluate_pilot_set
    from scsynth_core.models import get_model_class

    torch.set_num_threads(1)
    sets = parse_sets(args.set)
    original = read_h5ad(args.work / args.dataset / "prepared.h5ad")
    reference = read_h5ad(args.work / args.dataset / "pilot" / "reference.h5ad")
    space = ReferenceSpace(reference)
    real = reference.obs[GROUND_TRUTH].astype(str).value_counts()
    pilot = draw_pilot(original, args.size, seed=args.seed)
    train = training_cells(pilot, "latentflow", holdout=0.3, seed=args.seed, size=args.size)
    model = get_model_class("latentflow")(args.preset, **sets)
    t0 = time.perf_counter()
    model.fit(train, label_key=None, seed=args.seed, device="cpu", progress=False)
    train_seconds = round(time.perf_counter() - t0, 1)

    def report(X, tag: str) -> None:
        synthetic = ad.AnnData(sp.csr_matrix(X), var=original.var[[]].copy())
        result = evaluate_pilot_set(reference, synthetic, space=space, resolution=0.4, n_neighbors=20, seed=args.seed)
        made = pd.Series(result["embedded"].obs["transferred"].astype(str)).value_counts()
        clusters = sorted(real.index, key=lambda c: (len(c), c))
        record = {
            "tag": tag,
            "size": args.size,
            "seed": args.seed,
            "sets": sets,
            "count_difference": result["count_difference"],
            "ari": result["ari"],
            "per_cluster": {c: f"{int(made.get(c, 0))}/{int(real[c])}" for c in clusters},
            "train_seconds": train_seconds,
            "commit": commit(),
        }
        print(json.dumps(record), flush=True)

    report(model.sample(original.n_obs, seed=args.seed, progress=False).X, "sample")
    steps = model.params["ode_steps"]
    model.params["ode_steps"] = args.ode_steps
    report(model.sample(original.n_obs, seed=args.seed, progress=False).X, f"ode{args.ode_steps}")
    model.params["ode_steps"] = steps
    report(reconstructions(model, train, original.n_obs, np.random.default_rng(args.seed)), "reconstruction")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
