"""Training and sampling speed of ``latentflow`` against scVI and scGAN on the same data, in one run (ratios).

    python benchmarks/bench_latentflow.py --dataset pbmc3k --threads 2 \\
        --out benchmarks/results/latentflow_speed.json

Each model is trained with its workstation preset for a fixed wall-clock budget (``--minutes``, so every model
gets the same compute) and then generates ``--cells`` cells; reported per model: optimisation steps done
(latentflow: autoencoder + flow steps; scVI: minibatch steps), steps per second, seconds to generate and cells per
second; and the ratios of latentflow's sampling speed to the others'. The data are the realism protocol's
(``realism_protocol.prepared_dataset``: 2,000 HVGs, training split).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realism_protocol import DATASETS, commit, prepared_dataset

MODELS = ("latentflow", "scvi_posterior", "scgan")


def measure(name: str, train, *, minutes: float, cells: int) -> dict:
    from scsynth_core.models import get_model_class

    klass = get_model_class(name)
    overrides = {"max_minutes": minutes} if "max_minutes" in klass.presets["workstation"] else {}
    model = klass("workstation", **overrides)
    label_key = "cluster" if klass.conditional else None
    start = time.perf_counter()
    history = model.fit(train, label_key=label_key, seed=0, device="cpu", progress=False)
    train_s = time.perf_counter() - start
    last: dict = {}  # the last step of each training phase (autoencoder and flow, or the single loop)
    for step, phase in zip(history["step"], history.get("phase") or [None] * len(history["step"])):
        last[phase] = max(last.get(phase, 0), int(step))
    steps = sum(last.values())
    start = time.perf_counter()
    model.sample(cells, seed=0)
    sample_s = time.perf_counter() - start
    return {
        "train_seconds": round(train_s, 2),
        "steps": steps,
        "steps_per_second": round(steps / train_s, 2),
        "sample_seconds": round(sample_s, 2),
        "cells_per_second": round(cells / sample_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="pbmc3k", choices=sorted(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per model")
    parser.add_argument("--cells", type=int, default=10_000, help="cells generated per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    adata = prepared_dataset(args.dataset)
    train = adata[adata.obs["split"] == "train"].copy()
    results = {name: measure(name, train, minutes=args.minutes, cells=args.cells) for name in args.models}
    if "latentflow" in results:
        own = results["latentflow"]["cells_per_second"]
        for row in results.values():
            row["latentflow_sampling_speed_ratio"] = round(own / row["cells_per_second"], 2)
    report = {
        "dataset": args.dataset,
        "n_train": int(train.n_obs),
        "n_genes": int(train.n_vars),
        "minutes_per_model": args.minutes,
        "cells": args.cells,
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit(),
        "machine": {"platform": platform.platform(), "threads": args.threads, "torch": torch.__version__},
        "models": results,
    }
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
