"""Training and generation speed of ACTIVA on PBMC 3k, against the reference implementation (not a test).

Data as the reference measurement in ``../shared/reference/MEASURED.md``: the 2,638 labelled PBMC 3k cells, genes
detected in >= 3 of them (13,656), a balanced 10% test split by the Seurat cell types (2,377 training cells).

Parts (``--part``):
  ``train``: ACTIVA ``paper`` preset (networks, batch 128, losses) for ``--vae-epochs`` warm-up epochs and
      ``--intro-epochs`` introspective epochs after the ACTINN pre-training (``--classifier-epochs``). Reports
      seconds per epoch of each phase (median) and training cells/s, next to the reference's 9.6 s (VAE warm-up)
      and 21.4 s (introspective) per epoch and 0.42 s per ACTINN epoch on this machine kind. The model is saved
      to ``--model`` for the generation part. ``--realism`` also reports the RF AUC (100 trees, 5 folds, 50 PCs
      of log(LSN + 1) fitted on the real test cells) of generated vs held-out cells.
  ``generate``: loads ``--model`` in a fresh process and generates ``--cells`` (default 100,000) cells through
      ``ACTIVA.sample`` (chunks of ``--chunk``): wall time, cells/s, non-zero fraction and peak RSS (reference:
      2,275 cells/s and 7.1 GB for 100k cells x 13,656 genes). ``--labels`` also times type-specific generation
      of ``--cells`` / 10 cells of the most frequent type.
  ``all`` (default): both, the generation in a subprocess so that its peak RSS is its own.

Usage: ``python benchmarks/bench_activa.py [--part all] [--threads 2] [--vae-epochs 2] [--intro-epochs 2]
[--cells 100000] [--realism]``
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

REFERENCE = {
    "vae_s_per_epoch": 9.6,
    "intro_s_per_epoch": 21.4,
    "actinn_s_per_epoch": 0.42,
    "gen_cells_per_s": 2275.0,
    "gen_peak_rss_gb": 7.1,
}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pbmc3k" / "pbmc3k.h5ad"


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def load_pbmc3k(path: Path = DATA):
    """Labelled PBMC 3k cells, genes in >= 3 cells, balanced 10% test split (train, test)."""
    import anndata as ad

    from scsynth_core.data.split import balanced_split

    adata = ad.read_h5ad(path)
    adata = adata[adata.obs["seurat_annotation"].notna()].copy()
    keep = np.asarray((adata.X > 0).sum(axis=0)).ravel() >= 3
    adata = adata[:, keep].copy()
    adata.obs["cluster"] = adata.obs["seurat_annotation"].astype(str)
    split = balanced_split(adata.obs["cluster"], test_fraction=0.1, seed=0)
    return adata[split == "train"].copy(), adata[split == "test"].copy()


def train_part(args: argparse.Namespace) -> dict:
    import torch

    from scsynth_core.models.activa import ACTIVA

    torch.set_num_threads(args.threads)
    train, test = load_pbmc3k()
    print(
        f"data: {train.n_obs:,} training x {train.n_vars:,} genes, {test.n_obs} test cells; "
        f"torch threads {torch.get_num_threads()}"
    )
    model = ACTIVA(
        "paper",
        epochs=args.vae_epochs + args.intro_epochs,
        warmup_epochs=args.vae_epochs,
        classifier_epochs=args.classifier_epochs,
        output_lsn=args.output_lsn,
        update=args.update,
    )
    t0 = time.perf_counter()
    history = model.fit(train, label_key="cluster", seed=0, device="cpu", progress=True)
    total = time.perf_counter() - t0
    phases = history["phase"]
    cls_time = [t for t, p in zip(history["time_s"], phases) if p == "classifier"]
    epoch_s = {ph: [s for s, p in zip(history["epoch_s"], phases) if p == ph] for ph in ("vae", "introspective")}
    result = {
        "n_train": train.n_obs,
        "n_genes": train.n_vars,
        "threads": torch.get_num_threads(),
        "total_s": round(total, 1),
    }
    if cls_time:
        result["actinn_s_per_epoch"] = round(cls_time[-1] / len(cls_time), 3)
        result["actinn_test"] = model.actinn.evaluate(test, "cluster")
    for phase, key in (("vae", "vae_s_per_epoch"), ("introspective", "intro_s_per_epoch")):
        if epoch_s[phase]:
            median = statistics.median(epoch_s[phase])
            result[key] = round(median, 2)
            result[key.replace("s_per_epoch", "cells_per_s")] = round(train.n_obs / median, 1)
            result[key + "_all"] = epoch_s[phase]
    print(
        f"ACTINN: {result.get('actinn_s_per_epoch')} s/epoch (reference {REFERENCE['actinn_s_per_epoch']}); "
        f"held-out {result.get('actinn_test')}"
    )
    for key, ref in (("vae_s_per_epoch", "vae_s_per_epoch"), ("intro_s_per_epoch", "intro_s_per_epoch")):
        if key in result:
            print(
                f"{key}: {result[key]} s ({result[key.replace('s_per_epoch', 'cells_per_s')]} training cells/s); "
                f"reference {REFERENCE[ref]} s -> {REFERENCE[ref] / result[key]:.1f}x faster"
            )
    if args.realism:
        from scsynth_core.metrics.realism import rf_real_vs_generated
        from scsynth_core.metrics.representation import fit_representation

        rep = fit_representation(test, n_components=50)
        generated = model.sample(test.n_obs, seed=1)
        auc = rf_real_vs_generated(rep.transform(test), rep.transform(generated), n_trees=100, seed=0).auc_mean
        zeros = 1 - generated.X.nnz / np.prod(generated.shape)
        real_zeros = 1 - test.X.nnz / np.prod(test.shape)
        result |= {
            "rf_auc": round(auc, 3),
            "generated_zero_fraction": round(float(zeros), 3),
            "real_zero_fraction": round(float(real_zeros), 3),
        }
        print(
            f"realism after {args.vae_epochs + args.intro_epochs} epochs: RF AUC {auc:.3f}; zeros generated "
            f"{zeros:.2f}, real {real_zeros:.2f}"
        )
    model.save(args.model)
    return result


def generate_part(args: argparse.Namespace) -> dict:
    import torch

    from scsynth_core.models import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    model.sample(2000, seed=1)  # warm-up
    start = time.perf_counter()
    cells = model.sample(args.cells, seed=0, batch_size=args.chunk)
    elapsed = time.perf_counter() - start
    density = cells.X.nnz / (cells.shape[0] * cells.shape[1])
    result = {
        "cells": args.cells,
        "genes": cells.n_vars,
        "seconds": round(elapsed, 2),
        "cells_per_s": round(args.cells / elapsed, 1),
        "nonzero_fraction": round(density, 4),
        "sparse_gb": round((cells.X.data.nbytes + cells.X.indices.nbytes) / 1e9, 2),
        "dense_gb": round(args.cells * cells.n_vars * 4 / 1e9, 2),
    }
    del cells
    if args.labels:
        target = model.categories[int(np.argmax(model.class_frequencies))]
        n = args.cells // 10
        start = time.perf_counter()
        typed = model.sample(n, labels={target: n}, seed=0, batch_size=args.chunk)
        result["type_specific"] = {
            "type": target,
            "cells": n,
            "seconds": round(time.perf_counter() - start, 2),
            "drawn": typed.uns["scsynth"]["type_specific"]["drawn"],
        }
    result["peak_rss_gb"] = round(_peak_rss_gb(), 2)
    print(
        f"generation: {args.cells:,} x {result['genes']:,} in {elapsed:.1f} s ({result['cells_per_s']:,.0f} cells/s; "
        f"reference {REFERENCE['gen_cells_per_s']:,.0f}); non-zero fraction {density:.3f}; sparse X "
        f"{result['sparse_gb']} GB (dense {result['dense_gb']} GB); peak RSS {result['peak_rss_gb']} GB "
        f"(reference {REFERENCE['gen_peak_rss_gb']} GB)"
    )
    if "type_specific" in result:
        print(f"type-specific: {result['type_specific']}")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "train", "generate"), default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vae-epochs", type=int, default=2)
    parser.add_argument("--intro-epochs", type=int, default=2)
    parser.add_argument("--classifier-epochs", type=int, default=5)
    parser.add_argument("--output-lsn", type=lambda s: s.lower() in ("1", "true", "yes"), default=True)
    parser.add_argument("--update", choices=("paper", "reference"), default="paper")
    parser.add_argument("--realism", action="store_true")
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--labels", action="store_true")
    parser.add_argument("--model", default="/tmp/bench_activa_model.pt")
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
        subprocess.run(cmd + (["--labels"] if args.labels else []), check=True)
        results["generate"] = json.loads(Path(args.model + ".gen.json").read_text())["generate"]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
