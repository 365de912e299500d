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
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
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


# ------------------------------------------------------------------------------- Segerstolpe (treppner_segerstolpe)


def test_mad_outliers_known_answers_as_scater_isoutlier():
    # one batch: median 3, MAD 1.4826 * median(|2, 1, 0, 1, 97|) = 1.4826, upper limit 3 + 3 * 1.4826 = 7.45
    one = np.array(["0"] * 7)
    out, limits = pp.mad_outliers(np.array([1, 2, 3, 4, 100]), one[:5], nmads=3, side="higher")
    assert out.tolist() == [False, False, False, False, True] and limits["0"] == pytest.approx(7.4478)
    # log scale, lower side: log2 of 2, 4, 8, 16, 32 has median 3 and MAD 1.4826; 2^(3 - 4.4478) = 0.367: a zero is
    # always low, 0.5 is not (log2 = -1 > -1.45)
    out, limits = pp.mad_outliers(
        np.array([2, 4, 8, 16, 32, 0, 0.5]), one, nmads=3, side="lower", log=True, threshold_cells=np.arange(7) < 5
    )
    assert out.tolist() == [False] * 5 + [True, False] and limits["0"] == pytest.approx(2 ** (3 - 3 * 1.4826))
    # a batch without threshold cells takes the median of the other batches' medians and MADs (share.missing)
    values = np.array([10, 11, 12, 20, 22, 24, 30, 33, 36, 14.0, 16])
    batches = np.array(list("aaabbbccc") + ["x", "x"])
    out, limits = pp.mad_outliers(values, batches, nmads=1, side="lower", threshold_cells=batches != "x")
    # medians 11, 22, 33 -> 22; MADs 1.4826 * (1, 2, 3) -> 2.965; limit 22 - 2.965 = 19.03 for batch x
    assert limits["x"] == pytest.approx(22 - 2 * 1.4826) and out[-2:].tolist() == [True, True]
    assert limits["a"] == pytest.approx(11 - 1.4826) and not out[:9].any()


def segerstolpe_like(seed: int) -> ad.AnnData:
    """100 cells shaped like the Segerstolpe download (donor, well quality, cell type, ERCC rows, a gene symbol
    listed twice), built so that no ordinary cell is a 3-MAD outlier: within each donor, library factors (0.8 to
    1.2) and expressed-gene counts (80 to 100) are evenly spaced (an even spread stays within 1.35 of its MADs),
    the library is mostly marker counts (Poisson noise of 3 % of it), spike-ins are a fixed 10 counts per gene.
    Planted: cell 0 expresses 5 genes (low library and genes), cell 1 has 50x the spike-ins, cell 2 is a
    'low quality cell', cell 3 has no spike-ins (kept, left out of the gene selection), donor HP1504901 has a fifth
    of the others' counts (low against the other donors' thresholds), donor AZ has no spike-ins (as in the data)."""
    rng = np.random.default_rng(seed)
    donors = np.array(["D1"] * 40 + ["D2"] * 40 + ["HP1504901"] * 10 + ["AZ"] * 10)
    types = np.where(np.arange(100) % 2 == 0, "alpha", "beta")
    means = np.full((100, 100), 2.0)
    means[types == "alpha", :20] = 50.0
    means[types == "beta", 20:40] = 50.0
    factors, counts = np.zeros(100), np.zeros(100, dtype=int)
    for donor in np.unique(donors):
        rows = np.flatnonzero(donors == donor)
        factors[rows] = rng.permutation(np.linspace(0.8, 1.2, len(rows)))
        counts[rows] = rng.permutation(np.linspace(40, 60, len(rows)).round().astype(int))
    means *= (factors * np.where(donors == "HP1504901", 0.2, 1.0))[:, None]
    expressed = np.zeros((100, 100), dtype=bool)
    expressed[:, :40] = True
    for i, k in enumerate(counts):
        expressed[i, 40 + rng.choice(60, size=k, replace=False)] = True
    expressed[0] = False
    expressed[0, :5] = True
    genes = np.where(expressed, 1 + rng.poisson(means), 0)
    spikes = np.full((100, 5), 10)
    spikes[1] *= 50
    spikes[3] = 0
    spikes[donors == "AZ"] = 0
    quality = np.where(np.arange(100) == 2, "low quality cell", "OK")
    obs = pd.DataFrame(
        {"donor": donors, "well_quality": quality, "cell_type": types}, index=[f"cell{i}" for i in range(100)]
    )
    names = [f"G{j}" for j in range(100)]
    names[99] = "G5-1"  # anndata's name for a second row of symbol G5
    var = pd.DataFrame(index=names + [f"ERCC-0000{j}" for j in range(5)])
    return ad.AnnData(sp.csr_matrix(np.hstack([genes, spikes]).astype(np.float32)), obs=obs, var=var)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_treppner_segerstolpe_drops_the_known_cells(seed):
    data = segerstolpe_like(seed)
    out = pp.prepare(data, recipe="treppner_segerstolpe", label_key="cell_type", n_top_genes=30)
    dropped = set(data.obs_names) - set(out.obs_names)
    hp = set(data.obs_names[data.obs["donor"] == "HP1504901"])
    assert dropped == {"cell0", "cell1", "cell2"} | hp
    derived = out.uns["scsynth_prepare"]["derived"]
    # cell 0 fails all three; the HP1504901 cells have low libraries and, with the others' spike-ins, high ERCC %
    counts = [derived[k] for k in ("n_low_quality", "n_low_library", "n_low_detected", "n_high_spikes")]
    assert counts == [1, 1 + 10, 1, 2 + 10] and derived["spike_genes"] == 5
    assert derived["n_hvg_cells"] == out.n_obs - 10 - 1  # without donor AZ and cell 3 (no spike-ins)
    assert out.n_vars == 30 and not out.var_names.str.startswith("ERCC-").any() and "G5-1" not in out.var_names
    assert (out.obs["cluster"].astype(str) == out.obs["cell_type"]).all()
    assert (out.X != data[out.obs_names, out.var_names].X).nnz == 0  # raw counts


def test_treppner_segerstolpe_donors_judged_by_their_own_thresholds_stay():
    data = segerstolpe_like(0)
    own = pp.prepare(data, recipe="treppner_segerstolpe", label_key="cell_type", n_top_genes=30, threshold_exclude=[])
    assert set(data.obs_names) - set(own.obs_names) == {"cell0", "cell1", "cell2"}


def test_treppner_segerstolpe_genes_are_scanpys_seurat_choice_per_donor():
    import scanpy as sc

    data = segerstolpe_like(0)
    out = pp.prepare(data, recipe="treppner_segerstolpe", label_key="cell_type", n_top_genes=30)
    cells = [c for c in out.obs_names if c != "cell3" and data.obs.loc[c, "donor"] != "AZ"]
    work = data[cells, [g for g in data.var_names if g.startswith("G") and g != "G5-1"]].copy()
    sc.pp.normalize_total(work)
    sc.pp.log1p(work)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = sc.pp.highly_variable_genes(work, flavor="seurat", n_top_genes=30, batch_key="donor", inplace=False)
    assert set(out.var_names) == set(work.var_names[table["highly_variable"].to_numpy()])


def test_treppner_segerstolpe_needs_labels_and_its_columns():
    data = segerstolpe_like(0)
    with pytest.raises(ConfigError, match="needs label_key"):
        pp.prepare(data, recipe="treppner_segerstolpe")
    with pytest.raises(DataError, match="no obs column 'donor'"):
        pp.prepare(
            data[:, :].copy().__class__(data.X, obs=data.obs.drop(columns="donor"), var=data.var),
            recipe="treppner_segerstolpe",
            label_key="cell_type",
        )
    with pytest.raises(ConfigError, match="threshold_exclude must be a list of strings"):
        pp.prepare(data, recipe="treppner_segerstolpe", label_key="cell_type", threshold_exclude="HP1504901")
