"""Paper-length training on a GPU: scGAN, cscGAN, ACTIVA and MichiGAN at the paper's settings on one real dataset.

Each model trains with its ``paper`` preset for a wall-clock budget (``--minutes`` each; the paper's step counts
do not fit one 10-minute call, so this is "as many paper steps as fit"), logging the realism monitor; the kept
model is scored with the project's realism protocol (RF 1,000 trees, 5 folds, 50 shared PCs). One JSON file
holds, per model: device, steps, steps per second, the monitor curve, the final RF AUC and MMD.

On the GPU machine (no internet there; the dataset is prepared here and carried):

    python benchmarks/realism_protocol.py --dataset pbmc4k_scdcc --model real_control --trees 10   # caches data
    # device run, carry benchmarks/out/data (and wheels of anndata and its dependencies where the machine lacks them):
    python benchmarks/gpu_realism.py --minutes 2 --out benchmarks/results/gpu_realism.json

Tested on the CPU with ``--minutes 0.05 --trees 50``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from realism_protocol import (
    DATASETS,
    commit,
    generate_like_test,
    machine,
    prepared_dataset,
    score,
)

MODELS = ("scgan", "cscgan", "activa", "michigan")


def run_model(name: str, train, test, representation, *, minutes: float, trees: int, device: str) -> dict:
    from scsynth_core.models import get_model_class

    klass = get_model_class(name)
    overrides = {"max_minutes": minutes}
    if name == "michigan":  # both phases share the budget: the beta-TCVAE gets a fifth of it
        overrides["vae"] = {"max_minutes": minutes / 5}
    model = klass("paper", **overrides)
    label_key = "cluster" if (klass.conditional or klass.labels_optional) else None
    t0 = time.perf_counter()
    history = model.fit(train, label_key=label_key, seed=0, device=device, progress=False)
    seconds = time.perf_counter() - t0
    steps = model.training_summary.get("steps") or model.training_summary.get("epochs")
    curve = [
        {"step": s, "time_s": t, "monitor_auc": a, "monitor_mmd": m}
        for s, t, a, m in zip(
            history["step"], history["time_s"], history.get("monitor_auc", []), history.get("monitor_mmd", [])
        )
        if a is not None
    ]
    generated = generate_like_test(model, test, seed=0)
    result = {
        "model": name,
        "preset": "paper",
        "train_seconds": round(seconds, 1),
        "steps": steps,
        "steps_per_second": round(steps / seconds, 2) if steps else None,
        "training": model.training_summary,
        "monitor_curve": curve,
    }
    return result | score(test, generated, representation, trees=trees, seed=0, threads=4)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="pbmc4k_scdcc", choices=sorted(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per model")
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_realism.json"))
    args = parser.parse_args(argv)

    from scsynth_core.metrics.representation import fit_protocol_representation

    adata = prepared_dataset(args.dataset)
    train = adata[adata.obs["split"] == "train"].copy()
    test = adata[adata.obs["split"] == "test"].copy()
    representation = fit_protocol_representation(adata, n_components=50, seed=0)
    out = {
        "dataset": args.dataset,
        "n_train": int(train.n_obs),
        "n_test": int(test.n_obs),
        "n_genes": adata.n_vars,
        "minutes_per_model": args.minutes,
        "commit": commit(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "runs": [],
    }
    for name in args.models:
        result = run_model(
            name, train, test, representation, minutes=args.minutes, trees=args.trees, device=args.device
        )
        out["runs"].append(result)
        print(
            json.dumps({k: result[k] for k in ("model", "steps", "steps_per_second", "rf_auc_mean", "mmd")}), flush=True
        )
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1, default=str) + "\n")  # kept after every model


if __name__ == "__main__":
    main()
