"""scVI posterior and prior sampling (Treppner et al. 2021) on scvi-tools' SCVI: presets, training history,
what the two samplers draw, determinism, save/load.

Synthetic pilot: 300 cells x 100 genes of negative-binomial counts in three clusters with log-normal library
sizes. Two short trainings (30 epochs, 10 warm-up) are shared by the tests. Torch runs on one thread: on the
shared 2-core machines more threads are several times slower for these small matrices.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from scsynth_core.errors import ConfigError, TrainingError
from scsynth_core.models import MODELS, load_model
from scsynth_core.models.scvi import SAMPLE_BLOCK, ScviPosterior, ScviPrior, _EpochRecorder

N_CELLS, N_GENES = 300, 100
TRAIN = {"max_epochs": 30, "n_epochs_kl_warmup": 10}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def nb_clusters(n_cells: int = N_CELLS, n_genes: int = N_GENES, seed: int = 0) -> ad.AnnData:
    """NB counts (inverse dispersion 5) in three clusters with distinct gene profiles; log library ~ N(log 800, 0.3)."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 3, n_cells)
    profiles = rng.gamma(0.5, 1.0, (3, n_genes))
    profiles /= profiles.sum(axis=1, keepdims=True)
    library = rng.lognormal(math.log(800), 0.3, n_cells)
    mu = profiles[cluster] * library[:, None]
    X = rng.negative_binomial(5, 5 / (5 + mu)).astype(np.float32)
    obs = pd.DataFrame({"cluster": cluster.astype(str)}, index=[f"cell{i}" for i in range(n_cells)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]))


@pytest.fixture(scope="module")
def pilot() -> ad.AnnData:
    return nb_clusters()


@pytest.fixture(scope="module")
def posterior(pilot):
    model = ScviPosterior("demo", **TRAIN)
    history = model.fit(pilot, seed=0, device="cpu", progress=False)
    return model, history


@pytest.fixture(scope="module")
def prior(pilot):
    model = ScviPrior("demo", **TRAIN)
    model.fit(pilot, seed=0, device="cpu", progress=False)
    return model


def lognorm(X) -> np.ndarray:
    X = np.asarray(X.todense() if sp.issparse(X) else X, dtype=np.float64)
    return np.log1p(X / np.maximum(X.sum(axis=1, keepdims=True), 1) * 1e4)


def rowwise_corr(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlation of row i of A with row i of B."""
    A = A - A.mean(axis=1, keepdims=True)
    B = B - B.mean(axis=1, keepdims=True)
    return (A * B).sum(axis=1) / np.sqrt((A * A).sum(axis=1) * (B * B).sum(axis=1))


# ------------------------------------------------------------------------------------------------- presets


def test_registry_presets_and_parameter_checks():
    assert MODELS["scvi_posterior"] is ScviPosterior and MODELS["scvi_prior"] is ScviPrior
    for cls in (ScviPosterior, ScviPrior):
        assert cls.representation == "counts" and not cls.conditional
        paper = cls.presets["paper"]
        assert {
            k: paper[k]
            for k in (
                "n_layers",
                "n_hidden",
                "n_latent",
                "learning_rate",
                "max_epochs",
                "n_epochs_kl_warmup",
                "batch_size",
                "train_size",
            )
        } == {
            "n_layers": 2,
            "n_hidden": 64,
            "n_latent": 14,
            "learning_rate": 0.01,
            "max_epochs": 200,
            "n_epochs_kl_warmup": 75,
            "batch_size": 36,
            "train_size": 0.7,
        }
        assert paper["gene_likelihood"] == "nb" and paper["dispersion"] == "gene"
        assert paper["use_observed_lib_size"] is False and paper["max_steps"] is None
        demo = cls.presets["demo"]
        # the demo shortens the schedule only (epochs and the warm-up in proportion)
        assert {k for k in paper if paper[k] != demo[k]} == {"max_epochs", "n_epochs_kl_warmup", "monitor_every"}
        assert demo["max_epochs"] <= 30
        assert demo["n_epochs_kl_warmup"] / demo["max_epochs"] == pytest.approx(75 / 200, abs=0.03)
    assert ScviPrior.presets["paper"]["library"] == "prior" and "library" not in ScviPosterior.presets["paper"]
    bad = [
        {"gene_likelihood": "gaussian"},
        {"dispersion": "gene-batch"},
        {"batch_size": 1},
        {"train_size": 0.0},
        {"train_size": 1.5},
        {"n_latent": 0},
        {"learning_rate": -1.0},
        {"max_steps": 0},
        {"use_observed_lib_size": "no"},
    ]
    for params in bad:
        with pytest.raises(ConfigError):
            ScviPosterior(**params)
    with pytest.raises(ConfigError, match="library must be one of"):
        ScviPrior(library="empirical")
    with pytest.raises(ConfigError, match="library 'prior' needs use_observed_lib_size false"):
        ScviPrior(use_observed_lib_size=True)
    ScviPrior(use_observed_lib_size=True, library="observed")  # accepted
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        ScviPosterior(library="prior")


def test_errors_before_fitting_and_for_tiny_data(pilot):
    with pytest.raises(ConfigError, match="not fitted"):
        ScviPosterior().sample(5)
    with pytest.raises(ConfigError, match="need at least 2"):
        ScviPosterior(**TRAIN).fit(pilot[:1].copy(), seed=0, device="cpu", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            ScviPosterior(**TRAIN).fit(pilot, seed=0, device="cuda", progress=False)


# ------------------------------------------------------------------------------------------------ training


def test_history_has_one_row_per_epoch_with_scvi_losses(posterior):
    model, history = posterior
    n_train = math.ceil(0.7 * N_CELLS)  # scvi-tools' split: 211 training, 89 validation cells
    steps_per_epoch = math.ceil(n_train / 36)
    assert history["epoch"] == list(range(1, 31))
    assert history["step"] == [steps_per_epoch * e for e in range(1, 31)]
    for key in ("train_loss", "validation_loss", "elbo_train", "elbo_validation", "time_s"):
        assert len(history[key]) == 30 and all(np.isfinite(v) for v in history[key]), key
    assert np.all(np.diff(history["time_s"]) >= 0)
    # training works: the ELBO after training is far below the first epoch's, on held-out cells too
    assert history["elbo_train"][-1] < 0.8 * history["elbo_train"][0]
    assert history["elbo_validation"][-1] < 0.8 * history["elbo_validation"][0]
    # the KL warm-up reaches 1 after n_epochs_kl_warmup epochs
    weights = [w for w in history["kl_weight"] if w is not None]
    assert weights and weights[-1] == pytest.approx(1.0)
    assert model._scvi.module.gene_likelihood == "nb" and model._scvi.module.n_latent == 14


def test_fit_is_quiet_and_max_steps_caps_training(pilot, capfd):
    model = ScviPosterior("demo", max_epochs=5)
    history = model.fit(pilot, seed=0, device="cpu", max_steps=8, progress=False)
    out, err = capfd.readouterr()
    for noise in ("GPU available", "Seed set", "Tip:", "srun", "Trainer.fit"):
        assert noise not in out + err, noise
    assert history["step"][-1] == 8 and history["epoch"][-1] == 2


def test_a_non_finite_training_loss_stops_training():
    recorder = _EpochRecorder("scvi_posterior")
    trainer = SimpleNamespace(current_epoch=0, global_step=6, callback_metrics={"train_loss": torch.tensor(1.0)})
    recorder.callback.on_train_epoch_end(trainer, None)
    assert recorder.rows[0][:2] == (0, 6)
    trainer.callback_metrics["train_loss"] = torch.tensor(float("nan"))
    with pytest.raises(TrainingError, match="non-finite training loss in epoch 1"):
        recorder.callback.on_train_epoch_end(trainer, None)


@pytest.mark.parametrize(("n_cells", "steps"), [(52, [1, 2]), (53, [1, 2]), (55, [2, 4])])
def test_a_last_minibatch_of_fewer_than_3_cells_is_skipped(n_cells, steps):
    # ceil(0.7 n) training cells: 52 -> 37 = 36 + 1 (batch norm cannot train on one cell), 53 -> 36 + 2, 55 -> 36 + 3
    data = nb_clusters(n_cells=n_cells, n_genes=20)
    history = ScviPosterior(max_epochs=2, n_epochs_kl_warmup=1).fit(data, seed=0, device="cpu", progress=False)
    assert history["step"] == steps


def test_without_validation_cells():
    data = nb_clusters(n_cells=52, n_genes=20)
    history = ScviPosterior(max_epochs=2, train_size=1.0).fit(data, seed=0, device="cpu", progress=False)
    assert history["step"] == [2, 4] and history["validation_loss"] == [None, None]
    assert all(np.isfinite(history["train_loss"]))


# ------------------------------------------------------------------------------------------------ sampling


def test_samples_are_count_matrices_of_the_training_genes(posterior, prior, pilot):
    for model in (posterior[0], prior):
        cells = model.sample(450, seed=3, batch_size=200)
        assert cells.shape == (450, N_GENES) and sp.isspmatrix_csr(cells.X)
        assert list(cells.var_names) == list(pilot.var_names)
        values = cells.X.data
        assert values.min() >= 0 and np.array_equal(values, np.round(values))
        assert cells.X.sum(axis=1).min() > 0
        assert cells.uns["scsynth"]["model"] == model.name and cells.uns["scsynth"]["seed"] == 3


def test_posterior_draws_are_scvi_tools_posterior_predictive_samples_tiled(posterior):
    model, _ = posterior
    cells = model.sample(2 * N_CELLS + 17, seed=11, batch_size=250).X
    torch.manual_seed(11)
    # pilot cells in the sampling seed's permutation, tiled
    rows = np.random.default_rng(11).permutation(N_CELLS)[np.arange(SAMPLE_BLOCK) % N_CELLS]
    direct = model._scvi.posterior_predictive_sample(indices=rows, batch_size=SAMPLE_BLOCK).to_scipy_sparse()
    assert (cells != sp.csr_matrix(direct)[: cells.shape[0]]).nnz == 0


def test_posterior_copies_track_their_pilot_cells_prior_samples_do_not(posterior, prior, pilot):
    real = lognorm(pilot.X)
    other = np.roll(np.arange(N_CELLS), 1)  # pilot cells are in random cluster order: a random other cell
    post = lognorm(posterior[0].sample(2 * N_CELLS, seed=5).X)
    order = np.random.default_rng(5).permutation(N_CELLS)  # generated cell i copies pilot cell order[i]
    for copy in (post[:N_CELLS], post[N_CELLS:]):
        own, foreign = rowwise_corr(copy, real[order]), rowwise_corr(copy, real[order][other])
        assert (own - foreign).mean() > 0.15
        assert (own > foreign).mean() > 0.7  # a third of the other cells share the cluster
    # tiling order: cell i and cell i + n_pilot are two draws for the same pilot cell
    same = rowwise_corr(post[:N_CELLS], post[N_CELLS:])
    shifted = rowwise_corr(post[:N_CELLS], post[N_CELLS:][other])
    assert (same - shifted).mean() > 0.15
    # two passes are fresh draws, not copies
    assert not np.allclose(post[:N_CELLS], post[N_CELLS:])
    # fewer cells than the pilot: a random subset, not the first rows
    assert sorted(order[:50]) != list(range(50))
    # prior samples: cell i has nothing to do with pilot cell i
    fake = lognorm(prior.sample(N_CELLS, seed=5).X)
    gap = rowwise_corr(fake, real) - rowwise_corr(fake, real[other])
    assert abs(gap.mean()) < 0.05


def test_prior_library_sizes_follow_the_fitted_library_prior(prior, pilot):
    log_lib = np.log(np.asarray(pilot.X.sum(axis=1)).ravel())
    module = prior._scvi.module
    # scVI's library prior: mean and variance of the pilot's log library sizes
    assert module.library_log_means.item() == pytest.approx(log_lib.mean(), abs=1e-4)
    assert module.library_log_vars.item() == pytest.approx(log_lib.var(), rel=1e-3)
    generated = np.log(np.asarray(prior.sample(3000, seed=2).X.sum(axis=1)).ravel())
    assert generated.mean() == pytest.approx(log_lib.mean(), abs=0.05)
    # NB sampling noise adds a little spread to the prior's
    assert log_lib.std() * 0.9 < generated.std() < log_lib.std() * 1.3


def test_prior_with_observed_library_sizes(pilot):
    model = ScviPrior("demo", library="observed", **TRAIN)
    model.fit(pilot, seed=0, device="cpu", progress=False)
    log_lib = np.log(np.asarray(pilot.X.sum(axis=1)).ravel())
    assert np.allclose(np.sort(model._log_library.numpy()), np.sort(log_lib), atol=1e-5)
    generated = np.log(np.asarray(model.sample(3000, seed=2).X.sum(axis=1)).ravel())
    assert generated.mean() == pytest.approx(log_lib.mean(), abs=0.05)


def test_recomputed_batchnorm_statistics_fix_the_posterior_library_sizes(posterior, pilot):
    """After 30 epochs (180 steps) the running batch-norm averages lag: posterior draws are ~4x too deep.
    Recomputing the statistics at the final weights changes only those buffers and removes most of the gap."""
    running, _ = posterior
    recomputed = ScviPosterior("demo", batchnorm_stats="recompute", **TRAIN)
    recomputed.fit(pilot, seed=0, device="cpu", progress=False)
    before, after = running._scvi.module.state_dict(), recomputed._scvi.module.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(
        k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked") for k in changed
    )
    log_lib = np.log(np.asarray(pilot.X.sum(axis=1)).ravel()).mean()

    def gap(model):
        return np.log(np.asarray(model.sample(2000, seed=0).X.sum(axis=1)).ravel()).mean() - log_lib

    assert gap(running) > 1.0
    assert abs(gap(recomputed)) < 0.35


# ------------------------------------------------------------------------------------------- determinism


def test_same_seed_same_cells_whatever_the_batch_size(posterior, prior):
    for model in (posterior[0], prior):
        a = model.sample(SAMPLE_BLOCK + 300, seed=7).X
        b = model.sample(SAMPLE_BLOCK + 300, seed=7, batch_size=333).X
        c = model.sample(SAMPLE_BLOCK + 300, seed=8).X
        assert (a != b).nnz == 0
        assert (a != c).nnz > 0


def test_save_and_load_give_identical_samples(posterior, prior, pilot, tmp_path):
    for model in (posterior[0], prior):
        path = tmp_path / f"{model.name}.pt"
        model.save(path)
        loaded = load_model(path, device="cpu")
        assert type(loaded) is type(model) and loaded.params == model.params
        assert loaded.var_names == list(pilot.var_names) and loaded.n_train == N_CELLS
        a, b = model.sample(500, seed=4).X, loaded.sample(500, seed=4).X
        assert (a != b).nnz == 0
    payload = torch.load(tmp_path / "scvi_posterior.pt", weights_only=True)
    assert payload["state"]["module_kwargs"]["n_latent"] == 14
    loaded = load_model(tmp_path / "scvi_posterior.pt", device="cpu")
    assert (loaded._pilot != sp.csr_matrix(pilot.X)).nnz == 0  # the pilot travels in the model file
