"""Representations (known answers on dense, sparse and torch input) and the three preparation recipes."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.data import preprocess as pp
from scsynth_core.data.bundled import load_pbmc68k_reduced_counts
from scsynth_core.errors import ConfigError, DataError

PBMC4K = Path("/work/shared/data/pbmc4k_scdcc/pbmc4k_scdcc.h5ad")


@pytest.fixture(scope="module")
def demo() -> ad.AnnData:
    return load_pbmc68k_reduced_counts()


@pytest.fixture(scope="module")
def marouf_demo(demo) -> ad.AnnData:
    return pp.prepare(demo, recipe="marouf", seed=0)


# ------------------------------------------------------------------------------------------------ representations

COUNTS = np.array([[1, 3, 0], [0, 0, 0], [2, 2, 4]], dtype=np.int64)
LSN = np.array([[5000, 15000, 0], [0, 0, 0], [5000, 5000, 10000]], dtype=np.float64)


def test_lsn_known_answer_dense():
    out = pp.lsn(COUNTS)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, LSN, rtol=1e-6)
    assert pp.LSN_TARGET == 20_000


def test_lsn_sparse_matches_dense_and_stays_sparse():
    X = sp.csr_matrix(COUNTS)
    out = pp.lsn(X)
    assert sp.issparse(out) and out.nnz == X.nnz
    np.testing.assert_allclose(out.toarray(), LSN, rtol=1e-6)
    assert X.dtype == np.int64 and X.toarray().sum() == 12  # input untouched


def test_lsn_rows_sum_to_target_on_real_block(demo):
    block = demo.X[:128]
    out = pp.to_representation(block, "lsn")
    np.testing.assert_allclose(np.asarray(out.sum(axis=1)).ravel(), 20_000, rtol=1e-5)
    custom = pp.lsn(block.toarray(), target_sum=1e4)
    np.testing.assert_allclose(custom.sum(axis=1), 1e4, rtol=1e-5)


def test_log1p_is_log_of_lsn_and_inverts():
    dense = pp.to_representation(COUNTS, "log1p")
    np.testing.assert_allclose(dense, np.log1p(LSN), rtol=1e-6)
    sparse = pp.to_representation(sp.csr_matrix(COUNTS), "log1p")
    np.testing.assert_allclose(sparse.toarray(), np.log1p(LSN), rtol=1e-6)
    np.testing.assert_allclose(pp.from_representation(dense, "log1p"), LSN, rtol=1e-5)
    back = pp.from_representation(dense, "log1p", library_size=COUNTS.sum(axis=1))
    np.testing.assert_allclose(back, COUNTS, rtol=1e-5, atol=1e-4)
    back_sparse = pp.from_representation(sparse, "log1p", library_size=COUNTS.sum(axis=1))
    np.testing.assert_allclose(back_sparse.toarray(), COUNTS, rtol=1e-5, atol=1e-4)


def test_gene_mean_sd_matches_numpy_in_blocks(demo):
    """The statistics scanpy's ``pp.scale`` standardises with, streamed over row blocks (sparse stays sparse)."""
    counts = demo.X[:300]
    dense = np.asarray(pp.to_representation(counts, "log1p").toarray(), dtype=np.float64)
    mean, sd = pp.gene_mean_sd(counts, "log1p", block_rows=64)  # several blocks, the last one partial
    np.testing.assert_allclose(mean, dense.mean(axis=0), rtol=1e-5, atol=1e-6)
    expressed = dense.std(axis=0) > 0
    np.testing.assert_allclose(sd[expressed], dense.std(axis=0)[expressed], rtol=1e-4)
    assert np.all(sd[~expressed] == 1.0) and (~expressed).any()  # unexpressed genes: s.d. 1, as pp.scale
    dense_mean, dense_sd = pp.gene_mean_sd(counts.toarray(), "log1p")
    np.testing.assert_allclose(dense_mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense_sd, sd, rtol=1e-4)
    with pytest.raises(DataError, match="at least one cell"):
        pp.gene_mean_sd(counts[:0], "log1p")


def test_counts_is_identity_and_lsn_needs_library():
    assert pp.to_representation(COUNTS, "counts") is COUNTS
    assert pp.from_representation(COUNTS, "counts") is COUNTS
    with pytest.raises(ConfigError, match="library_size"):
        pp.from_representation(LSN, "lsn")
    np.testing.assert_allclose(pp.from_representation(LSN, "lsn", library_size=[4, 0, 8]), COUNTS)
    with pytest.raises(ConfigError, match="representation 'zscore'"):
        pp.to_representation(COUNTS, "zscore")


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    t = torch.tensor(COUNTS)
    out = pp.to_representation(t, "lsn")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), LSN, rtol=1e-6)
    logged = pp.to_representation(t, "log1p")
    np.testing.assert_allclose(logged.numpy(), np.log1p(LSN), rtol=1e-6)
    back = pp.from_representation(logged, "log1p", library_size=COUNTS.sum(axis=1))
    np.testing.assert_allclose(back.numpy(), COUNTS, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(pp.library_size(t), [4, 0, 8])


def test_module_does_not_import_torch_or_scanpy():
    code = "import sys, scsynth_core.data.preprocess; print('torch' in sys.modules, 'scanpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "False False"


# ------------------------------------------------------------------------------------------------ recipes: marouf


def _nonincreasing_sizes(cluster: pd.Series) -> None:
    cats = list(cluster.cat.categories)
    assert cats == [str(i) for i in range(len(cats))]
    sizes = cluster.value_counts().reindex(cats).to_numpy()
    assert (np.diff(sizes) <= 0).all(), sizes


def test_marouf_on_demo(demo, marouf_demo):
    out = marouf_demo
    assert out is not demo
    assert out.obs["cluster"].nunique() >= 2
    _nonincreasing_sizes(out.obs["cluster"])
    assert sp.issparse(out.X) and out.X.format == "csr" and out.X.dtype == np.int32
    # X holds the raw counts of the kept cells/genes, untouched.
    ref = demo[out.obs_names, out.var_names].X
    assert (out.X != ref).nnz == 0
    binary = out.X > 0
    assert np.asarray(binary.sum(axis=0)).min() >= 3
    assert np.asarray(binary.sum(axis=1)).min() >= 10
    assert {"bulk_labels", "louvain", "phase"} <= set(out.obs.columns)
    rec = out.uns["scsynth_prepare"]
    assert rec["recipe"] == "marouf" and rec["seed"] == 0
    assert rec["params"]["resolution"] == 0.15 and rec["params"]["min_genes"] == 10
    assert rec["derived"]["n_comps_used"] == 50
    assert rec["derived"]["zheng17_n_top_genes_used"] == 764  # min(1000, 765 expressed genes - 1)


def test_marouf_is_deterministic_and_filters_after_clustering(demo, marouf_demo):
    assert (pp.prepare(demo, recipe="marouf", seed=0).obs["cluster"] == marouf_demo.obs["cluster"]).all()
    # Add one gene seen in 2 cells and one cell with 5 genes: both must be removed, everything else kept.
    extra_gene = sp.csr_matrix(([4, 1], ([0, 1], [0, 0])), shape=(demo.n_obs, 1), dtype=np.int32)
    X = sp.hstack([demo.X, extra_gene], format="csr")
    poor_cell = sp.csr_matrix(([1] * 5, ([0] * 5, [0, 1, 2, 3, 4])), shape=(1, X.shape[1]), dtype=np.int32)
    X = sp.vstack([X, poor_cell], format="csr")
    obs = pd.DataFrame(index=[*demo.obs_names, "poor_cell"])
    var = pd.DataFrame(index=[*demo.var_names, "rare_gene"])
    out = pp.prepare(ad.AnnData(X=X, obs=obs, var=var), recipe="marouf", seed=0)
    assert "poor_cell" not in out.obs_names and "rare_gene" not in out.var_names
    assert out.shape == (demo.n_obs, demo.n_vars)


def test_marouf_clusters_from_labels(demo):
    out = pp.prepare(demo, recipe="marouf", label_key="bulk_labels", cluster_from_labels=True)
    sizes = out.obs["cluster"].value_counts().reindex(out.obs["cluster"].cat.categories).tolist()
    assert sizes == [240, 129, 95, 68, 54, 43, 31, 19, 13, 8]
    names = out.uns["scsynth_prepare"]["derived"]["cluster_names"]
    assert names["0"] == "Dendritic" and names["1"] == "CD14+ Monocyte"
    assert names["9"] == "CD4+/CD45RA+/CD25- Naive T"
    dendritic = out.obs["bulk_labels"] == "Dendritic"
    assert (out.obs.loc[dendritic, "cluster"] == "0").all()
    with pytest.raises(ConfigError, match="label_key"):
        pp.prepare(demo, recipe="marouf", cluster_from_labels=True)


def test_marouf_small_data_falls_back(demo):
    rng = np.random.default_rng(0)
    tiny = ad.AnnData(X=sp.csr_matrix(rng.poisson(1.0, size=(30, 20)).astype(np.int32)))
    with pytest.warns(UserWarning, match="recipe_zheng17 failed"):
        out = pp.prepare(tiny, recipe="marouf", min_genes=1, min_cells=1)
    assert out.n_obs == 30
    assert out.uns["scsynth_prepare"]["derived"]["n_comps_used"] <= 19
    _nonincreasing_sizes(out.obs["cluster"])
    with pytest.raises(DataError, match="too small"):
        pp.prepare(tiny[:2].copy(), recipe="marouf")


# ------------------------------------------------------------------------------------------------ treppner, scanpy


def test_treppner_keeps_exactly_top_genes(demo):
    import scanpy as sc

    out = pp.prepare(demo, recipe="treppner", n_top_genes=300, seed=3)
    assert out.n_vars == 300
    assert out.obs["cluster"].nunique() >= 2
    _nonincreasing_sizes(out.obs["cluster"])
    genes_per_cell = np.asarray((demo[out.obs_names].X > 0).sum(axis=1)).ravel()
    assert genes_per_cell.min() >= 200
    assert (out.X != demo[out.obs_names, out.var_names].X).nnz == 0
    # Independent check of the gene choice: scanpy's own Seurat-flavour top 300 on the same log-normalised cells.
    kept = demo[out.obs_names].copy()
    kept = kept[:, np.asarray((kept.X > 0).sum(axis=0)).ravel() >= 3].copy()
    kept.X = kept.X.astype(np.float32)
    sc.pp.normalize_total(kept)
    sc.pp.log1p(kept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.highly_variable_genes(kept, flavor="seurat", n_top_genes=300)
    assert set(out.var_names) == set(kept.var_names[kept.var["highly_variable"]])
    assert out.uns["scsynth_prepare"]["params"]["resolution"] == 0.4


@pytest.mark.skipif(not PBMC4K.is_file(), reason="shared pbmc4k_scdcc copy absent")
def test_treppner_pbmc4k_default_gene_count():
    data = ad.read_h5ad(PBMC4K)
    out = pp.prepare(data, recipe="treppner", label_key="label", min_genes=10)
    assert out.n_vars == 1000
    assert out.n_obs > 4000
    assert "label" in out.obs.columns and out.obs["cluster"].nunique() >= 5


def test_scanpy_default_clusters_and_labels(demo):
    out = pp.prepare(demo, recipe="scanpy_default", seed=0)
    assert out.obs["cluster"].nunique() >= 2
    _nonincreasing_sizes(out.obs["cluster"])
    assert out.uns["scsynth_prepare"]["derived"]["cluster_source"] == "leiden"
    labelled = pp.prepare(demo, recipe="scanpy_default", label_key="bulk_labels")
    assert (labelled.obs["cluster"].astype(str) == labelled.obs["bulk_labels"].astype(str)).all()
    assert labelled.obs["cluster"].dtype == "category"
    assert all(isinstance(c, str) for c in labelled.obs["cluster"].cat.categories)


# ------------------------------------------------------------------------------------------------ errors and records


def test_unknown_recipe_and_parameter(demo):
    with pytest.raises(ConfigError, match="unknown preparation recipe 'seurat'"):
        pp.prepare(demo, recipe="seurat")
    with pytest.raises(ConfigError, match=r"prepare\[treppner\].*n_hvg"):
        pp.prepare(demo, recipe="treppner", n_hvg=500)
    with pytest.raises(ConfigError, match="min_genes must be a non-negative integer"):
        pp.prepare(demo, recipe="marouf", min_genes="10")
    with pytest.raises(ConfigError, match="resolution must be a non-negative number"):
        pp.prepare(demo, recipe="scanpy_default", resolution=-1)


def test_missing_label_column_and_non_counts(demo):
    with pytest.raises(DataError, match="obs\\['cell_type'\\]"):
        pp.prepare(demo, recipe="scanpy_default", label_key="cell_type")
    logged = ad.AnnData(X=sp.csr_matrix(np.log1p(demo.X[:50].toarray().astype(np.float32))))
    with pytest.raises(DataError, match="not integer"):
        pp.prepare(logged, recipe="scanpy_default")


def test_input_untouched_dense_input_and_h5ad_roundtrip(demo, tmp_path):
    small = demo[:200].copy()
    small.X = small.X.toarray()  # dense input is accepted; output is CSR
    small.obs["cluster"] = "old"
    before = small.X.copy()
    out = pp.prepare(small, recipe="scanpy_default", label_key="bulk_labels", min_cells=1)
    assert np.array_equal(small.X, before) and list(small.obs["cluster"].unique()) == ["old"]
    assert sp.issparse(out.X) and out.X.format == "csr"
    assert (out.obs["cluster_input"] == "old").all()
    path = tmp_path / "prepared.h5ad"
    out.write_h5ad(path)
    back = ad.read_h5ad(path)
    rec = back.uns["scsynth_prepare"]
    assert rec["recipe"] == "scanpy_default" and rec["label_key"] == "bulk_labels"
    assert rec["params"]["min_cells"] == 1 and rec["seed"] == 0


def test_expression_scale_maps_log1p_cells_back_to_lsn(demo_counts):
    """Cells a log1p model generates are evaluated on the LSN scale: real cells written as log1p values
    come back as their LSN values (negatives of Gaussian models clipped at 0); other outputs are untouched."""
    import anndata as ad

    from scsynth_core.data.preprocess import expression_scale, to_representation

    cells = demo_counts[:50]
    logged = to_representation(cells.X, "log1p").tocsr()
    logged[0, 0] = -0.3  # a Gaussian model's negative value
    generated = ad.AnnData(logged, uns={"scsynth": {"representation": "log1p"}})
    back = expression_scale(generated)
    expected = to_representation(cells.X, "lsn").toarray()
    expected[0, 0] = 0.0
    np.testing.assert_allclose(back.X.toarray(), expected, rtol=1e-5, atol=1e-2)
    assert generated.X[0, 0] == pytest.approx(-0.3)  # the input is not modified
    lsn_cells = ad.AnnData(cells.X, uns={"scsynth": {"representation": "lsn"}})
    assert expression_scale(lsn_cells) is lsn_cells and expression_scale(cells) is cells
