"""The large-data path: cells read from disk in row blocks (scsynth_core.data.backed), the streamed marouf
recipe (scsynth_core.data.prepare_backed) and scGAN trained from a file (GenerativeModel.fit on cells read from disk).
Each result is compared with the in-memory path or the reference library (scanpy)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.data.backed import (
    BackedRows,
    GeneStatistics,
    hvg_from_mean_var,
    open_cells,
    read_rows,
    subsample_rows,
)
from scsynth_core.errors import ConfigError, DataError


def _counts(n_cells: int = 240, n_genes: int = 150, *, seed: int = 0, fold: float = 0.0) -> ad.AnnData:
    """Negative-binomial counts in two groups whose gene means differ (CSR, float32 as 10x files often are)."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(0.6, 1.5, n_genes)
    shift = np.where(rng.random(n_genes) < 0.3, fold or rng.gamma(2.0, 2.0, n_genes), 1.0)
    group = np.arange(n_cells) % 2
    means = base * np.where(group[:, None] == 1, shift, 1.0) * rng.uniform(0.5, 1.5, (n_cells, 1))
    X = rng.negative_binomial(2, 2 / (2 + means)).astype(np.float32)
    obs = pd.DataFrame(
        {"group": np.where(group == 1, "b", "a"), "depth": X.sum(axis=1)}, index=[f"c{i}" for i in range(n_cells)]
    )
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))


@pytest.fixture
def counts_file(tmp_path):
    adata = _counts()
    path = tmp_path / "counts.h5ad"
    adata.write_h5ad(path, compression="gzip")
    return adata, path


def test_rows_read_from_disk_equal_the_rows_in_memory(counts_file):
    adata, path = counts_file
    idx = np.array([17, 3, 3, 200, 0, 239, 17])  # unsorted, repeated
    with BackedRows(path) as rows:
        assert rows.shape == adata.shape
        assert (rows[idx] != adata.X[idx]).nnz == 0
        assert (rows[5:9] != adata.X[5:9]).nnz == 0
    subset = np.array([9, 4, 100])
    with BackedRows(path, subset) as rows:
        assert rows.shape == (3, adata.n_vars)
        assert (rows[np.array([2, 0])] != adata.X[[100, 9]]).nnz == 0
    part = read_rows(path, np.array([1, 7]), genes=np.arange(10))
    assert part.obs_names.tolist() == ["c1", "c7"] and part.var_names.tolist() == adata.var_names[:10].tolist()
    assert (part.X != adata.X[[1, 7]][:, :10]).nnz == 0


def test_dense_or_missing_matrix_is_refused(tmp_path):
    dense = tmp_path / "dense.h5ad"
    ad.AnnData(np.ones((4, 3), dtype=np.float32)).write_h5ad(dense)
    with pytest.raises(DataError, match="dense.h5ad: X must be a CSR"):
        BackedRows(dense)
    with pytest.raises(DataError, match="file not found"):
        BackedRows(tmp_path / "absent.h5ad")


@pytest.mark.parametrize("flavor", ["seurat", "cell_ranger"])
def test_chunked_hvg_statistics_equal_scanpy(flavor):
    """Means, dispersions and the top genes from row-chunk sums equal scanpy's on the whole matrix."""
    import scanpy as sc
    from scanpy.preprocessing._deprecated.highly_variable_genes import filter_genes_dispersion

    adata = _counts(seed=3)
    stats = GeneStatistics.collect(adata.X, chunk_rows=37)  # chunks that do not divide the cells
    mean, var = stats.mean_var()
    n_top = 40
    ours = hvg_from_mean_var(mean, var, flavor=flavor, n_top_genes=n_top)
    work = adata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.normalize_total(work)
        if flavor == "seurat":  # scanpy.pp.highly_variable_genes, on log1p data
            sc.pp.log1p(work)
            ref = sc.pp.highly_variable_genes(work, flavor="seurat", n_top_genes=n_top, inplace=False)
            ref_mean, ref_norm, ref_hvg = (ref[c].to_numpy() for c in ("means", "dispersions_norm", "highly_variable"))
        else:  # recipe_zheng17's step, on normalised counts
            ref = filter_genes_dispersion(work.X, flavor="cell_ranger", n_top_genes=n_top, log=False)
            ref_mean, ref_norm, ref_hvg = ref["means"], ref["dispersions_norm"], ref["gene_subset"]
    np.testing.assert_allclose(ours["means"], ref_mean, rtol=1e-5)
    np.testing.assert_allclose(ours["dispersions_norm"], ref_norm, rtol=1e-4, atol=1e-5)
    cut = np.sort(ref_norm[~np.isnan(ref_norm)])[::-1][n_top - 1]
    clear = np.abs(np.nan_to_num(ref_norm, nan=-np.inf) - cut) > 1e-4  # rounding may flip exact ties only
    assert (ours["highly_variable"].to_numpy() == ref_hvg)[clear].all()
    assert ours["highly_variable"].sum() >= ref_hvg.sum() - 2 and ref_hvg.sum() >= n_top - 2


def test_streamed_marouf_equals_the_in_memory_recipe(counts_file, tmp_path):
    """With a sketch of every cell, the streamed recipe writes what prepare() returns (cells, genes, counts,
    clusters), reading the file in chunks that do not divide the cells."""
    from scsynth_core.data.prepare_backed import prepare_backed
    from scsynth_core.data.preprocess import prepare

    adata, path = counts_file
    params = {"n_top_genes": 60, "n_pcs": 10, "min_genes": 60, "resolution": 1.0}
    memory = prepare(adata, recipe="marouf", seed=2, **params)
    record = prepare_backed(path, tmp_path / "prepared.h5ad", seed=2, chunk_rows=53, **params)
    backed = ad.read_h5ad(tmp_path / "prepared.h5ad")
    assert 0 < record["derived"]["n_cells_out"] < adata.n_obs  # min_genes filtered some cells
    assert backed.obs_names.tolist() == memory.obs_names.tolist()
    assert backed.var_names.tolist() == memory.var_names.tolist()
    assert (backed.X != memory.X).nnz == 0
    assert backed.obs["cluster"].astype(str).tolist() == memory.obs["cluster"].astype(str).tolist()
    assert memory.obs["cluster"].nunique() >= 2
    assert backed.uns["scsynth_prepare"]["params"]["n_top_genes"] == 60


def test_sketch_labels_reach_every_cell(tmp_path):
    """Clustering 100 of 240 cells and transferring the labels recovers the two simulated groups."""
    from sklearn.metrics import adjusted_rand_score

    from scsynth_core.data.prepare_backed import prepare_backed

    adata = _counts(fold=20.0)  # groups far apart
    path = tmp_path / "separated.h5ad"
    adata.write_h5ad(path)
    record = prepare_backed(
        path,
        tmp_path / "p.h5ad",
        seed=0,
        sketch_cells=100,
        n_top_genes=60,
        n_pcs=10,
        resolution=0.3,
        min_genes=1,
        min_cells=1,
    )
    out = ad.read_h5ad(tmp_path / "p.h5ad")
    assert record["derived"]["sketch_cells"] == 100 and "label_transfer" in record["derived"]
    assert out.n_obs == adata.n_obs and out.obs["cluster"].notna().all()
    assert adjusted_rand_score(out.obs["group"], out.obs["cluster"]) > 0.9


def test_only_marouf_streams(counts_file, tmp_path):
    from scsynth_core.data.prepare_backed import prepare_backed

    _, path = counts_file
    with pytest.raises(ConfigError, match="recipe 'treppner' does not stream"):
        prepare_backed(path, tmp_path / "x.h5ad", recipe="treppner")
    with pytest.raises(ConfigError, match="sketch_cells must be a positive integer"):
        prepare_backed(path, tmp_path / "x.h5ad", sketch_cells=0)


TINY = {
    "latent_dim": 8,
    "generator_layers": [16, 16],
    "critic_layers": [16, 8],
    "batch_size": 16,
    "monitor_every": 3,
    "monitor_cells": 40,
    "validation_fraction": 0.25,
    "max_steps": 6,
    "log_every": 2,
}


@pytest.mark.parametrize("model_name", ["scgan", "cscgan"])
def test_training_from_disk_equals_training_from_memory(counts_file, tmp_path, model_name):
    """Same seed, same training cells (a split's train subset): the same minibatches, monitor and weights."""
    import torch

    from scsynth_core.data.split import apply_split, balanced_split, read_split, write_split
    from scsynth_core.models import get_model_class

    adata, path = counts_file
    split_path = tmp_path / "split.tsv"
    write_split(split_path, balanced_split(adata.obs["group"], test_fraction=0.2, seed=0))
    klass = get_model_class(model_name)
    label_key = "group" if klass.conditional else None
    in_memory = klass("demo", **TINY)
    cells = apply_split(ad.read_h5ad(path), read_split(split_path))
    train = cells[cells.obs["split"] == "train"].copy()
    memory_history = in_memory.fit(train, label_key=label_key, seed=4, progress=False, device="cpu")
    from_disk = klass("demo", **TINY)
    with open_cells(path, split_path, subset="train") as cells:
        assert cells.obs_names.tolist() == train.obs_names.tolist()
        disk_history = from_disk.fit(cells, label_key=label_key, seed=4, progress=False, device="cpu")
    assert disk_history["critic_loss"] == memory_history["critic_loss"]
    assert disk_history["monitor_auc"] == memory_history["monitor_auc"]  # the monitor saw the same cells
    for key, value in in_memory._generator.state_dict().items():
        assert torch.equal(value, from_disk._generator.state_dict()[key]), key
    assert from_disk.categories == in_memory.categories and from_disk.n_train == in_memory.n_train


def test_models_that_need_memory_refuse_a_disk_source(counts_file):
    from scsynth_core.models import get_model_class

    _, path = counts_file
    with open_cells(path) as cells, pytest.raises(ConfigError, match="trains from memory only"):
        get_model_class("pca")("demo").fit(cells)


def test_evaluation_subsample_is_bounded_and_seeded():
    positions = np.arange(10, 5010)
    first = subsample_rows(positions, 3000, seed=1)
    assert len(first) == 3000 and np.all(np.diff(first) > 0) and np.isin(first, positions).all()
    assert np.array_equal(first, subsample_rows(positions, 3000, seed=1))
    assert np.array_equal(subsample_rows(positions[:50], 3000, seed=1), positions[:50])


def test_workflow_steps_stream_when_the_config_asks(counts_file, tmp_path, caplog):
    """``large_data.stream_prepare`` / ``stream_training`` reach the steps: the streamed preparation (a sketch of
    every cell) and training from disk write what the in-memory steps write; a model that cannot read rows trains
    in memory with a warning."""
    import logging

    import torch

    from scsynth_core import steps
    from scsynth_core.data.split import balanced_split, write_split
    from scsynth_core.models import load_model

    _, path = counts_file
    out = {}
    for stream in (False, True):
        prepared = tmp_path / f"prepared_{stream}.h5ad"
        steps.prepare_dataset(
            input=path,
            output=prepared,
            recipe="marouf",
            label_key="group",
            stream=stream,
            sketch_cells=1000,
            chunk_rows=70,
        )
        out[stream] = ad.read_h5ad(prepared)
    assert out[True].obs_names.tolist() == out[False].obs_names.tolist()
    assert out[True].var_names.tolist() == out[False].var_names.tolist()
    assert (out[True].X != out[False].X).nnz == 0
    assert out[True].obs["cluster"].astype(str).tolist() == out[False].obs["cluster"].astype(str).tolist()

    prepared = tmp_path / "prepared_False.h5ad"
    split = tmp_path / "split.tsv"
    write_split(split, balanced_split(out[False].obs["cluster"], test_fraction=0.2, seed=0))
    weights = {}
    for stream in (False, True):
        model_path = tmp_path / f"cscgan_{stream}.pt"
        steps.train_model(
            prepared=prepared,
            split=split,
            output=model_path,
            train_log=tmp_path / f"log_{stream}.tsv",
            model="cscgan",
            preset="demo",
            params=TINY,
            seed=3,
            device="cpu",
            progress=False,
            stream=stream,
        )
        weights[stream] = load_model(model_path, device="cpu")._generator.state_dict()
    assert all(torch.equal(weights[True][key], value) for key, value in weights[False].items())

    with caplog.at_level(logging.WARNING, logger="scsynth"):
        steps.train_model(
            prepared=prepared,
            split=split,
            output=tmp_path / "pca.pt",
            train_log=tmp_path / "pca.tsv",
            model="pca",
            preset="demo",
            seed=0,
            device="cpu",
            progress=False,
            stream=True,
        )
    assert "pca reads its training cells into memory" in caplog.text
