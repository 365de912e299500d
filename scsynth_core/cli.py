"""``scsynth``: the workflow's steps on a user's own files, without Snakemake.

Each sub-command calls the same function as the corresponding workflow rule (:mod:`scsynth_core.steps`;
``evaluate``: :mod:`scsynth_core.experiments.realism`)::

    scsynth prepare  --input my.h5ad --recipe marouf --label-key cell_type --output prepared.h5ad
    scsynth split    --input prepared.h5ad --test-fraction 0.3 --seed 0 --output split.tsv
    scsynth train    --input prepared.h5ad --split split.tsv --model upsample --output model.pt
    scsynth generate --model model.pt --n-cells 1000 --output generated.h5ad
    scsynth evaluate --real prepared.h5ad --split split.tsv --generated generated.h5ad --output metrics.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import yaml

from scsynth_core import steps
from scsynth_core.errors import ConfigError, DataError, ScsynthError
from scsynth_core.experiments import realism
from scsynth_core.runtime import cache_numba_compilation


def _key_values(pairs: list[str]) -> dict:
    """``["lr=0.001", "layers=[64, 64]"]`` -> ``{"lr": 0.001, "layers": [64, 64]}`` (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set: expected KEY=VALUE, got '{pair}'")
        out[key] = yaml.safe_load(value)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scsynth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__import__('scsynth_core').__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("models", help="list the registered models")

    p = sub.add_parser("download", help="download a registered dataset")
    p.add_argument("--registry", default="config/datasets.yaml")
    p.add_argument("--dataset", required=True)
    p.add_argument("--dest-dir", required=True)

    p = sub.add_parser("prepare", help="run a preparation recipe on an h5ad of raw counts")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--recipe", default="scanpy_default", help="marouf | treppner | scanpy_default")
    p.add_argument("--label-key", help="obs column with cell types (optional)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe parameters")

    p = sub.add_parser("split", help="balanced train/test split as an index file")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--label-key", default="cluster")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train a model")
    p.add_argument("--input", required=True, help="prepared h5ad (counts in X)")
    p.add_argument("--output", required=True, help="model file to write (.pt)")
    p.add_argument("--model", required=True)
    p.add_argument("--split", help="split file; train on its 'train' cells")
    p.add_argument("--train-log", help="training log TSV (default: beside the model)")
    p.add_argument("--preset", default="paper", help="paper | workstation | demo (see docs/models.md)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="hyperparameter overrides")
    p.add_argument("--label-key", default="cluster")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--checkpoint", help="checkpoint file to resume from / save to")

    p = sub.add_parser("generate", help="generate cells from a trained model (written to disk chunk by chunk)")
    p.add_argument("--model", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--n-cells", type=int)
    p.add_argument("--labels", help="LABEL=COUNT,... for conditional models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--batch-size", type=int, default=10_000, help="cells generated and written at a time (bounds memory)"
    )

    p = sub.add_parser("evaluate", help="compare generated with real cells")
    p.add_argument("--real", required=True)
    p.add_argument("--generated", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--split", help="split file; compare with its 'test' cells")
    p.add_argument(
        "--label-key",
        help="obs column of the real cells' cell types, for the marker genes (correlation "
        "discrepancy) and the inception score (default: 'cluster' where the file has it)",
    )
    p.add_argument("--rf-trees", type=int, default=1000)
    p.add_argument(
        "--representation",
        choices=("scsynth", "marouf"),
        default="scsynth",
        help="PCA of the realism metrics: this project's (training cells minus the control's) or Marouf "
        "2020's (1,000 HVGs of the real test cells, scaled), as realism.representation",
    )
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cache_numba_compilation()
    try:
        _check_outputs(args)
        _dispatch(args)
    except ScsynthError as exc:
        print(f"scsynth: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Every file the command will write must be writable, checked before reading data or training."""
    from scsynth_core.data.checks import check_output_path

    for option in ("output", "train_log", "checkpoint"):
        if getattr(args, option, None):
            check_output_path(getattr(args, option))


def _evaluation_label_key(real: str, label_key: str | None) -> str | None:
    """``--label-key`` checked against the real file's obs columns; without it, 'cluster' where there is one."""
    from scsynth_core.data.checks import read_h5ad

    adata = read_h5ad(real, backed=True)  # obs only: X stays on disk
    columns = [str(c) for c in adata.obs.columns]
    adata.file.close()
    if label_key is None:
        if "cluster" in columns:
            return "cluster"
        logging.getLogger("scsynth").warning(
            "%s: no obs['cluster'] column and no --label-key: the correlation discrepancy and the inception score "
            "are skipped",
            real,
        )
        return None
    if label_key not in columns:
        raise DataError(f"{real}: --label-key: no obs column '{label_key}' (columns: {', '.join(columns) or 'none'})")
    return label_key


def _dispatch(args: argparse.Namespace) -> None:
    cmd = args.command
    if cmd == "models":
        from scsynth_core.models import available_models, get_model_class

        for name in available_models():
            klass = get_model_class(name)
            kind = "conditional" if klass.conditional else "unconditional"
            print(f"{name}\t{klass.representation}\t{kind}\tpresets: {', '.join(klass.presets)}")
    elif cmd == "download":
        steps.download_dataset(registry=args.registry, dataset=args.dataset, dest_dir=args.dest_dir)
    elif cmd == "prepare":
        steps.prepare_dataset(
            input=args.input,
            output=args.output,
            recipe=args.recipe,
            label_key=args.label_key,
            seed=args.seed,
            params=_key_values(args.set),
        )
    elif cmd == "split":
        steps.split_dataset(
            input=args.input,
            output=args.output,
            seed=args.seed,
            test_fraction=args.test_fraction,
            label_key=args.label_key,
        )
    elif cmd == "train":
        steps.train_model(
            prepared=args.input,
            output=args.output,
            train_log=args.train_log or f"{args.output}.train_log.tsv",
            model=args.model,
            split=args.split,
            preset=args.preset,
            params=_key_values(args.set),
            label_key=args.label_key,
            seed=args.seed,
            device=args.device,
            max_steps=args.max_steps,
            checkpoint=args.checkpoint,
        )
    elif cmd == "generate":
        steps.generate_cells(
            model=args.model,
            output=args.output,
            n_cells=args.n_cells,
            labels=steps.parse_label_counts(args.labels) if args.labels else None,
            seed=args.seed,
            device=args.device,
            batch_size=args.batch_size,
        )
    elif cmd == "evaluate":
        realism.evaluate_cells(
            real=args.real,
            generated=args.generated,
            output=args.output,
            split=args.split,
            label_key=_evaluation_label_key(args.real, args.label_key),
            n_trees=args.rf_trees,
            seed=args.seed,
            representation=args.representation,
        )
        with open(args.output, encoding="utf-8") as fh:
            print(json.dumps(json.load(fh), indent=2))


if __name__ == "__main__":
    sys.exit(main())
