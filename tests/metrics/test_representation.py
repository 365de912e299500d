"""The shared representation: PCA of log(LSN + 1) fitted on real cells, saved once, projected everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA

from scsynth_core.errors import DataError
from scsynth_core.metrics.representation import SharedRepresentation, fit_representation, log_lsn


def test_log_lsn_known_answer():
    X = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0]]))
    out = log_lsn(X, target_sum=4).toarray()
    np.testing.assert_allclose(out, [[np.log(2.0), np.log(4.0), 0.0], [0.0, 0.0, 0.0]])


def test_projection_equals_sklearn_pca_and_survives_save_load(demo_counts, tmp_path):
    rep = fit_representation(demo_counts, seed=0)
    assert rep.n_components == 50  # 700 cells // 5 = 140 > 50
    reference = PCA(50, svd_solver="arpack", random_state=0).fit(log_lsn(demo_counts.X))
    np.testing.assert_allclose(rep.transform(demo_counts), reference.transform(log_lsn(demo_counts.X)), atol=1e-4)
    rep.save(tmp_path / "rep.npz")
    loaded = SharedRepresentation.load(tmp_path / "rep.npz")
    np.testing.assert_array_equal(loaded.transform(demo_counts), rep.transform(demo_counts))
    assert loaded.var_names == rep.var_names


def test_small_sets_get_fewer_components_and_lsn_input_projects_like_counts(demo_counts):
    small = demo_counts[:100].copy()
    rep = fit_representation(small)
    assert rep.n_components == 20  # capped at n_cells // 5
    lsn = small.copy()
    lib = np.asarray(lsn.X.sum(1)).ravel()
    lsn.X = sp.csr_matrix(sp.diags(20_000 / lib) @ lsn.X)
    np.testing.assert_allclose(rep.transform(lsn), rep.transform(small), atol=1e-4)


def test_mismatched_genes_and_bad_files(demo_counts, tmp_path):
    rep = fit_representation(demo_counts[:200].copy())
    with pytest.raises(DataError, match="different genes"):
        rep.transform(demo_counts[:, :100].copy())
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(DataError, match="not a saved representation"):
        SharedRepresentation.load(tmp_path / "bad.npz")


def test_protocol_pca_keeps_every_compared_cell_out_of_its_fit(demo_counts):
    """Cells inside a PCA's fit project differently from cells outside it: the protocol fits on training cells
    minus the control, so real control vs test is fair, while the same cells against an in-fit test set are not."""
    import anndata as ad

    from scsynth_core.metrics.realism import realism_metrics
    from scsynth_core.metrics.representation import control_rows, fit_protocol_representation, protocol_cells

    cells = demo_counts.copy()
    cells.obs["split"] = np.where(np.random.default_rng(0).random(cells.n_obs) < 0.3, "test", "train")
    fit, control, test = protocol_cells(cells, seed=0)
    assert len({*fit.obs_names} & {*control.obs_names}) == 0 and control.n_obs == test.n_obs
    assert fit.n_obs + control.n_obs == (cells.obs["split"] == "train").sum()
    assert np.array_equal(control_rows(490, 210, seed=3), control_rows(490, 210, seed=3))
    fair = realism_metrics(test, control, representation=fit_protocol_representation(cells), n_trees=200)
    biased = realism_metrics(test, control, representation=fit_representation(ad.concat([fit, test])), n_trees=200)
    assert 0.35 < fair["rf_auc_mean"] < 0.65
    assert biased["rf_auc_mean"] > 0.75  # the in-fit test cells stand out: a generator would be judged unfairly


def test_marouf_representation_equals_scanpy_pipeline(demo_counts, tmp_path):
    """Marouf's representation (log LSN, top genes by Cell Ranger dispersion, scaled, PCA of the real cells) as
    one projection equals scanpy's steps done by hand: the same genes, the same scaled values' PCs."""
    import anndata as ad
    import scanpy as sc

    from scsynth_core.metrics.representation import fit_marouf_representation

    real = demo_counts[:300].copy()
    rep = fit_marouf_representation(real, n_top_genes=100, n_components=20, seed=0)
    assert rep.kind == "marouf" and rep.n_components == 20
    work = ad.AnnData(log_lsn(real.X).toarray())
    expressed = work.X.any(axis=0)
    assert not expressed.all()  # unexpressed genes are left out before the ranking (scanpy cannot bin them)
    hvg = sc.pp.highly_variable_genes(work[:, expressed], flavor="cell_ranger", n_top_genes=100, inplace=False)
    kept = np.abs(rep.components).sum(axis=0) > 0
    np.testing.assert_array_equal(kept[expressed], hvg["highly_variable"].to_numpy())
    assert kept.sum() == 100
    scaled = work[:, kept].copy()
    sc.pp.scale(scaled)
    expected = PCA(20, svd_solver="arpack", random_state=0).fit(scaled.X)
    np.testing.assert_allclose(rep.transform(real), expected.transform(scaled.X), atol=1e-4)
    # other cells get the real cells' genes, means and sds: their scaled values, not their own
    other = demo_counts[300:].copy()
    lsn = log_lsn(other.X)[:, kept].toarray()
    mu, sd = scaled.var["mean"].to_numpy(), scaled.var["std"].to_numpy()
    np.testing.assert_allclose(rep.transform(other), expected.transform((lsn - mu) / sd), atol=1e-4)
    rep.save(tmp_path / "rep.npz")
    assert SharedRepresentation.load(tmp_path / "rep.npz").kind == "marouf"


def test_protocol_representation_kinds_fit_on_different_cells(demo_counts):
    """scsynth: fitted on the training cells minus the control's; marouf: on the real test cells, whose
    projection is then centred (their own mean removed) while the fit cells' mean is not theirs."""
    from scsynth_core.errors import ConfigError
    from scsynth_core.metrics.representation import fit_protocol_representation, protocol_cells

    cells = demo_counts.copy()
    cells.obs["split"] = np.where(np.random.default_rng(1).random(cells.n_obs) < 0.3, "test", "train")
    fit, _, test = protocol_cells(cells, seed=0)
    ours = fit_protocol_representation(cells, seed=0)
    marouf = fit_protocol_representation(cells, seed=0, kind="marouf")
    assert ours.kind == "scsynth" and marouf.kind == "marouf"
    np.testing.assert_allclose(marouf.transform(test).mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(ours.transform(fit).mean(axis=0), 0, atol=1e-3)
    assert np.abs(ours.transform(test).mean(axis=0)).max() > 0.05
    with pytest.raises(ConfigError, match="realism.representation"):
        fit_protocol_representation(cells, kind="seurat")
