"""scDBM and scVI (posterior sampling) through the pilot experiment (Treppner 2021), beside the noise baseline.
(scVI's prior sampling differs only in its library sizes: tests/models/test_scvi.py covers it.)"""

from __future__ import annotations

import json

import anndata as ad
import pandas as pd
import pytest

from workflow_utils import configfile_args, copy_workflow, snakemake

PILOT_MODELS = """
preset: demo
experiments: [pilot]
pilot:
  datasets: [pbmc68k_demo]
  models: [scdbm, scvi_posterior, noise]
  pilot_sizes: [96, 192]
  seeds: [0]
  replicates_per_job: 2
# A shorter scDBM than the demo preset (20+10 pretraining and 5 fine-tuning epochs): the test checks the
# experiment's plumbing and the models' zeros, which keep at this length. (scVI keeps the demo's 25 epochs: after
# 10 its posterior draws reached 1e8 counts.)
models:
  scdbm: {params: {pretrain_epochs: [10, 5], finetune_epochs: 3}}
"""


@pytest.mark.slow
def test_pilot_with_scdbm_and_scvi_models(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    snakemake(wf, "--cores", "2", *configfile_args(wf, PILOT_MODELS), check=True, timeout=1500)
    results = wf / "results/pilot/pbmc68k_demo"
    table = pd.read_csv(results / "replicates.tsv", sep="\t")
    assert set(table["model"]) == {"scdbm", "scvi_posterior", "noise"}
    assert len(table) == 3 * 2 and (table["n_synthetic"] == 700).all()
    assert table[["dbi_synthetic", "ari", "count_difference", "mad_median"]].notna().all().all()
    by_model = table.groupby("model")["mad_zero_fraction"].mean()
    # The noise baseline adds Poisson noise to every entry and loses the zeros; the models match them better.
    for model in ("scdbm", "scvi_posterior"):
        assert by_model[model] < by_model["noise"], by_model
    zeros = pd.read_csv(results / "zero_inflation.tsv", sep="\t")
    for model in ("scdbm", "scvi_posterior"):
        runs = zeros[zeros["model"] == model].set_index("training_set")["zero_fraction_synthetic"]
        assert runs["pilot_with_added_zeros"] > runs["pilot"], (model, runs)  # added zeros are not imputed away
    overhead = json.loads((results / "job_overhead.json").read_text())
    assert overhead["jobs"] == 3 and 0 < overhead["overhead_fraction"] < 1
    example = ad.read_h5ad(results / "scvi_posterior/batch0_example.h5ad")
    assert example.uns["pilot"]["pilot_size"] == 192 and example.obsm["X_umap"].shape == (700, 2)
    table1 = pd.read_csv(results / "count_difference.tsv", sep="\t")
    assert list(table1.columns) == ["model", "mean_96", "mean_192", "sd_96", "sd_192"]
