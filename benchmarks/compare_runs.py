"""Compare two workflow result trees value for value (issue 16: a refactoring must leave the default run's
results bit-identical).

    python benchmarks/compare_runs.py BEFORE/results AFTER/results [--ignore GLOB ...]

Generated and prepared matrices (h5ad: X, obs, var names), arrays (npz), model weights (every tensor of a
``model.pt``), tables (tsv) and metrics (json) must be equal exactly. Wall-clock columns and keys (seconds,
times, Snakemake benchmark files) are left out, and so are figures and reports (their bytes carry renderer
metadata). Prints one line per difference and a summary; exits 1 if anything differs or is missing on one side.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

#: Columns and keys that hold wall-clock time, not results.
#: Ratios of wall-clock times (overhead fraction, time to quality relative to the fastest) are timings too.
TIMING = re.compile(r"(^|_)(s|seconds|time|time_s|h:m:s|minutes)$|seconds|benchmark|time_to|overhead_fraction")
SKIPPED_SUFFIXES = {".png", ".pdf", ".svg", ".html", ".log"}


def _tables_equal(a: Path, b: Path) -> str | None:
    left, right = (pd.read_csv(p, sep="\t", keep_default_na=False) for p in (a, b))
    keep = [c for c in left.columns if not TIMING.search(str(c))]
    if list(left.columns) != list(right.columns):
        return f"columns {list(left.columns)} != {list(right.columns)}"
    if not left[keep].equals(right[keep]):
        diff = [c for c in keep if not left[c].equals(right[c])]
        return f"values differ in {diff}"
    return None


def _json_equal(a: Path, b: Path) -> str | None:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not TIMING.search(k)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    left, right = (strip(json.loads(p.read_text())) for p in (a, b))
    if left != right:
        keys = (
            sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k)) if isinstance(left, dict) else []
        )
        return f"values differ: {keys[:10]}"
    return None


def _h5ad_equal(a: Path, b: Path) -> str | None:
    import anndata as ad
    import scipy.sparse as sp

    left, right = ad.read_h5ad(a), ad.read_h5ad(b)
    if left.shape != right.shape or list(left.var_names) != list(right.var_names):
        return f"shape/genes differ: {left.shape} vs {right.shape}"
    x, y = (m.toarray() if sp.issparse(m) else np.asarray(m) for m in (left.X, right.X))
    if not np.array_equal(x, y):
        return f"X differs in {int((x != y).sum())} entries"
    if not left.obs.equals(right.obs):
        return "obs differs"
    return None


def _npz_equal(a: Path, b: Path) -> str | None:
    with np.load(a, allow_pickle=False) as left, np.load(b, allow_pickle=False) as right:
        if sorted(left.files) != sorted(right.files):
            return f"arrays {left.files} != {right.files}"
        differ = [k for k in left.files if not np.array_equal(left[k], right[k])]
    return f"arrays differ: {differ}" if differ else None


def _weights_equal(a: Path, b: Path) -> str | None:
    import torch

    def tensors(obj, prefix=""):
        if isinstance(obj, torch.Tensor):
            yield prefix, obj
        elif isinstance(obj, dict):
            for key, value in obj.items():
                yield from tensors(value, f"{prefix}/{key}")
        elif isinstance(obj, list | tuple):
            for i, value in enumerate(obj):
                yield from tensors(value, f"{prefix}/{i}")

    left, right = (dict(tensors(torch.load(p, map_location="cpu", weights_only=False))) for p in (a, b))
    if left.keys() != right.keys():
        return "different tensors"
    differ = [k for k in left if not torch.equal(left[k], right[k])]
    return f"{len(differ)} tensors differ, e.g. {differ[:3]}" if differ else None


def compare_file(a: Path, b: Path) -> str | None:
    """None when equal (as defined above), else what differs."""
    if "benchmark" in a.name:
        return None
    if a.suffix == ".tsv":
        return _tables_equal(a, b)
    if a.suffix == ".json":
        return _json_equal(a, b)
    if a.suffix == ".h5ad":
        return _h5ad_equal(a, b)
    if a.suffix == ".npz":
        return _npz_equal(a, b)
    if a.suffix == ".pt" or ".pt." in a.name:
        return _weights_equal(a, b)
    return None if a.read_bytes() == b.read_bytes() else "bytes differ"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore", nargs="*", default=[], help="glob patterns of relative paths to leave out")
    args = parser.parse_args(argv)

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix not in SKIPPED_SUFFIXES
            and not any(fnmatch.fnmatch(str(p.relative_to(root)), g) for g in args.ignore)
        }

    before, after = files(args.before), files(args.after)
    problems = [f"only before: {p}" for p in sorted(before - after)] + [
        f"only after: {p}" for p in sorted(after - before)
    ]
    same = sorted(before & after)
    for rel in same:
        why = compare_file(args.before / rel, args.after / rel)
        if why:
            problems.append(f"differs: {rel}: {why}")
    for line in problems:
        print(line)
    print(f"{len(same)} files compared, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
