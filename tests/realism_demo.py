"""The realism steps' test input: the 700 demo cells, typed by their bulk labels, written as a prepared data set
with a balanced 70/30 split (no Snakemake run)."""

from __future__ import annotations

from pathlib import Path

from scsynth_core import steps


def write_demo_split(root: Path, demo_counts) -> tuple[Path, Path]:
    """``(prepared.h5ad, split.tsv)`` under ``root``: ``obs['cluster']`` = bulk_labels, 30 % of each type tested."""
    cells = demo_counts.copy()
    cells.obs["cluster"] = cells.obs["bulk_labels"].astype(str)
    prepared, split = root / "prepared.h5ad", root / "split.tsv"
    cells.write_h5ad(prepared)
    steps.split_dataset(input=prepared, output=split, seed=0, test_fraction=0.3)
    return prepared, split
