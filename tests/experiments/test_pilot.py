"""The pilot experiment's library parts (Treppner 2021): pilot draws, the reference embedding, the evaluation of one
synthetic set (known answers on constructed data), the tables and figures."""

from __future__ import annotations

from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, DataError
from scsynth_core.experiments.pilot import count_difference_table, draw_pilot, pilot_indices
from scsynth_core.metrics.pilot import build_pilot_reference, evaluate_pilot_set


@pytest.fixture(scope="module")
def three_clusters() -> ad.AnnData:
    """300 cells x 60 genes: three NB clusters of 100 cells, each with its own 20 marker genes."""
    rng = np.random.default_rng(0)
    means = np.full((3, 60), 0.3)
    for k in range(3):
        means[k, 20 * k : 20 * (k + 1)] = 8.0
    labels = np.repeat(["0", "1", "2"], 100)
    mu = means[labels.astype(int)]
    X = rng.negative_binomial(5, 5 / (5 + mu)).astype(np.float32)
    obs = pd.DataFrame({"cluster": pd.Categorical(labels)}, index=[f"c{i}" for i in range(300)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(60)]))


@pytest.fixture(scope="module")
def reference(three_clusters):
    return build_pilot_reference(three_clusters, n_pcs=10, n_neighbors=15, seed=0)


def test_pilot_indices_are_seeded_and_respect_replacement():
    a = pilot_indices(1000, 384, seed=3)
    np.testing.assert_array_equal(a, pilot_indices(1000, 384, seed=3))
    assert not np.array_equal(a, pilot_indices(1000, 384, seed=4))
    assert len(np.unique(a)) < 384  # with replacement (the authors' code): 384 of 1000 repeat some cells
    b = pilot_indices(1000, 384, seed=3, replace=False)
    assert len(np.unique(b)) == 384 and b.max() < 1000
    with pytest.raises(DataError, match="without replacement"):
        pilot_indices(100, 384, seed=0, replace=False)
    with pytest.raises(ConfigError):
        pilot_indices(100, 1, seed=0)


def test_draw_pilot_makes_repeated_cells_unique(three_clusters):
    pilot = draw_pilot(three_clusters, 250, seed=0)
    assert pilot.n_obs == 250 and pilot.obs_names.is_unique
    assert set(pilot.obs_names.str.replace(r"-\d+$", "", regex=True)) <= set(three_clusters.obs_names)


def test_reference_holds_what_projection_and_the_metrics_need(reference, three_clusters):
    from scsynth_core.metrics.pilot import ReferenceSpace

    assert reference.obsm["X_umap"].shape == (300, 2) and reference.obsm["X_pca"].shape == (300, 10)
    space = ReferenceSpace(reference)  # the refitted UMAP is the reference's embedding (seeded)
    np.testing.assert_allclose(space.umap.embedding_, reference.obsm["X_umap"], rtol=1e-5)
    # projecting the original cells with the stored mean and loadings gives their PCs back
    np.testing.assert_allclose(space.embed(three_clusters).obsm["X_pca"], reference.obsm["X_pca"], atol=1e-3)
    assert (reference.obs["ground_truth"].astype(str).to_numpy() == three_clusters.obs["cluster"].to_numpy()).all()
    assert (reference.layers["counts"] != three_clusters.X).nnz == 0


def test_a_faithful_copy_scores_like_the_original(reference, three_clusters):
    out = evaluate_pilot_set(reference, three_clusters, resolution=0.4, n_neighbors=15, seed=0)
    assert out["count_difference"] == 0.0  # every copied cell finds its cluster
    assert out["ari"] > 0.95  # the fresh clustering recovers the three clusters
    # UMAP's transform places copies near, not on, their originals: same order of magnitude (0.18 vs 0.13)
    assert out["dbi_synthetic"] == pytest.approx(out["dbi_original"], rel=0.5)
    assert out["mad_median"] == out["mad_iqr"] == out["mad_zero_fraction"] == 0.0
    # the authors' values: same counts under the same labels give the original's count DBI; paired by row, a copy
    # in the original's order has Rand index 1
    assert out["dbi_counts_synthetic"] == pytest.approx(out["dbi_counts_original"])
    assert 0 < out["dbi_counts_original"] < 1 and out["rand_index"] == 1.0
    embedded = out["embedded"]
    assert (embedded.obs["transferred"].to_numpy() == three_clusters.obs["cluster"].to_numpy()).all()


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_a_set_of_one_cluster_has_the_known_count_difference(reference, three_clusters):
    only_first = three_clusters[np.r_[np.arange(100), np.arange(100), np.arange(100)]].copy()
    only_first.obs_names_make_unique()
    out = evaluate_pilot_set(reference, only_first, resolution=0.4, n_neighbors=15, seed=0)
    assert out["count_difference"] == 200 + 100 + 100  # |100 - 300| + |100 - 0| + |100 - 0|
    assert out["n_synthetic"] == 300 and out["mad_zero_fraction"] > 0.1
    assert np.isnan(out["dbi_counts_synthetic"])  # one transferred cluster: the index is undefined
    # cells paired by row agree on the 3 x C(100, 2) pairs of the same original cluster only, of C(300, 2) pairs
    assert out["rand_index"] == pytest.approx(3 * 4950 / 44850)


def test_wrong_genes_and_non_counts_are_refused(reference, three_clusters):
    with pytest.raises(DataError, match="genes"):
        evaluate_pilot_set(reference, three_clusters[:, ::-1].copy(), resolution=0.4)
    fractional = three_clusters.copy()
    fractional.X = fractional.X * 0.5
    with pytest.raises(DataError):
        evaluate_pilot_set(reference, fractional, resolution=0.4)


def test_count_difference_table_means_and_sds_by_size():
    table = pd.DataFrame(
        {
            "model": ["a", "a", "a", "b"],
            "pilot_size": [384, 384, 768, 384],
            "seed": [0, 1, 0, 0],
            "count_difference": [10.0, 20.0, 5.0, 7.0],
        }
    )
    out = count_difference_table(table).set_index("model")
    assert out.loc["a", "mean_384"] == 15.0 and out.loc["a", "sd_384"] == pytest.approx(7.1, abs=0.05)
    assert out.loc["a", "mean_768"] == 5.0 and out.loc["b", "mean_384"] == 7.0
    assert list(out.columns) == ["mean_384", "mean_768", "sd_384", "sd_768"]


def test_count_difference_table_keeps_sd_columns_with_one_seed():
    table = pd.DataFrame({"model": ["a", "a"], "pilot_size": [96, 192], "seed": [0, 0], "count_difference": [3.0, 4.0]})
    out = count_difference_table(table)
    assert list(out.columns) == ["model", "mean_96", "mean_192", "sd_96", "sd_192"]
    assert out[["sd_96", "sd_192"]].isna().all().all()


def test_gene_marginal_figure_picks_genes_from_high_to_low_expression(three_clusters):
    from scsynth_core.plots.pilot import example_genes, plot_gene_marginals

    X = sp.csr_matrix(np.array([[5, 0, 1, 0], [7, 0, 0, 0], [6, 2, 0, 0]], dtype=np.float32))
    np.testing.assert_array_equal(example_genes(X, 3), [0, 1, 2])  # most to least expressed; gene 3 is all zero
    fig = plot_gene_marginals(
        {"original": three_clusters.X, "copy": three_clusters.X}, three_clusters.var_names, n_genes=3
    )
    assert len(fig.axes) == 3 and all(len(ax.patches) == 2 for ax in fig.axes)


def test_gene_marginals_of_a_diverged_model_draw_a_bounded_number_of_bins(three_clusters):
    """A synthetic set with huge counts (a too-short scVI training drew up to its 1e8 clamp, and one bin per count
    took 11 GB) is drawn with at most MAX_COUNT_BINS bins."""
    from scsynth_core.plots.pilot import MAX_COUNT_BINS, plot_gene_marginals

    real = three_clusters.X
    diverged = real.copy()
    diverged.data = np.full_like(diverged.data, 1e6)
    fig = plot_gene_marginals({"original": real, "diverged": diverged}, three_clusters.var_names, genes=[0])
    patches = fig.axes[0].patches
    assert len(patches) == 2
    # a filled step histogram's outline has at most four vertices per bin: bounded by the cap, not by 1e6
    assert all(len(p.get_xy()) <= 4 * (MAX_COUNT_BINS + 1) + 1 for p in patches)
    assert fig.axes[0].get_xlim()[1] > 1e6


def test_count_dbi_is_the_authors_rms_scatter_index():
    """DBI on count matrices as the authors' notebook computes it: S_k = RMS distance to the centroid (p = q = 2)."""
    from scsynth_core.metrics.clustering import davies_bouldin

    X = sp.csr_matrix(np.array([[0.0], [0.0], [3.0], [10.0], [10.0], [13.0]]))
    labels = ["a", "a", "a", "b", "b", "b"]
    # centroids 1 and 11 (M = 10); S = sqrt((1 + 1 + 4) / 3) = sqrt(2) in both clusters (the mean distance is 4/3)
    assert davies_bouldin(X, labels) == pytest.approx(2 * np.sqrt(2) / 10)
    far = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0], [1000.0, 1000.0], [1001.0, 999.0]]))
    assert davies_bouldin(far, ["x", "x", "y", "y"]) < 0.01  # well-separated clusters: a small index


def test_paired_rand_index_known_answers():
    from scsynth_core.metrics.pilot import paired_rand_index

    labels = np.array(["0", "0", "1", "1", "2", "2"])
    assert paired_rand_index(labels, labels) == 1.0
    renamed = np.array([{"0": "b", "1": "c", "2": "a"}[x] for x in labels])
    assert paired_rand_index(labels, renamed) == 1.0  # a permutation of the label names: the same partition
    # every cell in one cluster: only the 3 same-cluster pairs of `labels` agree, of 15 pairs
    assert paired_rand_index(labels, np.zeros(6)) == pytest.approx(3 / 15)
    with pytest.raises(DataError, match="by row"):
        paired_rand_index(labels, labels[:5])


def test_gene_zero_fractions_dense_and_sparse():
    from scsynth_core.metrics.pilot import gene_zero_fractions

    X = np.array([[0, 1, 0], [0, 2, 5], [0, 0, 1], [0, 3, 0]], dtype=np.float32)
    np.testing.assert_allclose(gene_zero_fractions(X), [1.0, 0.25, 0.5])
    np.testing.assert_allclose(gene_zero_fractions(sp.csr_matrix(X)), [1.0, 0.25, 0.5])


def test_example_genes_setting_per_dataset():
    from scsynth_core.experiments.pilot import DEFAULT_EXAMPLE_GENES, dataset_example_genes

    datasets = ["pbmc4k", "segerstolpe2016"]
    assert dataset_example_genes(6, "pbmc4k", datasets) == 6
    assert dataset_example_genes(["INS", "GCG"], "pbmc4k", datasets) == ["INS", "GCG"]
    by_dataset = {"segerstolpe2016": ["INS", "GCG"]}
    assert dataset_example_genes(by_dataset, "segerstolpe2016", datasets) == ["INS", "GCG"]
    assert dataset_example_genes(by_dataset, "pbmc4k", datasets) == DEFAULT_EXAMPLE_GENES
    with pytest.raises(ConfigError, match=r"\['zeisel'\].*pilot.datasets"):
        dataset_example_genes({"zeisel": 3}, "pbmc4k", datasets)
    with pytest.raises(ConfigError, match="segerstolpe2016"):
        dataset_example_genes({"segerstolpe2016": 0}, "segerstolpe2016", datasets)


def test_example_gene_columns_by_name_keep_the_order_and_name_missing_genes():
    from scsynth_core.experiments.pilot import example_gene_columns

    names = ["CD74", "INS", "GCG", "PRSS1"]
    X = sp.csr_matrix(np.array([[1, 9, 0, 3], [2, 8, 0, 4]], dtype=np.float32))
    np.testing.assert_array_equal(example_gene_columns(["PRSS1", "CD74"], names, X, dataset="d"), [3, 0])
    np.testing.assert_array_equal(example_gene_columns(2, names, X, dataset="d"), [1, 0])  # highest, lowest mean
    with pytest.raises(DataError, match=r"\['PAX6', 'CASR'\].*segerstolpe2016"):
        example_gene_columns(["INS", "PAX6", "CASR"], names, X, dataset="segerstolpe2016")


def test_gene_marginals_wrap_into_rows_of_four(three_clusters):
    from scsynth_core.plots.pilot import plot_gene_marginals

    fig = plot_gene_marginals({"original": three_clusters.X}, three_clusters.var_names, genes=[0, 1, 2, 3, 4, 5])
    assert len(fig.axes) == 6  # the two empty places of the second row are removed
    assert [ax.get_title() for ax in fig.axes] == [f"g{j}" for j in range(6)]
    rows = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    assert len(rows) == 2


def _zero_table(n_genes: int = 5, shift: float = 0.0) -> pd.DataFrame:
    base = np.linspace(0.2, 0.9, n_genes)
    return pd.DataFrame(
        {
            "gene": [f"g{j}" for j in range(n_genes)],
            "original": base,
            "pilot": base,
            "pilot_with_added_zeros": base + 0.05,
            "pilot_synthetic": base + shift,
            "pilot_with_added_zeros_synthetic": base + 0.05 + shift,
        }
    )


def test_added_zeros_figure_has_a_box_per_data_set_and_per_model_and_training_set():
    from scsynth_core.plots.pilot import plot_gene_zero_fractions

    fig = plot_gene_zero_fractions({"noise": _zero_table(), "scdbm": _zero_table(shift=-0.1)})
    ax = fig.axes[0]
    assert len(ax.patches) == 3 + 2 * 2  # original, pilot, pilot + zeros; two boxes per model
    assert [t.get_text() for t in ax.get_xticklabels()][-2:] == ["noise", "scdbm"]
    with pytest.raises(ValueError, match="pilot_with_added_zeros_synthetic"):
        plot_gene_zero_fractions({"noise": _zero_table().drop(columns="pilot_with_added_zeros_synthetic")})


def test_zero_inflation_check_keeps_per_gene_zero_fractions(tmp_path, three_clusters):
    import json

    from scsynth_core.experiments.pilot import zero_inflation_check
    from scsynth_core.metrics.pilot import gene_zero_fractions

    prepared = tmp_path / "prepared.h5ad"
    three_clusters.write_h5ad(prepared)
    zero_inflation_check(
        prepared=prepared,
        output=tmp_path / "z.json",
        genes_output=tmp_path / "z.tsv",
        model="noise",
        size=96,
        seed=0,
        device="cpu",
    )
    genes = pd.read_csv(tmp_path / "z.tsv", sep="\t")
    assert list(genes.columns) == [
        "gene",
        "original",
        "pilot",
        "pilot_synthetic",
        "pilot_with_added_zeros",
        "pilot_with_added_zeros_synthetic",
    ]
    assert list(genes["gene"]) == list(three_clusters.var_names)
    np.testing.assert_allclose(genes["original"], gene_zero_fractions(three_clusters.X), atol=1e-6)
    # zeroing entries can only raise a gene's zero fraction
    assert (genes["pilot_with_added_zeros"] >= genes["pilot"]).all()
    assert genes["pilot_with_added_zeros"].mean() > genes["pilot"].mean() + 0.05
    summary = json.loads((tmp_path / "z.json").read_text())
    runs = {run["training_set"]: run for run in summary["runs"]}
    assert runs["pilot"]["zero_fraction_training"] == pytest.approx(genes["pilot"].mean(), abs=1e-5)


def test_figures_draw_every_pilot_figure_with_named_genes(tmp_path, reference, monkeypatch):
    """Each output gets its figure (PNG encoding, most of the time, is left to the default run's test)."""
    import scsynth_core.runtime
    from scsynth_core.experiments.pilot import figures

    drawn = {}
    monkeypatch.setattr(scsynth_core.runtime, "save_figure", lambda fig, path: drawn.__setitem__(path.stem, fig))

    reference.write_h5ad(tmp_path / "reference.h5ad")
    example = reference.copy()
    example.X = example.layers["counts"]
    example.uns["pilot"] = {"dataset": "d", "model": "noise", "pilot_size": 96, "seed": 0}
    example.write_h5ad(tmp_path / "example.h5ad")
    _zero_table(reference.n_vars).to_csv(tmp_path / "zeros.tsv", sep="\t", index=False)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"model": "noise", "pilot_size": [48, 48, 96, 96], "seed": [0, 1, 0, 1]})
    for column in [
        "dbi_synthetic",
        "dbi_original",
        "ari",
        "dbi_counts_synthetic",
        "dbi_counts_original",
        "rand_index",
        "mad_median",
        "mad_iqr",
        "mad_cv",
        "mad_zero_fraction",
    ]:
        table[column] = rng.uniform(0.1, 1.0, len(table))
    table.to_csv(tmp_path / "replicates.tsv", sep="\t", index=False)
    names = ["dbi", "ari", "mad", "marginals", "added_zeros", "example_umaps"]
    outputs = {name: tmp_path / f"{name}.png" for name in names}
    kwargs = {
        "reference": tmp_path / "reference.h5ad",
        "examples": {"noise": tmp_path / "example.h5ad"},
        "zero_genes": {"noise": tmp_path / "zeros.tsv"},
        "dataset": "d",
        **outputs,
    }
    with pytest.raises(DataError, match=r"\['INS'\].*'d'"):
        figures(replicates=tmp_path / "replicates.tsv", example_genes=["g3", "INS"], **kwargs)
    assert not drawn  # the gene check comes first
    figures(replicates=tmp_path / "replicates.tsv", example_genes=["g3", "g1"], **kwargs)
    assert set(drawn) == set(names)
    # Fig. 2: UMAP-space and count DBI, ARI and paired Rand index side by side; one panel per named gene, in order
    assert len(drawn["dbi"].axes) == len(drawn["ari"].axes) == 2
    assert [ax.get_title() for ax in drawn["marginals"].axes] == ["g3", "g1"]
    assert [ax.get_title() for ax in drawn["example_umaps"].axes] == ["noise"]  # one panel per model
    assert len(drawn["added_zeros"].axes[0].patches) == 3 + 2
    table.drop(columns="rand_index").to_csv(tmp_path / "old.tsv", sep="\t", index=False)
    with pytest.raises(DataError, match=r"rand_index.*forcerun pilot_replicates"):
        figures(replicates=tmp_path / "old.tsv", example_genes=2, **kwargs)


def test_scdbm_reference_is_scdbm_with_the_notebook_settings_over_any_preset():
    from scsynth_core.experiments.pilot import base_model, resolve_model
    from scsynth_core.models.specs import model_spec

    assert base_model("scdbm_reference") == "scdbm" and base_model("noise") == "noise"
    model, params = resolve_model("scdbm_reference", {"pretrain_epochs": [2, 1], "burn_in": 3, "thinning": 2})
    assert model == "scdbm" and params["thinning"] == 2  # the model's own settings stay where the reference is silent
    settings = model_spec("scdbm").settings("demo", params)  # valid scDBM hyperparameters, the demo preset under
    assert settings["pretrain_epochs"] == [60, 40] and settings["finetune_epochs"] == 10 and settings["burn_in"] == 50
    assert settings["hidden_sizes"] == [4, 2] and settings["lr_schedule"] == "reference"
    assert settings["optimizer"] == "sgd" and settings["finetune_batch_size"] is None
    assert settings["gibbs_scheme"] == "blocked" and settings["dispersion_keep_means"] is False
    assert resolve_model("noise", {"a": 1}) == ("noise", {"a": 1})


def test_scdbm_reference_learning_rates_are_the_notebooks_1e_11():
    from scsynth_core.experiments.pilot import resolve_model
    from scsynth_core.models.scdbm import ScDBM

    model = ScDBM("paper", **resolve_model("scdbm_reference")[1])
    assert {model.lr_at("nb_rbm", e) for e in range(1, 61)} == {1e-11}  # the 60 epochs reach the 1e-11 entries
    assert model.lr_at("bernoulli_rbm", 40) == 1e-11 and model.lr_at("dbm", 1) == pytest.approx(1e-11)


def test_holdout_split_keeps_70_percent_as_the_authors_splitdata():
    from scsynth_core.experiments.pilot import holdout_split

    rows = holdout_split(384, 0.3, seed=4, size=384)
    assert len(rows) == 384 - 115 and len(np.unique(rows)) == len(rows) and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, holdout_split(384, 0.3, seed=4, size=384))
    assert not np.array_equal(rows, holdout_split(384, 0.3, seed=5, size=384))
    assert len(holdout_split(5, 0.3, seed=0, size=5)) == 3  # 1.5 held out rounds to 2, half to even as Julia's
    assert len(holdout_split(10, 0.0, seed=0, size=10)) == 10
    with pytest.raises(ConfigError, match="scdbm_holdout"):
        holdout_split(10, 1.0, seed=0, size=10)
    with pytest.raises(DataError, match="fewer than 2"):
        holdout_split(3, 0.5, seed=0, size=3)


class _CopyModel:
    """Stands in for a count model: records what it was built and trained with, 'generates' training rows."""

    representation = "counts"
    built: ClassVar[list] = []
    trained: ClassVar[list] = []

    def __init__(self, preset, **params):
        type(self).built.append((preset, params))

    def fit(self, adata, **kwargs):
        type(self).trained.append(adata.n_obs)
        self.cells = adata

    def sample(self, n, seed=0, progress=False):
        rows = np.random.default_rng(seed).integers(0, self.cells.n_obs, n)
        return ad.AnnData(sp.csr_matrix(self.cells.X[rows]), var=self.cells.var.copy())


def test_replicates_train_scdbm_variants_on_70_percent_with_their_settings(tmp_path, monkeypatch, three_clusters):
    import scsynth_core.metrics.pilot
    import scsynth_core.models
    from scsynth_core.experiments.pilot import SCDBM_REFERENCE, run_pilot_replicates

    asked = []
    monkeypatch.setattr(scsynth_core.models, "get_model_class", lambda name: asked.append(name) or _CopyModel)
    # the evaluation has its own tests: here only what the replicates train on
    monkeypatch.setattr(scsynth_core.metrics.pilot, "ReferenceSpace", lambda reference: None)
    monkeypatch.setattr(
        scsynth_core.metrics.pilot,
        "evaluate_pilot_set",
        lambda ref, synthetic, **kwargs: {"dbi_synthetic": 1.0, "dbi_original": 1.0, "embedded": synthetic.copy()},
    )
    _CopyModel.built, _CopyModel.trained = [], []
    three_clusters.write_h5ad(tmp_path / "prepared.h5ad")
    for model, holdout in (("scdbm_reference", 0.3), ("noise", 0.3), ("scdbm", 0.0)):
        run_pilot_replicates(
            prepared=tmp_path / "prepared.h5ad",
            reference=tmp_path / "prepared.h5ad",
            output=tmp_path / f"{model}.tsv",
            example=tmp_path / f"{model}.h5ad",
            dataset="d",
            model=model,
            replicates=[[100, 0]],
            params={"burn_in": 7},
            holdout=holdout,
            device="cpu",
        )
    assert asked == ["scdbm", "noise", "scdbm"]  # the variant trains the registered scDBM
    # two instances per job (the early hyperparameter check, the replicate's)
    assert _CopyModel.built[1][1] == {"burn_in": 7} | SCDBM_REFERENCE  # the reference's values win
    assert _CopyModel.built[5][1] == {"burn_in": 7}
    assert _CopyModel.trained == [70, 100, 100]  # scDBM holds 30 of 100 pilot cells out; other models, 0 off
    table = pd.read_csv(tmp_path / "scdbm_reference.tsv", sep="\t")
    assert table.loc[0, "model"] == "scdbm_reference" and table.loc[0, "n_training_cells"] == 70


def test_config_check_accepts_scdbm_reference_only_in_the_pilot():
    from scsynth_core.config import check_config

    registry = {"d": {}}
    check_config({"experiments": ["pilot"], "pilot": {"datasets": ["d"], "models": ["scdbm_reference"]}}, registry)
    with pytest.raises(ConfigError, match="unknown model 'scdbm_reference'"):
        check_config(
            {"experiments": ["realism"], "realism": {"datasets": ["d"], "models": ["scdbm_reference"]}}, registry
        )
