"""MichiGAN's models through the disentanglement and perturbation experiments (Yu & Welch 2021), on small
simulations."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from workflow_utils import configfile_args, copy_workflow, snakemake

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
  code_data_models: [wgangp, michigan]
  code_data_cells: 200
  traversal_steps: 4
  traversal_draws: 2
models:
  betatcvae: {max_steps: 60}
  wgangp: {max_steps: 20, params: {generator_layers: [32, 64], critic_layers: [64, 10]}}
  michigan: {max_steps: 20, params: {generator_layers: [32, 64], critic_layers: [64, 10], vae: {epochs: 3}}}
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
    for name in ("nonlinear_scores", "nonlinear_umap_pca", "nonlinear_umap_betatcvae", "nonlinear_dimensions"):
        assert (results / f"figures/{name}.png").stat().st_size > 10_000
    dims = pd.read_csv(results / "nonlinear/betatcvae/dim4_seed0/dimensions.tsv", sep="\t")  # Fig. 1c-d
    assert len(dims) == 4 * 4 and dims["abs_rho"].between(0, 1).all() and dims["mi_posterior"].notna().all()
    assert (wf / "logs/disentanglement/nonlinear/betatcvae/dim4_seed0/run.log").exists()
    code_data = pd.read_csv(results / "code_data.tsv", sep="\t")  # MichiGAN Fig. 4: one row per factor
    assert set(code_data["model"]) == {"wgangp", "michigan", "betatcvae"} and len(code_data) == 3 * 4
    assert code_data["abs_rho"].between(0, 1).all() and (code_data["gap"] <= code_data["abs_rho"] + 1e-9).all()
    table4 = pd.read_csv(results / "code_data_scores.tsv", sep="\t").set_index("model")  # Table 4
    assert table4.loc["wgangp", "correlation_gap_mean"] == pytest.approx(
        code_data.loc[code_data["model"] == "wgangp", "gap"].mean(), abs=1e-3
    )
    figures = [
        "code_data",
        "code_umap_wgangp",
        "code_umap_michigan",
        "code_umap_betatcvae",
        "traversal_michigan",
        "traversal_betatcvae",
    ]  # Fig. 4, 4a, 5
    for name in figures:
        assert (results / f"figures/nonlinear_{name}.png").stat().st_size > 10_000


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
    assert improvement["improvement"] == pytest.approx(
        improvement["rf_error_michigan"] - improvement["rf_error_betatcvae"]
    )
    for name in ("rf_error", "delta_h_improvement", "umap"):
        assert (results / f"figures/{name}.png").stat().st_size > 10_000
    assert (wf / "logs/perturbation/Path2_x_Batch2/seed0.log").exists()
