"""MichiGAN's classical baselines (scsynth_core.models.classic): probabilistic PCA and the Gaussian mixture."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.linalg import subspace_angles

from scsynth_core.data.preprocess import to_representation
from scsynth_core.data.simulate import simulate_splatter
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models.base import MODELS, available_models, load_model
from scsynth_core.models.classic import PPCA, GMMModel, PCAGaussianMixture, PPCAModel, principal_axes


@pytest.fixture(scope="module")
def low_rank():
    """4,000 draws of x = W z + mu + e with a known 3-dimensional W in 30 dimensions and noise variance 0.5."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(30, 3)) * np.array([3.0, 2.0, 1.5])
    mu = rng.normal(size=30)
    z = rng.standard_normal((4000, 3))
    X = z @ W.T + mu + rng.standard_normal((4000, 30)) * np.sqrt(0.5)
    return X, W, mu


@pytest.fixture(scope="module")
def counts():
    return simulate_splatter(n_cells=300, n_genes=60, seed=0)


def test_registered():
    assert {"pca", "gmm"} <= set(available_models())
    assert MODELS["pca"] is PPCAModel and MODELS["gmm"] is GMMModel
    assert PPCAModel.presets["paper"]["n_latent"] == 10
    assert PPCAModel.representation == GMMModel.representation == "log1p"


# ------------------------------------------------------------------------------------------------- PPCA
def test_ppca_recovers_subspace_and_noise(low_rank):
    X, W, mu = low_rank
    fit = PPCA.fit(X, 3)
    assert np.max(subspace_angles(fit.W, W)) < 0.05
    assert abs(fit.noise_variance - 0.5) < 0.03
    np.testing.assert_allclose(fit.mean, mu, atol=0.15)
    # The model covariance W W^T (rotation-free) matches the truth.
    truth = W @ W.T
    assert np.linalg.norm(fit.W @ fit.W.T - truth) / np.linalg.norm(truth) < 0.05


def test_ppca_posterior_mean_is_scaled_pca_score(low_rank):
    # Tipping & Bishop: with W = U (L - s2)^1/2, E[z|x] = L^-1 (L - s2)^1/2 U^T (x - mu): PCA scores, rescaled.
    from sklearn.decomposition import PCA

    X, _, _ = low_rank
    fit = PPCA.fit(X, 3)
    z = fit.posterior_mean(X)
    scores = PCA(n_components=3).fit_transform(X)
    scale = np.sqrt(fit.eigenvalues - fit.noise_variance) / fit.eigenvalues
    for j in range(3):
        assert abs(np.corrcoef(z[:, j], scores[:, j])[0, 1]) > 0.999999
        np.testing.assert_allclose(np.std(z[:, j]), scale[j] * np.std(scores[:, j]), rtol=1e-6)


def test_sparse_lanczos_axes_match_dense(low_rank):
    X, _, _ = low_rank
    Xs = sp.csr_matrix(np.maximum(X, 0))
    dense = principal_axes(Xs, 4)
    lanczos = principal_axes(Xs, 4, dense_max_genes=10)
    np.testing.assert_allclose(dense[0], lanczos[0], atol=1e-10)
    np.testing.assert_allclose(dense[1], lanczos[1], rtol=1e-8)
    np.testing.assert_allclose(np.abs(dense[2].T @ lanczos[2]), np.eye(4), atol=1e-6)
    np.testing.assert_allclose(dense[3], lanczos[3], rtol=1e-10)


def test_pca_model_fit_encode_sample(counts, tmp_path):
    model = PPCAModel("demo")
    history = model.fit(counts, seed=0, progress=False)
    assert history["noise_variance"][0] > 0 and np.isfinite(history["log_likelihood"][0])
    z = model.encode(counts)
    assert z.shape == (300, 10)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-8)  # posterior means of the training data are centred
    drawn = model.encode(counts, sample=True, seed=1)
    assert drawn.shape == z.shape and not np.allclose(drawn, z)
    a = model.sample(200, seed=3)
    b = model.sample(200, seed=3)
    assert a.shape == (200, 60) and a.uns["scsynth"]["representation"] == "log1p"
    assert (a.X != b.X).nnz == 0 and (a.X != model.sample(200, seed=4).X).nnz > 0
    # Generated cells reproduce the per-gene means of the log1p training cells.
    real = to_representation(counts.X, "log1p").toarray().mean(axis=0)
    assert np.corrcoef(np.asarray(model.sample(2000, seed=5).X.mean(axis=0)).ravel(), real)[0, 1] > 0.98
    # Save/load round trip: identical samples and codes.
    model.save(tmp_path / "pca.pt")
    loaded = load_model(tmp_path / "pca.pt")
    assert isinstance(loaded, PPCAModel)
    assert (loaded.sample(200, seed=3).X != a.X).nnz == 0
    np.testing.assert_array_equal(loaded.encode(counts), z)


def test_pca_clip_and_gene_checks(counts):
    model = PPCAModel(n_latent=5, clip_at_zero=True)
    model.fit(counts, progress=False)
    assert model.sample(300, seed=0).X.min() >= 0
    # Genes are matched by name; missing genes are an error.
    shuffled = counts[:, counts.var_names[::-1]]
    np.testing.assert_allclose(model.encode(shuffled), model.encode(counts))
    with pytest.raises(DataError, match="missing"):
        model.encode(counts[:, :30])
    with pytest.raises(ConfigError, match="n_latent"):
        PPCAModel(n_latent=60).fit(counts, progress=False)


def test_pca_scale_genes_is_ppca_of_standardised_genes(counts, tmp_path):
    """``scale_genes``: PPCA of the log1p genes divided by their s.d. (PCA centres them); draws come back on the
    log1p scale, and a saved model keeps the scaling."""
    model = PPCAModel("demo", scale_genes=True)
    model.fit(counts, seed=0, progress=False)
    log1p = np.asarray(to_representation(counts.X, "log1p").toarray(), dtype=np.float64)
    scaled = log1p / log1p.std(axis=0)
    direct = PPCA.fit(scaled, 10)
    # float32 log1p in the model, float64 here: codes (s.d. ~0.8) agree to 1e-2, eigenvalues to 1e-4.
    np.testing.assert_allclose(model.encode(counts), direct.posterior_mean(scaled), atol=1e-2)
    np.testing.assert_allclose(model._ppca.eigenvalues, direct.eigenvalues, rtol=1e-3)
    draws = model.sample(4000, seed=0).X
    np.testing.assert_allclose(np.asarray(draws.mean(axis=0)).ravel(), log1p.mean(axis=0), atol=0.05)
    sd = np.sqrt(np.asarray(draws.multiply(draws).mean(axis=0)).ravel() - np.asarray(draws.mean(axis=0)).ravel() ** 2)
    # Gene-scale s.d.s (0.1-0.5 here), not the unit ones of the scaled space; PPCA models them within 25 %.
    np.testing.assert_allclose(sd, log1p.std(axis=0), rtol=0.25)
    model.save(tmp_path / "pca.pt")
    np.testing.assert_array_equal(load_model(tmp_path / "pca.pt").encode(counts), model.encode(counts))
    with pytest.raises(ConfigError, match="scale_genes"):
        PPCAModel(scale_genes="yes").fit(counts, progress=False)


# ------------------------------------------------------------------------------------------------- GMM
@pytest.fixture(scope="module")
def two_gaussians():
    rng = np.random.default_rng(1)
    a = rng.multivariate_normal([0.0, 0.0, 0.0], [[1.0, 0.6, 0.0], [0.6, 1.0, 0.0], [0.0, 0.0, 0.5]], 1500)
    b = rng.multivariate_normal([5.0, -3.0, 2.0], [[0.5, 0.0, 0.0], [0.0, 2.0, -0.5], [0.0, -0.5, 1.0]], 3500)
    return np.vstack([a, b])


def _gmm(X, **kw):
    args = {
        "n_pcs": X.shape[1],
        "n_components": 2,
        "covariance_type": "full",
        "bic_components": [1, 2, 3, 4],
        "covariance_types": ["full"],
        "max_iter": 200,
        "n_init": 1,
        "reg_covar": 1e-6,
        "seed": 0,
    } | kw
    return PCAGaussianMixture.fit(X, **args)


def test_gmm_samples_match_toy_moments(two_gaussians):
    model, table = _gmm(two_gaussians)
    assert table["n_components"] == [2]
    np.testing.assert_allclose(np.sort(model.weights), [0.3, 0.7], atol=0.01)
    x, labels = model.sample(40_000, np.random.default_rng(2))
    np.testing.assert_allclose(x.mean(axis=0), two_gaussians.mean(axis=0), atol=0.05)
    cov_real, cov_fake = np.cov(two_gaussians.T), np.cov(x.T)
    assert np.abs(cov_fake - cov_real).max() < 0.05 * np.abs(cov_real).max()
    assert abs(np.mean(labels == np.argmax(model.weights)) - 0.7) < 0.01


def test_gmm_bic_selects_two_components(two_gaussians):
    model, table = _gmm(two_gaussians, n_components="bic", covariance_types=["full", "diag"])
    assert len(table["bic"]) == 8
    assert model.means.shape[0] == 2 and model.covariance_type == "full"


def test_gmm_model_round_trip(counts, tmp_path):
    model = GMMModel("demo", n_components=3, n_pcs=5)
    history = model.fit(counts, seed=0, progress=False)
    assert history["n_components"] == [3] and history["selected"] == [True]
    a = model.sample(150, seed=1)
    assert a.shape == (150, 60) and (a.X != model.sample(150, seed=1).X).nnz == 0
    model.save(tmp_path / "gmm.pt")
    payload = torch.load(tmp_path / "gmm.pt", weights_only=True)  # plain tensors and values only
    assert set(payload["state"]) >= {"weights", "means", "covariances", "covariance_type"}
    assert payload["state"]["covariances"].shape == (3, 5, 5)
    loaded = load_model(tmp_path / "gmm.pt")
    assert (loaded.sample(150, seed=1).X != a.X).nnz == 0
    # Same training seed -> same fitted mixture.
    again = GMMModel("demo", n_components=3, n_pcs=5)
    again.fit(counts, seed=0, progress=False)
    np.testing.assert_array_equal(again._gmm.means, model._gmm.means)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"n_components": "auto"}, "n_components"),
        ({"n_pcs": 0}, "n_pcs"),
        ({"covariance_type": "banded"}, "covariance"),
    ],
)
def test_gmm_bad_parameters(counts, overrides, name):
    with pytest.raises(ConfigError, match=name):
        GMMModel("demo", **overrides).fit(counts, progress=False)
