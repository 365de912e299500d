"""Latent flow matching on a count autoencoder (CFGen family): the NB likelihood, the ODE solver, presets,
determinism, save/load, chunked sampling, conditional generation and learning on real cells."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from scsynth_core.errors import ConfigError
from scsynth_core.models import MODELS, load_model
from scsynth_core.models.flow import (
    LatentFlow,
    VelocityNet,
    code_clusters,
    integrate,
    nb_log_likelihood,
)

TINY = {
    "latent_dim": 4,
    "encoder_layers": [16],
    "decoder_layers": [16],
    "flow_width": 16,
    "flow_blocks": 1,
    "embedding_dim": 8,
    "ae_epochs": 40,
    "epochs": 30,
    "batch_size": 32,
    "ode_steps": 5,
    "log_every": 10,
}


@pytest.fixture(scope="module")
def two_types() -> ad.AnnData:
    """240 cells x 30 genes: two types with opposite gene programmes, negative binomial counts."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.2, 4.0, 30)
    programme = np.r_[np.full(15, 6.0), np.full(15, 0.3)]
    means = np.vstack([np.outer(np.ones(120), base * programme), np.outer(np.ones(120), base * programme[::-1])])
    X = rng.negative_binomial(2.0, 2.0 / (2.0 + means)).astype(np.float32)
    obs = pd.DataFrame({"cell_type": ["t_cell"] * 120 + ["b_cell"] * 120}, index=[f"c{i}" for i in range(240)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(30)]))


@pytest.fixture(scope="module")
def fitted(two_types) -> LatentFlow:
    model = LatentFlow("demo", **TINY)
    model.fit(two_types, label_key="cell_type", seed=0, device="cpu", progress=False)
    return model


def test_registry_and_paper_settings():
    assert MODELS["latentflow"] is LatentFlow and LatentFlow.representation == "counts"
    paper = LatentFlow("paper").params
    # CFGen's published configuration: encoder 512-256-50, flow ResNet 3 x 512, embeddings 256, batch 256
    assert (paper["encoder_layers"], paper["latent_dim"], paper["ae_epochs"]) == ([512, 256], 50, 200)
    assert (paper["flow_width"], paper["flow_blocks"], paper["embedding_dim"]) == (512, 3, 256)
    assert (paper["epochs"], paper["batch_size"], paper["learning_rate"], paper["ae_learning_rate"]) == (
        1000,
        256,
        1e-4,
        1e-3,
    )
    assert (paper["ema_decay"], paper["select"], paper["guidance"]) == (0.0, "last", 1.0)
    for bad in (
        {"latent_dim": 0},
        {"learning_rate": 0},
        {"label_dropout": 1.0},
        {"encoder_layers": []},
        {"guidance": -1},
    ):
        with pytest.raises(ConfigError):
            LatentFlow("demo", **bad)


def test_nb_log_likelihood_matches_scipy():
    x = torch.tensor([0.0, 1.0, 5.0, 40.0])
    mean = torch.tensor([0.5, 2.0, 5.0, 30.0])
    theta = torch.tensor([0.3, 1.0, 4.0, 10.0])
    expected = stats.nbinom.logpmf(x.numpy(), theta.numpy(), (theta / (theta + mean)).numpy())
    assert np.allclose(nb_log_likelihood(x, mean, theta).numpy(), expected, atol=1e-5)


class _LinearField(torch.nn.Module):
    """v(x) = A x: the flow's exact solution at t = 1 is expm(A) x0."""

    dim, n_types = 2, 1

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.A = A

    def forward(self, x, t, types):
        return x @ self.A.T


def test_midpoint_integration_known_answer():
    A = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)  # rotation by 1 radian
    x0 = torch.tensor([[1.0, 0.0], [0.5, -2.0]], dtype=torch.float64)
    exact = x0 @ torch.linalg.matrix_exp(A).T
    error = {
        steps: (integrate(_LinearField(A), x0, torch.zeros(2, dtype=torch.long), steps=steps, guidance=1.0) - exact)
        .abs()
        .max()
        .item()
        for steps in (5, 50)
    }
    assert error[50] < 3e-4
    assert 50 < error[5] / error[50] < 200  # second order: 10x the steps, ~100x smaller error


def test_guidance_extrapolates_from_the_unconditional_velocity():
    torch.manual_seed(0)
    net = VelocityNet(3, n_types=2, width=8, blocks=1, embedding_dim=4)
    x0, types = torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])
    plain = integrate(net, x0, types, steps=1, guidance=1.0)
    guided = integrate(net, x0, types, steps=1, guidance=3.0)
    none = integrate(net, x0, torch.full_like(types, 2), steps=1, guidance=1.0)
    assert not torch.allclose(plain, guided)
    # one midpoint step from x0 is not linear in the velocity, but at guidance 0 it is the unconditional flow
    assert torch.allclose(integrate(net, x0, types, steps=1, guidance=0.0), none, atol=1e-6)


def test_counts_are_non_negative_integers_with_the_requested_types(fitted):
    out = fitted.sample(60, labels={"t_cell": 40, "b_cell": 20}, seed=1)
    X = out.X.toarray()
    assert out.shape == (60, 30) and (X >= 0).all() and np.array_equal(X, np.round(X))
    assert out.obs["cluster"].value_counts().to_dict() == {"t_cell": 40, "b_cell": 20}
    with pytest.raises(ConfigError, match="unknown label"):
        fitted.sample(2, labels=["t_cell", "nk_cell"])


def test_autoencoder_recovers_the_simulated_dispersion(fitted):
    """The counts of ``two_types`` are NB with inverse dispersion 2 in every gene: the fitted per-gene dispersions
    come near it (at the networks' step size of 1e-3 they would still sit near their start, 1)."""
    theta = fitted._decoder.log_theta.exp().detach().numpy()
    assert 1.5 < np.median(theta) < 2.7


def test_encoded_cells_decode_to_their_type_means_and_counts(fitted, two_types):
    """Encoding then decoding gives NB means near each type's simulated ones (programme genes 6x higher), and
    ``decode_counts`` draws integers from them when called from user code, outside ``torch.no_grad``."""
    X = two_types.X.tocsr()
    codes = fitted._codes(X, fitted._device)
    means = fitted.decode_means(codes)
    t_cells = (two_types.obs["cell_type"] == "t_cell").to_numpy()
    assert means[t_cells, :15].mean() > 3 * means[t_cells, 15:].mean()
    assert means[~t_cells, 15:].mean() > 3 * means[~t_cells, :15].mean()
    np.testing.assert_allclose(means.sum(axis=1), X.sum(axis=1).A1, rtol=0.35)
    counts = fitted.decode_counts(codes, np.random.default_rng(0))
    assert counts.shape == X.shape and (counts >= 0).all() and np.array_equal(counts, np.round(counts))


def test_workstation_step_size_recovers_the_dispersion_within_the_step_floor(two_types):
    """The workstation preset gives the dispersions the networks' step size (1e-3) under its step floor: on
    simulated NB counts 1,500 steps reach the inverse dispersion 2, where 320 leave it near 1."""
    workstation = LatentFlow("workstation").params
    assert workstation["dispersion_learning_rate"] == workstation["ae_learning_rate"] == 1e-3

    def median_theta(steps: int) -> float:
        params = TINY | {"epochs": 1, "ae_epochs": 1, "ae_min_steps": steps, "dispersion_learning_rate": 1e-3}
        model = LatentFlow("demo", **params)
        model.fit(two_types, label_key="cell_type", seed=0, device="cpu", progress=False)
        return float(np.median(model._decoder.log_theta.exp().detach().numpy()))

    assert 1.6 < median_theta(1500) < 2.6
    assert median_theta(320) < 1.3


def log_norm(X) -> np.ndarray:
    """Counts normalised to 10,000 per cell, log1p (for the nearest-centroid type checks)."""
    X = np.asarray(X.todense() if sp.issparse(X) else X, dtype=float)
    return np.log1p(X / np.maximum(X.sum(1, keepdims=True), 1) * 1e4)


def test_requested_types_come_out_as_those_types(fitted, two_types):
    """A nearest-centroid classifier trained on real cells (log-normalised) recognises the generated types."""
    from sklearn.neighbors import NearestCentroid

    classifier = NearestCentroid().fit(log_norm(two_types.X), two_types.obs["cell_type"])
    out = fitted.sample(200, labels={"t_cell": 100, "b_cell": 100}, seed=2)
    accuracy = (classifier.predict(log_norm(out.X)) == out.obs["cluster"].astype(str).to_numpy()).mean()
    assert accuracy > 0.9


def test_deterministic_chunk_independent_and_saved(fitted, two_types, tmp_path):
    again = LatentFlow("demo", **TINY)
    again.fit(two_types, label_key="cell_type", seed=0, device="cpu", progress=False)
    a = fitted.sample(50, seed=4).X
    assert (a != again.sample(50, seed=4).X).nnz == 0  # same data and seed: same model, same cells
    assert (a != fitted.sample(50, seed=4, batch_size=7).X).nnz == 0  # cells do not depend on the chunk size
    assert (a != fitted.sample(50, seed=5).X).nnz > 0
    fitted.save(tmp_path / "flow.pt")
    loaded = load_model(tmp_path / "flow.pt", device="cpu")
    assert isinstance(loaded, LatentFlow) and loaded.categories == fitted.categories
    assert (a != loaded.sample(50, seed=4).X).nnz == 0
    assert np.allclose(loaded.encode(two_types[:10]), fitted.encode(two_types[:10]))


def test_unconditional_fit_generates_holistically(two_types):
    model = LatentFlow("demo", **(TINY | {"epochs": 5, "ae_epochs": 2}))
    history = model.fit(two_types, seed=0, device="cpu", progress=False)
    assert set(history["phase"]) == {"autoencoder", "flow"}
    assert "cluster" not in model.sample(10, seed=0).obs
    with pytest.raises(ConfigError, match="without labels"):
        model.sample(2, labels=["t_cell", "b_cell"])


def test_autoencoder_trains_at_least_ae_min_steps(two_types):
    """240 cells at batch 32 are 8 steps per epoch: 2 epochs are 16 steps, raised to the floor of 50; a floor
    below the epochs' steps changes nothing (the flow keeps its epochs either way)."""

    def last_steps(**params) -> pd.Series:
        model = LatentFlow("demo", **(TINY | {"epochs": 2, "ae_epochs": 2} | params))
        return pd.DataFrame(model.fit(two_types, seed=0, device="cpu", progress=False)).groupby("phase")["step"].max()

    assert last_steps(ae_min_steps=50).to_dict() == {"autoencoder": 50, "flow": 16}
    assert last_steps(ae_min_steps=10).to_dict() == {"autoencoder": 16, "flow": 16}
    assert LatentFlow("paper").params["ae_min_steps"] == 0 and LatentFlow("workstation").params["ae_min_steps"] == 3000


def test_code_clusters_find_separated_groups():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = np.repeat([0, 1, 2], [50, 30, 20])
    found = code_clusters(centres[truth] + rng.normal(size=(100, 2)), 3, seed=0)
    assert adjusted_rand_score(truth, found) == 1.0
    assert len(np.unique(code_clusters(rng.normal(size=(5, 2)), 20, seed=0))) == 5  # at most one per cell


def test_unlabelled_fit_conditions_on_code_clusters_and_keeps_their_frequencies(two_types, tmp_path):
    """Without labels the flow is conditioned on k-means clusters of the codes; generation draws clusters with
    their training frequencies, so the two real types come out in their real proportions, and a saved model
    draws the same cells."""
    from sklearn.neighbors import NearestCentroid

    uneven = two_types[np.r_[0:120, 120:180]].copy()  # t_cell 120, b_cell 60
    model = LatentFlow("demo", **(TINY | {"code_clusters": 2}))
    model.fit(uneven, seed=0, device="cpu", progress=False)
    assert np.allclose(np.sort(model._cluster_frequencies), [1 / 3, 2 / 3])

    classifier = NearestCentroid().fit(log_norm(uneven.X), uneven.obs["cell_type"])
    out = model.sample(300, seed=3)
    assert abs((classifier.predict(log_norm(out.X)) == "t_cell").mean() - 2 / 3) < 0.08
    model.save(tmp_path / "flow.pt")
    assert (load_model(tmp_path / "flow.pt", device="cpu").sample(300, seed=3).X != out.X).nnz == 0


def test_realism_improves_with_training_on_real_cells(demo_counts):
    """On the embedded real PBMC cells the monitor's kNN AUC falls as the flow trains (AUC 0.5 = real)."""
    model = LatentFlow("demo", monitor_every=100, monitor_cells=150, validation_fraction=0.25, log_every=50)
    history = model.fit(demo_counts, label_key="bulk_labels", seed=0, device="cpu", progress=False)
    auc = [v for v in history["monitor_auc"] if v is not None]
    assert len(auc) >= 4 and auc[-1] < auc[0] - 0.05 and max(auc[-2:]) < 0.85
