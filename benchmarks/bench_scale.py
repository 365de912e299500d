"""Time and peak memory of every stage of the large-data path (not a test; docs/scale.md has the results).

Builds an ``--n-cells`` x 20,000-gene count matrix by tiling real PBMC 3k cells (the 20,000 most often detected
genes) with Poisson resampling of their counts, written chunk by chunk as a CSR h5ad, then runs, each stage in
its own process: prepare (streamed ``marouf`` recipe, ``scsynth_core.data.prepare_backed``) -> split (balanced,
10 % test; reads obs only) -> train (scGAN, workstation preset, ``--steps`` steps, minibatches read from disk via
``fit`` on cells read from disk) -> generate (``--generate`` cells, streamed) -> evaluate (the realism RF and MMD on
3,000 subsampled real test cells vs 3,000 generated, PCA fitted on 3,000 subsampled training cells).

Each stage's wall time and peak resident memory (its own ``getrusage`` maximum) go to ``--results`` (JSON,
merged by size). The driver polls each stage's resident memory and kills it above ``--max-rss-gb`` (the machine
is shared). Usage: ``nice python benchmarks/bench_scale.py --n-cells 100000 [--steps 200] [--work-dir /tmp/scale]``;
``--stages prepare,split,...`` resumes a stopped run from the files in the work directory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PBMC3K = REPO.parent / "shared" / "data" / "pbmc3k" / "pbmc3k.h5ad"
N_GENES = 20_000
STAGES = ("build", "prepare", "split", "train", "generate", "evaluate")


def _build(work: Path, n_cells: int, seed: int) -> dict:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from scsynth_core.atomic import atomic_path
    from scsynth_core.data.h5ad_stream import H5adStreamWriter

    source = ad.read_h5ad(PBMC3K)
    X = sp.csr_matrix(source.X)
    detected = np.bincount(X.indices, minlength=X.shape[1])
    genes = np.sort(np.argsort(-detected, kind="stable")[:N_GENES])
    X = sp.csr_matrix(X[:, genes])
    types = pd.Categorical(source.obs["seurat_annotation"].astype(str))
    rng = np.random.default_rng(seed)
    var = pd.DataFrame(index=source.var_names[genes].astype(str))
    with atomic_path(work / "counts.h5ad") as tmp, H5adStreamWriter(tmp, var) as out:
        for start in range(0, n_cells, 10_000):
            n = min(10_000, n_cells - start)
            picks = rng.integers(0, X.shape[0], n)
            block = sp.csr_matrix(X[picks], dtype=np.float32)
            block.data = rng.poisson(block.data).astype(np.float32)
            block.eliminate_zeros()
            obs = pd.DataFrame({"source_type": types[picks]}, index=[f"cell{start + i}" for i in range(n)])
            out.append(block, obs)
        out.finish({})
    return {"nnz_per_cell": float(X.nnz / X.shape[0]), "file_gb": round((work / "counts.h5ad").stat().st_size / 1e9, 3)}


def _prepare(work: Path, sketch: int) -> dict:
    from scsynth_core.data.prepare_backed import prepare_backed

    record = prepare_backed(work / "counts.h5ad", work / "prepared.h5ad", recipe="marouf", seed=0, sketch_cells=sketch)[
        "derived"
    ]
    return {k: record[k] for k in ("n_cells_out", "n_genes_out", "n_clusters", "sketch_cells")}


def _split(work: Path) -> dict:
    from scsynth_core.steps import split_dataset

    split_dataset(input=work / "prepared.h5ad", output=work / "split.tsv", seed=0, test_fraction=0.1)
    return {}


def _train(work: Path, steps: int) -> dict:
    from scsynth_core.data.backed import open_cells
    from scsynth_core.models import get_model_class

    model = get_model_class("scgan")("workstation")
    with open_cells(work / "prepared.h5ad", work / "split.tsv", subset="train") as cells:
        model.fit(cells, seed=0, max_steps=steps, progress=False, device="cpu")
    model.save(work / "model.pt")
    return {
        "steps": model.training_summary["steps"],
        "train_cells": model.n_train,
        "train_seconds": model.training_summary["seconds"],
    }


def _generate(work: Path, n: int) -> dict:
    from scsynth_core.models.base import GenerativeModel

    seconds = GenerativeModel.load(work / "model.pt", device="cpu").sample_to_h5ad(work / "generated.h5ad", n, seed=0)
    return {"generated_cells": n, "generation_seconds": round(seconds, 2)}


def _evaluate(work: Path, n: int) -> dict:
    import numpy as np

    from scsynth_core.data.backed import open_cells, read_rows, subsample_rows
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.preprocess import expression_scale
    from scsynth_core.metrics.realism import realism_metrics
    from scsynth_core.metrics.representation import fit_representation

    with open_cells(work / "prepared.h5ad", work / "split.tsv") as cells:
        split = cells.obs["split"].to_numpy()
    prepared = work / "prepared.h5ad"
    fit = read_rows(prepared, subsample_rows(np.flatnonzero(split == "train"), n, seed=1))
    test = read_rows(prepared, subsample_rows(np.flatnonzero(split == "test"), n, seed=2))
    generated = expression_scale(read_h5ad(work / "generated.h5ad"))
    metrics = realism_metrics(test, generated, representation=fit_representation(fit, seed=0), seed=0)
    return {k: metrics[k] for k in ("rf_auc_mean", "rf_auc_sd", "mmd", "n_real", "n_generated")}


def _run_stage(args: argparse.Namespace) -> None:
    """Child process: one stage, then its measurements as the last stdout line."""
    work = Path(args.work_dir)
    t0 = time.perf_counter()
    if args.stage == "build":
        info = _build(work, args.n_cells, args.seed)
    elif args.stage == "prepare":
        info = _prepare(work, args.sketch_cells)
    elif args.stage == "split":
        info = _split(work)
    elif args.stage == "train":
        info = _train(work, args.steps)
    elif args.stage == "generate":
        info = _generate(work, args.generate)
    else:
        info = _evaluate(work, args.eval_cells)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "peak_rss_gb": round(peak, 3), **info}))


def _rss_gb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            line = next(x for x in handle if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 2**20
    except (OSError, StopIteration):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-cells", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--sketch-cells", type=int, default=20_000)
    parser.add_argument("--generate", type=int, default=3_000)
    parser.add_argument("--eval-cells", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="/tmp/scsynth_scale")
    parser.add_argument("--max-rss-gb", type=float, default=12.0)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "scale.json"))
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        _run_stage(args)
        return
    work = Path(args.work_dir) / f"n{args.n_cells}"
    work.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    rows = {}
    for stage in args.stages.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--stage",
            stage,
            "--work-dir",
            str(work),
            "--n-cells",
            str(args.n_cells),
            "--steps",
            str(args.steps),
            "--sketch-cells",
            str(args.sketch_cells),
            "--generate",
            str(args.generate),
            "--eval-cells",
            str(args.eval_cells),
            "--seed",
            str(args.seed),
        ]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        watched = 0.0
        while child.poll() is None:
            watched = max(watched, _rss_gb(child.pid))
            if watched > args.max_rss_gb:
                child.kill()
                raise SystemExit(f"stage {stage}: resident memory passed {args.max_rss_gb} GB; killed")
            time.sleep(0.5)
        out = child.stdout.read().strip().splitlines()
        if child.returncode != 0 or not out:
            raise SystemExit(f"stage {stage} failed (exit {child.returncode})")
        # Per stage, so that stages resumed in a later run (--stages) keep their own time and load.
        rows[stage] = json.loads(out[-1]) | {
            "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_1min": round(os.getloadavg()[0], 1),
        }
        print(stage, rows[stage], flush=True)
        _record(Path(args.results), args, rows)  # after every stage, so a stopped run keeps what it measured


def _record(results_path: Path, args: argparse.Namespace, rows: dict) -> None:
    from scsynth_core.atomic import write_json

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    # A run resumed with --stages keeps the stages an earlier run of the same size and settings measured.
    earlier = results.get(str(args.n_cells), {})
    same = all(earlier.get(k) == getattr(args, k) for k in ("steps", "sketch_cells"))
    rows = {k: v for k, v in earlier.get("stages", {}).items() if same and k not in rows} | rows
    results[str(args.n_cells)] = {
        "date": datetime.date.today().isoformat(),
        "commit": commit.strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, shared",
        "load_average_1min": round(os.getloadavg()[0], 1),
        "n_cells": args.n_cells,
        "n_genes": N_GENES,
        "steps": args.steps,
        "sketch_cells": args.sketch_cells,
        "stages": rows,
    }
    write_json(results_path, results)


if __name__ == "__main__":
    main()
