"""Shared fixtures: real small datasets (bundled in scanpy, and ../shared/data when present)."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def demo_counts() -> ad.AnnData:
    """The embedded default dataset: 700 real PBMC 68k cells x 765 genes, integer counts, bulk_labels."""
    from scsynth_core.data.bundled import BUNDLED

    return BUNDLED["pbmc68k_reduced"]()


@pytest.fixture
def demo(demo_counts) -> ad.AnnData:
    """A fresh copy of the demo counts for tests that modify it."""
    return demo_counts.copy()


def shared_dataset(folder: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test (users' machines do not have it)."""
    path = SHARED_DATA / folder / f"{folder}.h5ad"
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is only present in CI and development)")
    return path


@pytest.fixture
def tiny_counts() -> ad.AnnData:
    """60 cells x 12 genes of Poisson counts in two labelled groups with different means."""
    rng = np.random.default_rng(0)
    means = np.r_[np.full(6, 5.0), np.full(6, 0.5)]
    X = np.vstack([rng.poisson(means, (30, 12)), rng.poisson(means[::-1], (30, 12))]).astype(np.float32)
    obs = pd.DataFrame({"cluster": ["a"] * 30 + ["b"] * 30}, index=[f"cell{i}" for i in range(60)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(12)]))


#: The default configuration without the papers' neural models (test_workflow_models.py runs those) and with
#: 200-tree forests instead of the paper's 1,000: the suite's time.
BASELINES_ONLY = "realism: {models: [upsample, noise], rf_trees: 200}\naugmentation: {rf_trees: 200}\n"


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The default workflow run once for the whole session (and its report): the default-run, report and SLURM
    tests read it instead of running it again."""
    from workflow_utils import configfile_args, copy_workflow, snakemake

    wf = copy_workflow(tmp_path_factory.mktemp("default") / "wf")
    args = configfile_args(wf, BASELINES_ONLY)
    snakemake(wf, "--cores", "2", *args, check=True)
    snakemake(wf, "--report", "report.html", *args, check=True)
    return wf
