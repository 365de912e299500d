"""Does the training monitor rank checkpoints as the final random forest does?

Trains one model with the realism monitor on; at every monitor evaluation the same weights also generate a
test-sized set, which is scored afterwards with the realism protocol's forest (real test cells, shared PCA).
The table pairs each checkpoint's monitor values (kNN AUC and MMD against validation cells held out of the
training split) with its RF AUC against the test split, and the summary gives their Spearman correlations and
whether the monitor's best checkpoint is the forest's best.

    python benchmarks/monitor_vs_rf.py --dataset pbmc3k --model scgan --preset workstation --max-steps 2000 \\
        --out benchmarks/results/monitor_vs_rf_pbmc3k_scgan.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _generate(task, n: int, seed: int):
    """``n`` cells from a training task. MichiGAN's and cscGAN's tasks give each cell one validation cell's code or
    type, so they make at most that many per call (more fails in torch): the rest come from further calls with the
    next seeds, i.e. the same held-out codes / types with fresh noise (the final models resample codes / types)."""
    import scipy.sparse as sp

    if getattr(task, "code_mu", None) is not None:  # MichiGAN: the validation cells' posterior means
        cap = len(task.monitor_rows)
    elif getattr(task, "monitor_codes", None) is not None:  # cscGAN: the validation cells' types
        cap = len(task.monitor_codes)
    else:
        cap = n
    parts = [task.generate(min(cap, n - start), seed + i) for i, start in enumerate(range(0, n, cap))]
    return parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")


def checkpoint_realism(
    model,
    train,
    test,
    representation,
    *,
    trees: int = 300,
    seed: int = 0,
    label_key: str | None = None,
    max_steps: int | None = None,
) -> pd.DataFrame:
    """Fit ``model`` on ``train``; one row per monitor evaluation: step, monitor columns, RF AUC and MMD vs ``test``."""
    from scsynth_core.data.preprocess import expression_scale
    from scsynth_core.metrics.realism import realism_metrics
    from scsynth_core.models import training

    cells: dict[int, object] = {}
    original = training.TrainingLoop._evaluate

    def evaluate_and_keep(self, task, averages):
        scores = original(self, task, averages)
        with self._generating_weights(task, averages):
            cells[len(cells)] = (_generate(task, test.n_obs, seed + 1), task.representation)
        task.train_mode()
        return scores

    training.TrainingLoop._evaluate = evaluate_and_keep
    try:
        history = pd.DataFrame(
            model.fit(train, label_key=label_key, seed=seed, device="cpu", progress=False, max_steps=max_steps)
        )
    finally:
        training.TrainingLoop._evaluate = original
    monitored = history[history["monitor_auc"].notna()].reset_index(drop=True)
    rows = []
    for i, (X, representation_name) in cells.items():
        import anndata as ad

        generated = ad.AnnData(
            X=X, var=pd.DataFrame(index=test.var_names), uns={"scsynth": {"representation": representation_name}}
        )
        metrics = realism_metrics(
            test, expression_scale(generated), representation=representation, n_trees=trees, seed=seed, n_jobs=1
        )
        rows.append(
            {
                "step": int(monitored["step"][i]),
                "minutes": monitored["time_s"][i] / 60,
                "monitor_auc": monitored["monitor_auc"][i],
                "monitor_mmd": monitored["monitor_mmd"][i],
                "rf_auc": metrics["rf_auc_mean"],
                "rf_mmd": metrics["mmd"],
            }
        )
    return pd.DataFrame(rows)


def agreement(table: pd.DataFrame) -> dict:
    """Spearman correlations of the monitor columns with the RF AUC, and the best checkpoint by each."""
    from scipy.stats import spearmanr

    from scsynth_core.models.monitors import selection_key

    keys = [selection_key(r) for r in table[["monitor_auc", "monitor_mmd"]].to_dict("records")]
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    return {
        "spearman_monitor_auc_rf_auc": float(spearmanr(table["monitor_auc"], table["rf_auc"]).statistic),
        "spearman_monitor_mmd_rf_auc": float(spearmanr(table["monitor_mmd"], table["rf_auc"]).statistic),
        "spearman_monitor_mmd_rf_mmd": float(spearmanr(table["monitor_mmd"], table["rf_mmd"]).statistic),
        "best_step_by_monitor": int(table["step"][order[0]]),
        "best_step_by_rf_auc": int(table["step"][int(np.argmin(table["rf_auc"]))]),
        "rf_auc_of_monitor_best": float(table["rf_auc"][order[0]]),
        "rf_auc_best": float(table["rf_auc"].min()),
    }


def main(argv=None) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from realism_protocol import commit, machine, parse_sets, prepared_dataset

    from scsynth_core.metrics.representation import fit_protocol_representation
    from scsynth_core.models import get_model_class

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", default="scgan")
    parser.add_argument("--preset", default="workstation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    adata = prepared_dataset(args.dataset)
    train = adata[adata.obs["split"] == "train"].copy()
    test = adata[adata.obs["split"] == "test"].copy()
    klass = get_model_class(args.model)
    model = klass(args.preset, **parse_sets(args.set))
    label_key = "cluster" if (klass.conditional or klass.labels_optional) else None
    table = checkpoint_realism(
        model,
        train,
        test,
        fit_protocol_representation(adata, n_components=50),
        trees=args.trees,
        label_key=label_key,
        max_steps=args.max_steps,
    )
    result = {
        "dataset": args.dataset,
        "model": args.model,
        "preset": args.preset,
        "params": parse_sets(args.set),
        "trees": args.trees,
        "commit": commit(),
        "machine": machine(),
        **agreement(table),
        "checkpoints": table.to_dict("records"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(table.to_string())
    print({k: v for k, v in result.items() if k.startswith(("spearman", "best", "rf_auc"))})


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
