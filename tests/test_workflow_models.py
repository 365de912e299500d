"""The neural models inside the workflow: scGAN, cscGAN and ACTIVA through realism and augmentation
(``config/experiments/models_demo.yaml`` with shorter training, one kept fraction, 100-tree evaluation forests, no
embedding figures and no per-cluster realism (the default run's test covers both: its augmentation t-SNE of the
upsampled target cells is the same rule; tests/experiments/test_realism_per_cluster.py the per-cluster steps), so
the suite stays fast). test_workflow_pilot.py and test_workflow_simulations.py run the other experiments' models.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from workflow_utils import configfile_args, copy_workflow, snakemake

SHORTER = """
realism: {rf_trees: 100, embeddings: [], per_cluster: false}
augmentation: {rf_trees: 100, fractions: [0.1], embedding_fractions: []}
models:
  scgan: {params: {max_steps: 30, monitor_every: 10}}
  cscgan: {params: {max_steps: 30, monitor_every: 10}}
  activa: {params: {epochs: 14, classifier_epochs: 30, monitor_every: 2}}
"""


@pytest.mark.slow
def test_models_demo_runs_realism_augmentation_and_training_times(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    extra = configfile_args(wf, SHORTER)
    args = ["--configfile", "config/config.yaml", "config/experiments/models_demo.yaml", extra[-1]]
    snakemake(wf, "--cores", "2", *args, check=True, timeout=1500)
    results = wf / "results"

    summary = pd.read_csv(results / "realism/pbmc68k_demo/summary.tsv", sep="\t").set_index("model")
    assert set(summary.index) == {"scgan", "cscgan", "activa", "real_control"}
    assert summary["rf_auc_mean"].between(0, 1).all() and (summary["n_generated"] == summary["n_real"]).all()

    # cscGAN generates the test set's label composition; ACTIVA generates holistically and ACTINN labels the cells.
    split = pd.read_csv(results / "data/pbmc68k_demo/splits/test0.3_seed0.tsv", sep="\t")
    csc = ad.read_h5ad(results / "realism/pbmc68k_demo/cscgan/seed0/generated.h5ad")
    activa = ad.read_h5ad(results / "realism/pbmc68k_demo/activa/seed0/generated.h5ad")
    assert "cluster_probability" in activa.obs and "cluster_probability" not in csc.obs
    assert csc.obs["cluster"].notna().all() and activa.obs["cluster"].notna().all()
    assert (split["split"] == "test").sum() == csc.n_obs == activa.n_obs
    for generated in (csc, activa):  # LSN output: every cell sums to 20,000
        np.testing.assert_allclose(np.asarray(generated.X.sum(axis=1)).ravel(), 20_000, rtol=1e-3)

    times = pd.read_csv(results / "realism/pbmc68k_demo/training_times.tsv", sep="\t").set_index("model")
    assert set(times.index) == {"scgan", "cscgan", "activa"}
    assert (times["device"] == "auto").all() and (times["train_wall_seconds"] > times["train_loop_seconds"]).all()
    assert times.loc["scgan", "steps"] == 30 and np.isfinite(times["common_quality_level"]).all()
    # Every run reaches the common level by construction; the fastest has relative time 1.
    assert times["seconds_to_quality"].notna().all() and times["relative_time_to_quality"].min() == 1.0
    assert (times["seconds_to_quality"] <= times["train_loop_seconds"] + 1e-6).all()

    f1 = pd.read_csv(results / "augmentation/pbmc68k_demo/f1.tsv", sep="\t")
    augmented = f1[(f1["variant"] == "augmented") & (f1["comparison"] == "rest")]
    assert set(augmented["source"]) == {"upsample", "cscgan", "activa"}
    assert sorted(augmented["fraction"].unique()) == [0.1] and augmented["f1"].between(0, 1).all()
    # Generated target cells: cscGAN conditions on the cluster, ACTIVA keeps cells ACTINN assigns to it.
    target = f1["target"].iloc[0]
    for model in ("cscgan", "activa"):
        cells = ad.read_h5ad(results / f"augmentation/pbmc68k_demo/{model}/frac0.1_seed0/generated.h5ad")
        assert cells.n_obs == 500 and (cells.obs["cluster"].astype(str) == str(target)).all()
    assert (results / "augmentation/pbmc68k_demo/figures/f1_vs_fraction.png").stat().st_size > 10_000
