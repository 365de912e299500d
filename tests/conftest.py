"""Shared fixtures: real small datasets (bundled in scanpy, and ../shared/data when present)."""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("MPLBACKEND", "Agg")
# As in every workflow job and CLI command: load pynndescent's compiled code instead of compiling it per process.
from scsynth_core.runtime import cache_numba_compilation

cache_numba_compilation()
#: pytest-xdist workers (``make test``) share the machine's cores: each worker's torch, BLAS and Snakemake runs use
#: its share (oversubscribed OpenMP threads made GAN steps several times slower). Set before torch is imported.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(max(1, (os.cpu_count() or 1) // WORKERS))


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


#: The default configuration without the papers' neural models (test_workflow_models.py runs those), with
#: 200-tree forests instead of the paper's 1,000 (the suite's time), and with per-cluster realism (off by default).
BASELINES_ONLY = (
    "realism: {models: [upsample, noise], rf_trees: 200, per_cluster: true}\naugmentation: {rf_trees: 200}\n"
)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The default workflow run once for the whole session (and its report): the default-run, report and SLURM
    tests read it instead of running it again.

    Under pytest-xdist (``make test`` runs 2 workers) the workers share one run: the first to ask makes it in
    the session's common temporary folder under a file lock, the others wait and read it.
    """
    from filelock import FileLock

    from workflow_utils import configfile_args, copy_workflow, snakemake

    shared = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:  # workers' temporary folders share a parent
        shared = shared.parent
    wf = shared / "default_run" / "wf"
    done = wf.parent / "complete"
    with FileLock(str(shared / "default_run.lock")):
        if not done.exists():
            if wf.exists():  # a worker's earlier attempt failed: start afresh, fail the same way if it must
                shutil.rmtree(wf)
            copy_workflow(wf)
            args = configfile_args(wf, BASELINES_ONLY)
            snakemake(wf, "--cores", "2", *args, check=True)
            snakemake(wf, "--report", "report.html", *args, check=True)
            done.touch()
    return wf


def _reads_default_run(module) -> bool:
    """Whether a test module has a test that takes the session's default run."""
    return any(
        name.startswith("test_") and "default_run" in inspect.signature(obj).parameters
        for name, obj in vars(module).items()
        if inspect.isfunction(obj)
    )


#: Test tiers (docs/testing.md), as markers: ``make test-unit`` runs the rest, ``make test`` every tier.
#: system: real services started by the test (single-node SLURM, headless Chromium, a container build).
SYSTEM_MODULES = {"test_slurm", "test_report"}
#: workflow: whole modules of Snakemake subprocess runs (dry runs and small end-to-end runs).
WORKFLOW_MODULES = {
    "test_workflow",
    "test_workflow_models",
    "test_workflow_pilot",
    "test_workflow_simulations",
    "test_figures_index",
    "test_profiles",
    "test_envs",
    "test_module_use",
}
#: science: a model trained until it shows a paper's finding (fixtures that train, tests named here).
SCIENCE_FIXTURES = {"trained_scgan", "trained_cscgan", "trained"}
SCIENCE_TESTS = {
    "test_beta_tcvae_disentangles_nonlinear_steps_better_than_pca",
    "test_generated_cells_keep_the_code_factor_relation",
    "test_monitor_ranks_checkpoints_as_the_random_forest",
    "test_realism_improves_with_training_on_real_cells",
}


def tier(item) -> str:
    """The tier of a collected test: system, workflow, science or unit."""
    module = item.module.__name__.rpartition(".")[2]
    if module in SYSTEM_MODULES or item.get_closest_marker("slurm") or item.get_closest_marker("system"):
        return "system"
    if module in WORKFLOW_MODULES or item.get_closest_marker("slow"):
        return "workflow"
    if SCIENCE_FIXTURES & set(item.fixturenames) or item.originalname in SCIENCE_TESTS:
        return "science"
    return "unit"


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = tier(item)
        if name != "unit":
            item.add_marker(getattr(pytest.mark, name))
    _order_for_workers(items)


def _order_for_workers(items) -> None:
    """Order for pytest-xdist's ``--dist loadscope`` (``make test``: whole modules per worker, handed out in
    collection order): the first module reading the session's default run (it makes the run), then the other
    modules with end-to-end runs, then the other readers (the run is ready by then, no worker waits for it),
    then the unit-test modules, which fill the end instead of one long run finishing alone."""
    modules = {item.module.__name__: item.module for item in items}
    readers = sorted(name for name, module in modules.items() if _reads_default_run(module))
    slow = {item.module.__name__ for item in items if item.get_closest_marker("slow")}

    def rank(item) -> int:
        name = item.module.__name__
        return 0 if readers[:1] == [name] else 2 if name in readers else 1 if name in slow else 3

    items.sort(key=rank)
