"""scDBM (Treppner et al. 2021): Fisher scoring of the NB dispersion, the DBM's energy and conditionals, the Gibbs
samplers against the exact hidden marginal, training on a two-cluster NB mixture, constraints, the reference's
learning rates, determinism, save/load and input checks (resume: tests/models/test_model_contract.py).

One training on a synthetic 600-cell x 50-gene two-cluster mixture is shared by the tests that need a trained
model; the mechanics run on the 60-cell ``tiny_counts`` fixture and on hand-built machines. Torch runs on one
thread (on the shared 2-core machines more threads are slower for these small matrices).
"""

from __future__ import annotations

import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from scsynth_core.errors import ConfigError, DataError, TrainingError
from scsynth_core.models import MODELS, load_model
from scsynth_core.models.scdbm import (
    NegativeBinomialDBM,
    ScDBM,
    fit_nb_dispersion,
    nb_log_prob,
    sample_nb,
)
from scsynth_core.models.scdbm import dbm as scdbm_module

#: The shared training: the paper's method with a wider first layer (8 units: with 4, two clusters with
#: reciprocal marker sets are sometimes explained by one feature, see the module docstring) and more epochs
#: (600 cells are 10 minibatches per epoch).
TWO_CLUSTER_FIT = {"hidden_sizes": [8, 4], "pretrain_epochs": [100, 50], "finetune_epochs": 50}

TINY = {  # quick fits on the 60 x 12 fixture
    "hidden_sizes": [3, 2],
    "pretrain_epochs": [4, 3],
    "finetune_epochs": 3,
    "batch_size": 16,
    "finetune_batch_size": 16,
    "finetune_particles": 20,
    "dispersion_every": 2,
    "checkpoint_every": 2,
    "burn_in": 10,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def two_cluster_counts(seed: int = 0, n_cells: int = 600, n_genes: int = 50):
    """NB counts of two equal clusters: cluster 1 has 8x the base mean on the first half of the genes, cluster 2
    on the second half (theta per gene in [2, 10])."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 3.0, n_genes)
    m1, m2 = base.copy(), base.copy()
    m1[: n_genes // 2] *= 8
    m2[n_genes // 2 :] *= 8
    theta = rng.uniform(2.0, 10.0, n_genes)
    labels = np.repeat([0, 1], [n_cells // 2, n_cells - n_cells // 2])
    mu = np.where(labels[:, None] == 0, m1, m2)
    counts = rng.poisson(rng.gamma(theta, mu / theta))
    adata = ad.AnnData(
        sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame({"cluster": labels.astype(str)}, index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]),
    )
    return adata, m1, m2, theta


def nearest_profile(X: np.ndarray, m1: np.ndarray, m2: np.ndarray):
    """Assign cells to the nearest of (cluster 1, cluster 2, the average of the two) in log1p space; return the
    shares and, per cluster, the mean over genes of |log1p(mean of its cells) - log1p(cluster mean)|."""
    centroids = np.log1p(np.stack([m1, m2, (m1 + m2) / 2]))
    nearest = ((np.log1p(X)[:, None, :] - centroids[None]) ** 2).sum(2).argmin(1)
    shares = np.bincount(nearest, minlength=3) / len(X)
    errors = [
        np.abs(np.log1p(X[nearest == k].mean(0)) - centroids[k]).mean() if (nearest == k).any() else np.inf
        for k in range(2)
    ]
    return shares, errors


def _nb_nll(Y: np.ndarray, mu: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Per-cell NB negative log-likelihood (numpy, written from the pmf)."""
    ll = (
        gammaln(Y + theta)
        - gammaln(theta)
        - gammaln(Y + 1)
        + theta * np.log(theta / (theta + mu))
        + Y * np.log(mu / (theta + mu))
    )
    return -ll.sum(1)


@pytest.fixture(scope="module")
def two_clusters():
    return two_cluster_counts(0)


@pytest.fixture(scope="module")
def trained(two_clusters):
    model = ScDBM("paper", **TWO_CLUSTER_FIT)
    history = model.fit(two_clusters[0], seed=0, device="cpu", progress=False)
    return model, history


def _fit_tiny(data, **kwargs):
    params = TINY | {k: kwargs.pop(k) for k in list(kwargs) if k in ScDBM.presets["demo"]}
    model = ScDBM("demo", **params)
    history = model.fit(data, seed=kwargs.pop("seed", 0), device="cpu", progress=False, **kwargs)
    return model, history


def _assert_constraints(model: ScDBM) -> None:
    m = model.machine
    assert float(m.W1.max()) <= 0.0 and float(m.a.max()) <= -1e-10
    assert torch.isfinite(torch.cat([m.state()[k].ravel() for k in m.KEYS])).all()


# ------------------------------------------------------------------------------------------ registry, params
def test_registry_presets_and_parameter_checks():
    assert MODELS["scdbm"] is ScDBM and ScDBM.representation == "counts" and not ScDBM.conditional
    paper = ScDBM("paper").params
    assert (paper["hidden_sizes"], paper["pretrain_epochs"], paper["finetune_epochs"]) == ([4, 2], [60, 40], 10)
    assert (paper["batch_size"], paper["theta_init"], paper["dispersion_lambda"], paper["dispersion_every"]) == (
        64,
        0.5,
        1.0,
        5,
    )
    assert (paper["finetune_particles"], paper["finetune_gibbs_steps"], paper["burn_in"]) == (100, 5, 50)
    supplement = ScDBM("paper_supplement").params
    assert (supplement["hidden_sizes"], supplement["dispersion_lambda"], supplement["batch_size"]) == (
        [64, 16],
        2.5,
        16,
    )
    demo = ScDBM("demo").params
    assert sum(demo["pretrain_epochs"]) + demo["finetune_epochs"] < 110 and demo["hidden_sizes"] == [4, 2]
    # learning-rate schedules: the reference's per-epoch vector means 1e-11 for the first 3,500 epochs
    reference = ScDBM("paper", lr_schedule="reference")
    assert reference.lr_at("nb_rbm", 60) == 1e-11 and reference.lr_at("nb_rbm", 3501) == 5e-5
    assert reference.lr_at("nb_rbm", 4501) == 1e-5 and reference.lr_at("bernoulli_rbm", 1) == 1e-11
    assert reference.lr_at("dbm", 1) == pytest.approx(1e-11)
    standard = ScDBM("paper")
    assert standard.lr_at("nb_rbm", 60) == 0.1 and standard.lr_at("dbm", 1) == pytest.approx(0.01)
    assert standard.lr_at("dbm", 10) == pytest.approx(0.01 * 11 / 20)
    for bad, match in (
        ({"hidden_sizes": [4]}, "hidden_sizes"),
        ({"pretrain_epochs": [60, -1]}, "pretrain_epochs"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"lr_schedule": "cosine"}, "lr_schedule"),
        ({"sampler": "exact", "hidden_sizes": [20, 2]}, "exact"),
        ({"burn_in": -1}, "burn_in"),
        ({"learning_rate": "0.1"}, "learning_rate"),
        ({"theta_init": 0}, "theta_init"),
        ({"finetune_dispersion": 1}, "finetune_dispersion"),
        ({"batch_size": 0}, "batch_size"),
    ):
        with pytest.raises(ConfigError, match=match):
            ScDBM("demo", **bad)
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        ScDBM(latent_dim=10)


# ----------------------------------------------------------------------------------------------- Fisher scoring
def test_fisher_scoring_recovers_known_theta():
    thetas = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 20.0])
    rng = np.random.default_rng(0)
    mu = rng.uniform(5, 30, (5000, len(thetas)))  # known per-cell means
    y = rng.poisson(rng.gamma(thetas, mu / thetas))
    theta = fit_nb_dispersion(sp.csr_matrix(y), mu, lam=1.0)
    assert np.all(np.abs(theta / thetas - 1) < 0.1), theta
    # the same optimum from dense input, streamed blocks, a callable for the means and another start
    for kwargs in (
        {"X": y},
        {"X": y, "block_rows": 700, "cache_elements": 0},
        {"X": y, "mu": lambda start, stop: mu[start:stop]},
        {"X": y, "theta0": 3.0},
    ):
        other = fit_nb_dispersion(kwargs.pop("X"), kwargs.pop("mu", mu), lam=1.0, **kwargs)
        np.testing.assert_allclose(other, theta, rtol=1e-5)

    # it is the maximum of the penalised log-likelihood l(theta) - lam / theta^2 (scipy, gene by gene)
    def penalised_nll(log_t, g, lam):
        t = math.exp(log_t)
        return _nb_nll(y[:, [g]], mu[:, [g]], np.array([t])).sum() + lam / t**2

    for lam in (0.0, 1.0, 200.0):
        ours = fit_nb_dispersion(y, mu, lam=lam, n_iter=50)
        for g in range(len(thetas)):
            best = minimize_scalar(
                penalised_nll, bounds=(-5, 8), args=(g, lam), method="bounded", options={"xatol": 1e-9}
            )
            assert ours[g] == pytest.approx(math.exp(best.x), rel=1e-4), (lam, g)
    # the penalty only pulls theta up, most for small theta
    free, penalised = fit_nb_dispersion(y, mu, lam=0.0), fit_nb_dispersion(y, mu, lam=200.0)
    assert np.all(penalised >= free) and penalised[0] / free[0] > penalised[-1] / free[-1]
    # one mean per gene is broadcast; floor and ceiling hold
    poisson = rng.poisson(4.0, (3000, 2))
    capped = fit_nb_dispersion(poisson, np.full(2, 4.0), lam=0.0, theta_max=1e4)
    assert np.all(capped > 50) and np.all(capped <= 1e4)
    assert np.all(fit_nb_dispersion(np.zeros((50, 2)), np.full(2, 0.1), lam=0.0) >= 0.01)


# ------------------------------------------------------------------------------------------------- the machine
def _small_machine(seed: int = 0, n_genes: int = 5, hidden=(3, 2)) -> NegativeBinomialDBM:
    """A machine whose hidden marginal is spread over several states (biases tuned on the exact marginal)."""
    gen = torch.Generator().manual_seed(seed)
    h1, h2 = hidden
    m = NegativeBinomialDBM(
        W1=-1.5 * torch.rand(n_genes, h1, generator=gen),
        a=-0.3 - 0.5 * torch.rand(n_genes, generator=gen),
        c1=torch.zeros(h1),
        b1=0.5 * torch.randn(h1, generator=gen),
        W2=1.5 * torch.randn(h1, h2, generator=gen),
        c2=torch.randn(h2, generator=gen),
        theta=0.5 + 3 * torch.rand(n_genes, generator=gen),
    )
    states = m.hidden_states()
    for _ in range(200):  # move each unit's marginal towards 1/2
        p = torch.softmax(m.h1_log_weights(states), 0)
        m.c1 += 2.0 * (0.5 - (p[:, None] * states).sum(0).float())
    return m


def test_energy_conditionals_and_likelihood_are_consistent():
    m = _small_machine()
    gen = torch.Generator().manual_seed(1)
    v = torch.poisson(torch.full((7, 5), 2.0), generator=gen)
    h1 = torch.bernoulli(torch.full((7, 3), 0.5), generator=gen)
    h2 = torch.bernoulli(torch.full((7, 2), 0.5), generator=gen)
    # p(h = 1 | rest) = sigmoid(E(h = 0) - E(h = 1)) for every hidden unit (paper eq. 7-8)
    for j in range(3):
        on, off = h1.clone(), h1.clone()
        on[:, j], off[:, j] = 1, 0
        expected = torch.sigmoid(m.energy(v, off, h2) - m.energy(v, on, h2))
        assert torch.allclose(m.h1_prob(v, h2)[:, j].double(), expected, atol=1e-5)
    for k in range(2):
        on, off = h2.clone(), h2.clone()
        on[:, k], off[:, k] = 1, 0
        expected = torch.sigmoid(m.energy(v, h1, off) - m.energy(v, h1, on))
        assert torch.allclose(m.h2_prob(h1)[:, k].double(), expected, atol=1e-5)
    # p(v_g | h1) from exp(-E) over v_g = 0..K: an NB with mean E[v | h1] (paper eq. 6) and variance mu + mu^2/theta
    grid = torch.arange(0, 3000, dtype=torch.float64)
    for row in range(3):
        for g in range(5):
            vv = v[row].double().repeat(len(grid), 1)
            vv[:, g] = grid
            logp = -m.energy(vv, h1[row].repeat(len(grid), 1), h2[row].repeat(len(grid), 1))
            p = torch.softmax(logp, 0)
            mean = float((p * grid).sum())
            mu, theta = float(m.visible_mean(h1[row : row + 1])[0, g]), float(m.theta[g])
            assert mean == pytest.approx(mu, rel=1e-4)
            assert float((p * (grid - mean) ** 2).sum()) == pytest.approx(mu + mu**2 / theta, rel=1e-3)
            assert torch.allclose(
                nb_log_prob(grid, m.eta(h1[row : row + 1])[0, g].double(), m.theta[g].double()),
                torch.log_softmax(logp, 0),
                atol=1e-6,
            )
    # the exact likelihood sums to one over count vectors (two genes: a 400 x 400 grid holds all the mass)
    m2 = _small_machine(seed=2, n_genes=2)
    grid2 = torch.cartesian_prod(torch.arange(400.0), torch.arange(400.0))
    assert float(m2.log_likelihood(grid2).exp().sum()) == pytest.approx(1.0, abs=1e-6)
    # and equals a brute-force sum of exp(-E) over (h1, h2) divided by the partition function
    states1, states2 = m.hidden_states(), torch.tensor([[0.0, 0.0], [0, 1], [1, 0], [1, 1]], dtype=torch.float64)
    h1s, h2s = states1.repeat_interleave(4, 0), states2.repeat(len(states1), 1)
    log_z = torch.logsumexp(m.h1_log_weights(states1), 0)
    brute = torch.stack([torch.logsumexp(-m.energy(v[i].repeat(len(h1s), 1), h1s, h2s), 0) for i in range(7)])
    assert torch.allclose(m.log_likelihood(v), brute - log_z, atol=1e-8)


def test_gibbs_samplers_and_exact_sampler_match_the_exact_hidden_marginal(monkeypatch):
    m = _small_machine(seed=3)
    states = m.hidden_states()
    exact = torch.softmax(m.h1_log_weights(states), 0).numpy()
    assert exact.max() < 0.6 and (exact > 0.02).sum() >= 3  # a spread-out target

    def frequencies(h1: torch.Tensor) -> np.ndarray:
        codes = (h1.double() @ (2.0 ** torch.arange(2, -1, -1)).double()).long().numpy()
        return np.bincount(codes, minlength=8) / len(codes)

    gen = torch.Generator().manual_seed(0)
    start = torch.bernoulli(torch.full((20_000, 3), 0.5), generator=gen)
    tv = {}
    for scheme in ("blocked", "collapsed"):
        tv[scheme] = np.abs(frequencies(m.gibbs(start, 30, gen, scheme=scheme)) - exact).sum() / 2
    monkeypatch.setattr(scdbm_module, "ENUMERATE_MAX_HIDDEN", 0)  # the unit-by-unit collapsed sampler
    tv["unitwise"] = np.abs(frequencies(m.gibbs(start, 30, gen, scheme="collapsed")) - exact).sum() / 2
    # sampling noise with 20,000 chains is ~0.01 in total variation; uniform starts are 0.3+ away
    assert max(tv.values()) < 0.03, tv
    assert np.abs(frequencies(start) - exact).sum() / 2 > 0.2
    # gamma-Poisson draws have the NB's mean and variance
    mean, theta = torch.tensor([[0.3, 4.0, 50.0]]).repeat(200_000, 1), torch.tensor([0.5, 2.0, 10.0])
    draws = sample_nb(mean, theta, torch.Generator().manual_seed(1))
    assert torch.equal(draws, draws.round()) and draws.min() >= 0
    np.testing.assert_allclose(draws.mean(0), mean[0], rtol=0.02)
    np.testing.assert_allclose(draws.var(0), mean[0] + mean[0] ** 2 / theta, rtol=0.05)


# --------------------------------------------------------------------------------------------- training
def test_two_cluster_mixture_is_reproduced(trained, two_clusters):
    model, history = trained
    adata, m1, m2, theta = two_clusters
    _assert_constraints(model)
    # history: one row per epoch of every phase; the exact likelihood approaches the generating mixture's
    assert history["phase"] == ["nb_rbm"] * 100 + ["bernoulli_rbm"] * 50 + ["dbm"] * 50
    assert history["epoch"] == list(range(1, 201)) and history["step"][-1] == 200 * 10
    Y = adata.X.toarray()
    truth = -np.logaddexp(-_nb_nll(Y, m1, theta), -_nb_nll(Y, m2, theta)).mean() + math.log(2)
    first, last = history["nll"][0], history["nll"][-1]
    assert last < truth + 6 and first - last > 20, (first, last, truth)  # measured 156.5 -> 126.9 (truth 123.1)
    assert history["recon_nll"][-1] < history["recon_nll"][0] - 20
    assert history["theta_median"][0] == 0.5 and history["theta_median"][-1] > 2  # true theta: U(2, 10)
    # Gibbs samples: integer counts that fall into both clusters, with each cluster's mean profile
    cells = model.sample(1000, seed=1)
    X = cells.X.toarray()
    assert sp.isspmatrix_csr(cells.X) and cells.X.dtype == np.float32 and np.array_equal(X, np.round(X))
    shares, errors = nearest_profile(X, m1, m2)
    # measured: shares 0.43 / 0.43 (0.15 nearest the average profile), mean |log1p error| 0.14 / 0.18
    assert shares[0] > 0.25 and shares[1] > 0.25 and shares[2] < 0.3, shares
    assert max(errors) < 0.3, errors
    real_shares, real_errors = nearest_profile(Y, m1, m2)
    assert real_shares[2] < 0.01 and max(real_errors) < 0.05  # the criterion on the training cells themselves
    # the model before training generates average-like cells: the same check fails
    untrained = ScDBM("paper", **TWO_CLUSTER_FIT)
    untrained.fit(adata, seed=0, device="cpu", progress=False, max_steps=1)
    shares0, _ = nearest_profile(untrained.sample(1000, seed=1).X.toarray(), m1, m2)
    assert shares0[2] > 0.6, shares0


def test_reference_learning_rates_leave_the_weights_untrained(two_clusters):
    data = two_clusters[0]
    options = {"pretrain_epochs": [3, 2], "finetune_epochs": 2}
    start = ScDBM("paper", lr_schedule="reference", optimizer="sgd", **options)  # one update: the initial weights
    start.fit(data, seed=0, device="cpu", progress=False, max_steps=1)
    reference = ScDBM("paper", lr_schedule="reference", optimizer="sgd", dispersion_every=100, **options)
    reference.fit(data, seed=0, device="cpu", progress=False)
    default = ScDBM("paper", dispersion_every=100, **options)
    default.fit(data, seed=0, device="cpu", progress=False)
    for model in (reference, default):
        _assert_constraints(model)
    w0, w_ref, w_def = (m.machine.W1 for m in (start, reference, default))
    assert float((w_ref - w0).abs().max()) < 1e-6  # 70 updates at 1e-11
    assert float((w_def - w0).abs().max()) > 0.01  # measured 0.02 after these 7 epochs


def test_dispersion_update_keeps_every_state_inside_the_nb_domain(monkeypatch, tiny_counts):
    """Regression (pbmc3k, 2026-12-06): theta of gene ARF6 (mean count 0.47) fell from 1.61 to 0.35 while its
    hidden-off mean was 1.51; shifting ``a`` to keep the mean count's mean carried that state past eta = 0
    (mean 3.5e9 counts after the projection). Gene 0 replays those numbers, gene 1 has a rising theta."""
    model = ScDBM("demo", **TINY)
    model.seed = 0
    theta_old, theta_new = torch.tensor([1.61, 0.5]), torch.tensor([0.354, 3.0])
    gene_means = np.r_[0.472, 0.8, np.ones(10)]
    hidden_off = torch.tensor([1.51, 2.0])
    m = NegativeBinomialDBM.initial(gene_means, (3, 2), theta0=0.5, device=torch.device("cpu"))
    m.theta[:2] = theta_old
    m.a[:2] = torch.log(hidden_off / (hidden_off + theta_old))
    m.W1[:2] = torch.tensor([[-0.2, -0.5, -1.0], [-0.1, -0.3, -0.6]])
    trainer = scdbm_module._Trainer(model, m, sp.csr_matrix(tiny_counts.X), gene_means, torch.device("cpu"))
    new = torch.cat([theta_new, m.theta[2:]]).double().numpy()
    monkeypatch.setattr(scdbm_module, "fit_nb_dispersion", lambda *args, **kwargs: new)
    trainer.update_dispersion("nb_rbm")
    means = m.visible_mean(m.hidden_states().float())[:, :2]  # every h1 state
    assert torch.equal(m.theta[:2], theta_new)
    assert float(m.eta(m.hidden_states().float())[:, :2].max()) < -0.1  # old code: -1e-10 (the boundary)
    assert float(means[:, 0].max()) <= 1.51 * (1 + 1e-5)  # old code: 3.5e9
    # where theta rises, a cell at the gene's mean count keeps its mean (the shift's purpose)
    eta_at_mean = math.log(0.8 / (0.8 + 0.5)) + float(m.a[1] - torch.log(hidden_off[1] / (hidden_off[1] + 0.5)))
    assert 3.0 * math.exp(eta_at_mean) / (1 - math.exp(eta_at_mean)) == pytest.approx(0.8, rel=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"dispersion_mean": "chains"},
        {"finetune_batch_size": None},
        {"finetune_model_term": "exact", "finetune_dispersion": True},
        {"gibbs_scheme": "blocked", "optimizer": "sgd", "learning_rate": 1e-3, "finetune_learning_rate": 1e-4},
    ],
)
def test_training_options(options, tiny_counts):
    model, history = _fit_tiny(tiny_counts, **options)
    _assert_constraints(model)
    assert all(np.isfinite(history[k]).all() for k in ("recon_nll", "nll", "theta_median"))
    steps = np.diff([0, *history["step"]])
    dbm_steps = steps[np.array(history["phase"]) == "dbm"]
    assert set(dbm_steps) == ({1} if options.get("finetune_batch_size", 16) is None else {4})  # 60 cells / 16
    theta = history["theta_median"]
    assert theta[1] != theta[0] and theta[3] != theta[1]  # dispersion re-estimated after NB-RBM epochs 2 and 4
    dbm_theta = [t for t, p in zip(theta, history["phase"]) if p == "dbm"]
    assert (len(set(dbm_theta)) > 1) == bool(options.get("finetune_dispersion"))
    assert model.sample(30, seed=0).shape == (30, 12)


# ------------------------------------------------- determinism, files (resume: tests/models/test_model_contract.py)
def _state(model: ScDBM) -> dict[str, torch.Tensor]:
    return model.machine.state()


def test_same_seed_same_samples_and_save_load(tiny_counts, tmp_path):
    model, _ = _fit_tiny(tiny_counts)
    again, _ = _fit_tiny(tiny_counts)
    assert all(torch.equal(_state(model)[k], _state(again)[k]) for k in NegativeBinomialDBM.KEYS)
    model.save(tmp_path / "scdbm.pt")
    loaded = load_model(tmp_path / "scdbm.pt", device="cpu")
    assert type(loaded) is ScDBM and loaded.params == model.params and loaded.var_names == model.var_names
    for options in ({}, {"gibbs_scheme": "blocked"}, {"sampler": "exact"}, {"sample_chains": 7, "thinning": 3}):
        for m in (model, loaded):
            m.params.update(options)
        a = model.sample(50, seed=3, batch_size=20)
        assert a.shape == (50, 12) and a.uns["scsynth"]["model"] == "scdbm"
        assert np.array_equal(a.X.data, np.round(a.X.data)) and a.X.data.min() > 0
        assert (a.X != model.sample(50, seed=3, batch_size=20).X).nnz == 0, options
        assert (a.X != loaded.sample(50, seed=3, batch_size=20).X).nnz == 0, options
        assert (a.X != model.sample(50, seed=4, batch_size=20).X).nnz > 0, options
        for m in (model, loaded):
            m.params.update(ScDBM.presets["demo"] | TINY)
    # a different training seed is a different model (the equality above can fail)
    other, _ = _fit_tiny(tiny_counts, seed=1)
    assert not torch.equal(_state(other)["W1"], _state(model)["W1"])


def test_checkpoint_for_other_data_is_refused(tiny_counts, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    _fit_tiny(tiny_counts, checkpoint=ckpt)
    with pytest.raises(TrainingError, match="another model or for other data"):
        _fit_tiny(tiny_counts[:, :10].copy(), checkpoint=ckpt)


def test_bad_input_and_unfitted_model(tiny_counts):
    bad = tiny_counts.copy()
    bad.X = bad.X * 0.5  # not integer counts
    with pytest.raises(DataError, match="not integer"):
        ScDBM("demo").fit(bad, seed=0, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="not fitted"):
        ScDBM("demo").sample(5)
    with pytest.raises(ConfigError, match="max_steps"):
        _fit_tiny(tiny_counts, max_steps=0)
