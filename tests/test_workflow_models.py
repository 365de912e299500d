"""The neural models inside the workflow: scGAN, cscGAN and ACTIVA through realism and augmentation
(``config/experiments/models_demo.yaml`` with shorter training and 100-tree evaluation forests, so the suite stays
fast), scDBM and scVI through the pilot experiment, and MichiGAN's models through the disentanglement and
perturbation experiments.
"""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from workflow_utils import configfile_args, copy_workflow, snakemake

SHORTER = """
realism: {rf_trees: 100}
augmentation: {rf_trees: 100}
models:
  scgan: {params: {max_steps: 60, monitor_every: 20}}
  cscgan: {params: {max_steps: 60, monitor_every: 20}}
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
    assert times.loc["scgan", "steps"] == 60 and np.isfinite(times["common_quality_level"]).all()
    # Every run reaches the common level by construction; the fastest has relative time 1.
    assert times["seconds_to_quality"].notna().all() and times["relative_time_to_quality"].min() == 1.0
    assert (times["seconds_to_quality"] <= times["train_loop_seconds"] + 1e-6).all()

    f1 = pd.read_csv(results / "augmentation/pbmc68k_demo/f1.tsv", sep="\t")
    augmented = f1[(f1["variant"] == "augmented") & (f1["comparison"] == "rest")]
    assert set(augmented["source"]) == {"upsample", "cscgan", "activa"}
    assert sorted(augmented["fraction"].unique()) == [0.1, 0.5] and augmented["f1"].between(0, 1).all()
    # Generated target cells: cscGAN conditions on the cluster, ACTIVA keeps cells ACTINN assigns to it.
    target = f1["target"].iloc[0]
    for model in ("cscgan", "activa"):
        cells = ad.read_h5ad(results / f"augmentation/pbmc68k_demo/{model}/frac0.1_seed0/generated.h5ad")
        assert cells.n_obs == 500 and (cells.obs["cluster"].astype(str) == str(target)).all()
        assert (results / f"augmentation/pbmc68k_demo/{model}/frac0.1_seed0/tsne_target.png").stat().st_size > 10_000
    assert (results / "augmentation/pbmc68k_demo/figures/f1_vs_fraction.png").stat().st_size > 10_000


PILOT_MODELS = """
preset: demo
experiments: [pilot]
pilot:
  datasets: [pbmc68k_demo]
  models: [scdbm, scvi_prior, scvi_posterior, noise]
  pilot_sizes: [96, 192]
  seeds: [0]
  replicates_per_job: 2
"""


@pytest.mark.slow
def test_pilot_with_scdbm_and_scvi_models(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    snakemake(wf, "--cores", "2", *configfile_args(wf, PILOT_MODELS), check=True, timeout=1500)
    results = wf / "results/pilot/pbmc68k_demo"
    table = pd.read_csv(results / "replicates.tsv", sep="\t")
    assert set(table["model"]) == {"scdbm", "scvi_prior", "scvi_posterior", "noise"}
    assert len(table) == 4 * 2 and (table["n_synthetic"] == 700).all()
    assert table[["dbi_synthetic", "ari", "count_difference", "mad_median"]].notna().all().all()
    by_model = table.groupby("model")["mad_zero_fraction"].mean()
    # The noise baseline adds Poisson noise to every entry and loses the zeros; the models match them better.
    for model in ("scdbm", "scvi_prior", "scvi_posterior"):
        assert by_model[model] < by_model["noise"], by_model
    zeros = pd.read_csv(results / "zero_inflation.tsv", sep="\t")
    for model in ("scdbm", "scvi_prior", "scvi_posterior"):
        runs = zeros[zeros["model"] == model].set_index("training_set")["zero_fraction_synthetic"]
        assert runs["pilot_with_added_zeros"] > runs["pilot"], (model, runs)  # added zeros are not imputed away
    overhead = json.loads((results / "job_overhead.json").read_text())
    assert overhead["jobs"] == 4 and 0 < overhead["overhead_fraction"] < 1
    example = ad.read_h5ad(results / "scvi_posterior/batch0_example.h5ad")
    assert example.uns["pilot"]["pilot_size"] == 192 and example.obsm["X_umap"].shape == (700, 2)
    table1 = pd.read_csv(results / "count_difference.tsv", sep="\t")
    assert list(table1.columns) == ["model", "mean_96", "mean_192", "sd_96", "sd_192"]


DISENTANGLEMENT = """
preset: demo
experiments: [disentanglement]
disentanglement:
  simulations: [nonlinear]
  models: [pca, betatcvae]
  latent_dims: [4]
  seeds: [0]
  n_cells: 400
  n_genes: 100
  umap_neighbors: 15
  code_data_models: [wgangp]
  code_data_cells: 200
models:
  betatcvae: {max_steps: 60}
  wgangp: {max_steps: 20, params: {generator_layers: [32, 64], critic_layers: [64, 10]}}
"""


@pytest.mark.slow
def test_disentanglement_experiment_scores_and_draws_each_representation(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    snakemake(wf, "--cores", "2", *configfile_args(wf, DISENTANGLEMENT), check=True, timeout=900)
    results = wf / "results/disentanglement"
    simulated = ad.read_h5ad(results / "nonlinear/simulated.h5ad")
    assert simulated.shape == (400, 100) and {"batch", "path", "step", "library_size"} <= set(simulated.obs)
    runs = pd.read_csv(results / "runs.tsv", sep="\t")
    assert sorted(runs["model"]) == ["betatcvae", "pca"] and (runs["latent_dim"] == 4).all()
    scores = ["mig", "mig_posterior", "mig_balanced", "factorvae", "correlation_gap"]
    assert runs[scores].apply(lambda c: c.between(0, 1)).all().all()
    codes = np.load(results / "nonlinear/pca/dim4_seed0/latents.npy")
    assert codes.shape == (400, 4)
    assert len(pd.read_csv(results / "scores.tsv", sep="\t")) == 2
    for name in ("nonlinear_scores", "nonlinear_umap_pca", "nonlinear_umap_betatcvae"):
        assert (results / f"figures/{name}.png").stat().st_size > 10_000
    assert (wf / "logs/disentanglement/nonlinear/betatcvae/dim4_seed0/run.log").exists()
    code_data = pd.read_csv(results / "code_data.tsv", sep="\t")  # MichiGAN Fig. 4: one row per factor
    assert set(code_data["model"]) == {"wgangp"} and len(code_data) == 4 and code_data["abs_rho"].between(0, 1).all()
    assert (results / "figures/nonlinear_code_data.png").stat().st_size > 10_000


PERTURBATION = """
preset: demo
experiments: [perturbation]
perturbation:
  held_out: ["Path2:Batch2"]
  seeds: [0]
  n_cells: 450
  n_genes: 100
  rf_trees: 50
  umap_neighbors: 10
models:
  michigan: {max_steps: 20, params: {generator_layers: [32, 64], critic_layers: [64, 10], vae: {epochs: 3}}}
"""


@pytest.mark.slow
def test_perturbation_experiment_predicts_the_held_out_combination(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    snakemake(wf, "--cores", "2", *configfile_args(wf, PERTURBATION), check=True, timeout=900)
    results = wf / "results/perturbation"
    simulated = ad.read_h5ad(results / "simulated.h5ad")
    assert simulated.obs["path"].nunique() == 3 and simulated.obs["batch"].nunique() == 3
    held_out = ((simulated.obs["path"] == "Path2") & (simulated.obs["batch"] == "Batch2")).sum()
    record = json.loads((results / "Path2_x_Batch2/seed0/metrics.json").read_text())
    assert record["combination"] == "Path2:Batch2" and record["n_held_out"] == held_out
    assert record["n_train"] == simulated.n_obs - held_out  # the held-out cells never reach MichiGAN
    runs = pd.read_csv(results / "runs.tsv", sep="\t")
    assert sorted(runs["method"]) == ["betatcvae", "control", "michigan"] and runs["rf_error"].between(0, 0.6).all()
    improvement = pd.read_csv(results / "improvement.tsv", sep="\t").iloc[0]
    assert improvement["improvement"] == pytest.approx(improvement["rf_error_michigan"] - improvement["rf_error_betatcvae"])
    for name in ("rf_error", "delta_h_improvement", "umap"):
        assert (results / f"figures/{name}.png").stat().st_size > 10_000
    assert (wf / "logs/perturbation/Path2_x_Batch2/seed0.log").exists()
