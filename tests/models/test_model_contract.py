"""The contract every registered model keeps (issues 16 and 17), checked for each name in the registry on 180 real
PBMC cells x 60 genes with the ``demo`` preset shrunk to a few steps and tiny networks:

- ``fit`` returns a history (a table of columns); ``sample(n)`` gives ``n`` cells of the training genes, in order;
- the same seed gives the same model, history and cells (CPU); another sampling seed gives other cells;
- save -> ``load_model`` gives the same model and cells; ``sample_to_h5ad`` streams the cells ``sample`` gives;
- the capabilities a model declares (:mod:`scsynth_core.models.capabilities`) work, and it has no undeclared ones;
- cells are in the output space the class declares (``representation``);
- conditional models give exactly the requested labels and name an unknown label; the others refuse labels;
- a checkpointed fit killed before its last log row resumes from its last checkpoint to the uninterrupted result;
- ``sample(2.5)``, ``sample(-1)`` and negative or fractional counts are clear errors.

A model added to the registry is parametrised here automatically and fails until it has an entry in ``TINY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scsynth_core.data.preprocess import LSN_TARGET
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models import MODELS, available_models, load_model
from scsynth_core.models.base import REPRESENTATIONS
from scsynth_core.models.capabilities import CodeConditioned, Encodes, NoiseInputs, PosteriorSampling
from scsynth_core.models.training import Checkpointer, TrainLog

LABEL_KEY = "louvain"
CLUSTERS, CELLS_PER_CLUSTER, N_GENES = ("0", "1", "2"), 60, 60
N_SAMPLE = 40  # cells generated per check, in chunks of 16 (chunked generation is part of the contract)
#: History columns that hold wall-clock seconds: the only ones allowed to differ between equal runs.
CLOCK_COLUMNS = {"time_s", "epoch_s"}


@dataclass(frozen=True)
class Tiny:
    """How the contract runs one model: ``demo`` preset overrides, and what the model declares beyond its class."""

    params: dict[str, Any] = field(default_factory=dict)
    #: ``fit(checkpoint=...)`` writes checkpoints and resumes from them (otherwise it must write none).
    checkpoints: bool = False
    #: Gaussian output on log1p values without clipping (the reference methods'): negative values are allowed.
    unclipped_gaussian: bool = False
    #: The ``phase`` of the last row before the checkpoint a killed fit resumes from (phases that keep more state
    #: than the first one, e.g. scDBM's persistent particles, are the ones worth resuming inside).
    resume_phase: str | None = None


#: The shared loop's monitor, weight average and best-checkpoint selection are on, so a resume must restore them.
LOOP = {
    "monitor_cells": 30,
    "validation_fraction": 0.2,
    "ema_decay": 0.9,
    "select": "best",
    "log_every": 1,
    "checkpoint_every": 4,
}
GAN = LOOP | {"generator_layers": [16, 16], "critic_layers": [16, 8], "batch_size": 16, "monitor_every": 2}
AUTOENCODER = {"encoder_layers": [16, 8], "decoder_layers": [8, 16], "batch_size": 16}

TINY: dict[str, Tiny] = {
    "upsample": Tiny(),
    "noise": Tiny(),
    "pca": Tiny({"n_latent": 4}, unclipped_gaussian=True),
    "gmm": Tiny({"n_components": 3, "n_pcs": 5}, unclipped_gaussian=True),
    "scgan": Tiny(GAN | {"latent_dim": 8, "max_steps": 12}, checkpoints=True),
    "cscgan": Tiny(GAN | {"latent_dim": 8, "max_steps": 12}, checkpoints=True),
    "wgangp": Tiny(GAN | {"critic_layers": [16, 3], "noise_dim": 5, "epochs": 1}, checkpoints=True),
    "michigan": Tiny(
        GAN
        | {"critic_layers": [16, 3], "noise_dim": 5, "code_dim": 3, "epochs": 1, "vae": AUTOENCODER | {"epochs": 1}},
        checkpoints=True,
    ),
    "vae": Tiny(LOOP | AUTOENCODER | {"latent_dim": 3, "epochs": 1, "monitor_every": 4}, checkpoints=True),
    "betatcvae": Tiny(LOOP | AUTOENCODER | {"latent_dim": 3, "epochs": 1, "monitor_every": 4}, checkpoints=True),
    # intervals in epochs for ACTIVA
    "activa": Tiny(
        LOOP
        | AUTOENCODER
        | {
            "latent_dim": 4,
            "classifier_layers": [8],
            "epochs": 3,
            "warmup_epochs": 1,
            "classifier_epochs": 2,
            "monitor_every": 1,
            "checkpoint_every": 1,
        },
        checkpoints=True,
        resume_phase="introspective",
    ),
    # one autoencoder step (a batch larger than the cells), then 12 flow steps
    "latentflow": Tiny(
        LOOP
        | {
            "latent_dim": 3,
            "encoder_layers": [16],
            "decoder_layers": [16],
            "flow_width": 16,
            "flow_blocks": 1,
            "embedding_dim": 8,
            "ae_epochs": 1,
            "epochs": 12,
            "batch_size": 256,
            "monitor_every": 2,
            "ode_steps": 3,
        },
        checkpoints=True,
    ),
    # 10 epochs (4 NB-RBM, 3 Bernoulli-RBM, 3 DBM) of 3 updates: the last checkpoint (epoch 8) is a DBM epoch's
    "scdbm": Tiny(
        {
            "hidden_sizes": [3, 2],
            "pretrain_epochs": [4, 3],
            "finetune_epochs": 3,
            "batch_size": 64,
            "finetune_batch_size": 64,
            "finetune_particles": 20,
            "dispersion_every": 2,
            "checkpoint_every": 2,
            "burn_in": 10,
        },
        checkpoints=True,
        resume_phase="dbm",
    ),
    "scvi_posterior": Tiny(
        {"n_hidden": 16, "n_latent": 4, "n_layers": 1, "max_epochs": 3, "n_epochs_kl_warmup": 1, "monitor_every": 0}
    ),
    "scvi_prior": Tiny(
        {"n_hidden": 16, "n_latent": 4, "n_layers": 1, "max_epochs": 3, "n_epochs_kl_warmup": 1, "monitor_every": 0}
    ),
}


class _Killed(Exception):
    """Stands for a job killed mid-training."""


@pytest.fixture(scope="module")
def data(demo_counts) -> ad.AnnData:
    """60 cells of each of three Louvain clusters x the 60 genes with the most counts in them (real counts)."""
    rows = np.concatenate(
        [np.flatnonzero(demo_counts.obs[LABEL_KEY].astype(str) == c)[:CELLS_PER_CLUSTER] for c in CLUSTERS]
    )
    cells = demo_counts[rows]
    genes = np.sort(np.argsort(-np.asarray(cells.X.sum(axis=0)).ravel(), kind="stable")[:N_GENES])
    out = cells[:, genes].copy()
    out.obs[LABEL_KEY] = out.obs[LABEL_KEY].astype(str).astype("category")
    return out


def _tiny(name: str) -> Tiny:
    if name not in TINY:
        pytest.fail(
            f"model '{name}' is registered but has no tiny settings: add an entry for it to TINY in "
            "tests/models/test_model_contract.py (demo-preset overrides for a few steps and tiny networks)"
        )
    return TINY[name]


class _RowCounter:
    """Counts the training-log rows a fit appends (every phase and family logs through ``TrainLog.append``)."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.count, self.kill_at = 0, kill_at

    def wrap(self, append):
        def counted(log, step, **values):
            self.count += 1
            if self.count == self.kill_at:
                raise _Killed
            append(log, step, **values)

        return counted


def _fit(name: str, data: ad.AnnData, *, checkpoint=None):
    """A fresh model fitted with its tiny settings and seed 0; returns it, its history and the rows it logged."""
    klass = MODELS[name]
    model = klass("demo", **_tiny(name).params)
    rows = _RowCounter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainLog, "append", rows.wrap(TrainLog.append))
        history = model.fit(
            data,
            label_key=LABEL_KEY if klass.conditional else None,
            seed=0,
            device="cpu",
            progress=False,
            checkpoint=checkpoint,
        )
    return model, history, rows.count


@pytest.fixture(scope="module")
def fitted(data):
    """``fitted(name)``: the model fitted once with seed 0 (no checkpoint), its history and logged rows.

    Every test takes it, so torch runs on one thread here: more threads are slower for these small matrices."""
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = _fit(name, data)
        return cache[name]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield get
    torch.set_num_threads(threads)


def _without_clock(history: dict[str, list]) -> dict[str, list]:
    return {k: v for k, v in history.items() if k not in CLOCK_COLUMNS}


def _assert_same_state(a: Any, b: Any, where: str = "state") -> None:
    """Saved states (nested dicts and lists of tensors, arrays and plain values) are equal, bit for bit."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where


def _assert_same_cells(a: ad.AnnData, b: ad.AnnData) -> None:
    assert a.shape == b.shape and (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs)


NAMES = available_models()


def test_every_tiny_setting_names_a_registered_model():
    assert sorted(TINY) == NAMES, "TINY must list exactly the registered models"


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_a_history_and_sample_gives_cells_of_the_training_genes(name, fitted, data):
    model, history, _ = fitted(name)
    assert isinstance(history, dict) and "step" in history
    assert {len(column) for column in history.values()} == {len(history["step"])} and history["step"]
    cells = model.sample(N_SAMPLE, seed=0, batch_size=16)
    assert cells.shape == (N_SAMPLE, data.n_vars) and list(cells.var_names) == list(data.var_names)
    assert sp.issparse(cells.X) and cells.X.dtype == np.float32 and np.isfinite(cells.X.data).all()
    assert cells.obs_names.is_unique and cells.uns["scsynth"]["model"] == name


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_model_and_cells_other_seed_other_cells(name, fitted, data):
    model, history, _ = fitted(name)
    again, history_again, _ = _fit(name, data)
    _assert_same_state(model._get_state(), again._get_state())
    assert _without_clock(history_again) == _without_clock(history)
    cells = model.sample(N_SAMPLE, seed=3, batch_size=16)
    _assert_same_cells(cells, again.sample(N_SAMPLE, seed=3, batch_size=16))
    assert (cells.X != model.sample(N_SAMPLE, seed=4, batch_size=16).X).nnz > 0


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_give_the_same_model_and_cells(name, fitted, tmp_path):
    model = fitted(name)[0]
    model.save(tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt", device="cpu")
    assert type(loaded) is type(model) and loaded.params == model.params
    assert (loaded.var_names, loaded.categories, loaded.label_key) == (
        model.var_names,
        model.categories,
        model.label_key,
    )
    _assert_same_state(loaded._get_state(), model._get_state())
    _assert_same_cells(loaded.sample(N_SAMPLE, seed=5, batch_size=16), model.sample(N_SAMPLE, seed=5, batch_size=16))


@pytest.mark.parametrize("name", NAMES)
def test_streamed_generation_writes_chunk_by_chunk_what_sample_gives(name, fitted, tmp_path, monkeypatch):
    """``sample_to_h5ad`` (what ``scsynth generate`` and the workflow call) goes through the same chunks as
    ``sample``, appending each one to the file: the same cells, names, labels, annotations and codes."""
    from scsynth_core.data.h5ad_stream import H5adStreamWriter

    model = fitted(name)[0]
    appended = []
    append = H5adStreamWriter.append
    monkeypatch.setattr(
        H5adStreamWriter,
        "append",
        lambda writer, X, obs, obsm=None: appended.append(X.shape[0]) or append(writer, X, obs, obsm),
    )
    model.sample_to_h5ad(tmp_path / "cells.h5ad", N_SAMPLE, seed=2, batch_size=16)
    assert appended == [16, 16, 8]
    written, memory = ad.read_h5ad(tmp_path / "cells.h5ad"), model.sample(N_SAMPLE, seed=2, batch_size=16)
    _assert_same_cells(written, memory)
    assert written.obsm.keys() == memory.obsm.keys()
    for key in memory.obsm:
        np.testing.assert_array_equal(written.obsm[key], memory.obsm[key])
    assert written.uns["scsynth"].pop("generation_seconds") >= 0


#: What each capability promises, as the methods a model without it must not have (an undeclared method would be
#: missed by the callers that test capabilities with isinstance).
CAPABILITY_METHODS = {
    Encodes: ("encode",),
    PosteriorSampling: ("posterior",),
    CodeConditioned: ("generate_from_codes", "traverse"),
    NoiseInputs: ("noise_of",),
}


@pytest.mark.parametrize("name", NAMES)
def test_capabilities_agree_with_what_the_model_does(name, fitted, data):
    """Each capability a model declares works on the fitted model, and one it does not declare is not there."""
    model = fitted(name)[0]
    klass = type(model)
    for capability, methods in CAPABILITY_METHODS.items():
        if not isinstance(model, capability):
            assert not any(hasattr(model, m) for m in methods), f"{name} has {methods} but is no {capability}"
    assert klass.latent_param is None or isinstance(model, Encodes), "a latent size without codes to score"
    if isinstance(model, Encodes):
        codes = model.encode(data)
        assert codes.ndim == 2 and codes.shape[0] == data.n_obs and np.isfinite(codes).all()
        if klass.latent_param is not None:
            assert codes.shape[1] == model.params[klass.latent_param]
    if isinstance(model, PosteriorSampling):
        mean, logvar = model.posterior(data)
        assert mean.shape == logvar.shape == codes.shape and np.isfinite(logvar).all()
        np.testing.assert_array_equal(mean, codes)  # encode gives the posterior means
        drawn = model.encode(data, sample=True, seed=1)
        assert not np.allclose(drawn, mean) and np.array_equal(drawn, model.encode(data, sample=True, seed=1))
    if isinstance(model, CodeConditioned):
        cells = model.sample(N_SAMPLE, seed=6, batch_size=16)
        assert cells.obsm["X_codes"].shape == (N_SAMPLE, model.code_dim)
        # Cells are a function of their codes (and the seed's noise): decoding the drawn codes gives them again.
        again = model.sample(N_SAMPLE, codes=cells.obsm["X_codes"], seed=6, batch_size=16)
        assert (again.X != cells.X).nnz == 0
        np.testing.assert_array_equal(again.obsm["X_codes"], cells.obsm["X_codes"])
    else:
        with pytest.raises(ConfigError, match=r"sample\(\) takes no argument\(s\) codes"):
            model.sample(2, codes=np.zeros((2, 3), dtype=np.float32))
    if isinstance(model, NoiseInputs):
        noise = model.noise_of(N_SAMPLE, seed=6)
        assert (
            noise.shape == (N_SAMPLE, model.params["noise_dim"])
            and np.array_equal(noise, model.noise_of(N_SAMPLE, seed=6))
            and not np.array_equal(noise, model.noise_of(N_SAMPLE, seed=7))
        )


@pytest.mark.parametrize("name", NAMES)
def test_cells_are_in_the_declared_output_space(name, fitted):
    model = fitted(name)[0]
    representation = type(model).representation
    assert representation in REPRESENTATIONS
    cells = model.sample(N_SAMPLE, seed=0, batch_size=16)
    assert cells.uns["scsynth"]["representation"] == representation
    values = cells.X.data
    if representation == "counts":
        assert values.min() >= 0 and np.array_equal(values, np.round(values)), "counts: non-negative integers"
    elif representation == "lsn":
        assert values.min() >= 0
        np.testing.assert_allclose(
            np.asarray(cells.X.sum(axis=1), dtype=np.float64).ravel(),
            LSN_TARGET,
            rtol=1e-4,
            err_msg="LSN: every cell sums to the library size",
        )
    else:  # log1p
        assert np.isfinite(values).all()
        if not _tiny(name).unclipped_gaussian:
            assert values.min() >= 0, "log1p of counts is not negative"


@pytest.mark.parametrize("name", NAMES)
def test_labels_are_honoured_by_conditional_models_and_refused_by_the_others(name, fitted):
    model = fitted(name)[0]
    if not type(model).conditional:
        with pytest.raises(ConfigError, match="not conditional"):
            model.sample(2, labels=["0", "1"], seed=0)
        return
    assert model.categories == sorted(CLUSTERS)
    wanted = {"0": 7, "2": 5}
    cells = model.sample(12, labels=wanted, seed=0, batch_size=16)
    assert cells.obs["cluster"].astype(str).value_counts().to_dict() == wanted
    order = ["1", "0", "1", "2", "2", "0"]
    assert list(model.sample(6, labels=order, seed=0).obs["cluster"].astype(str)) == order
    with pytest.raises(ConfigError, match="no-such-type"):
        model.sample(2, labels={"0": 1, "no-such-type": 1}, seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_bad_requests_and_bad_counts_are_clear_errors(name, fitted, data):
    model = fitted(name)[0]
    for bad in (2.5, -1):
        with pytest.raises(ConfigError, match=r"n_cells must be a positive integer"):
            model.sample(bad)
    negative, fractional = data.copy(), data.copy()
    negative.X = negative.X.astype(np.float32)
    negative.X.data[0] = -1.0
    fractional.X = fractional.X.astype(np.float32) * 0.5
    klass = type(model)
    for bad, message in ((negative, "negative"), (fractional, "not integer")):
        with pytest.raises(DataError, match=message):
            klass("demo", **_tiny(name).params).fit(
                bad, label_key=LABEL_KEY if klass.conditional else None, seed=0, device="cpu", progress=False
            )


@pytest.mark.parametrize("name", NAMES)
def test_training_killed_before_its_last_row_resumes_to_the_uninterrupted_result(
    name, fitted, data, tmp_path, monkeypatch
):
    """The fit is killed as it logs its last row; the rerun must go on from the last checkpoint (not start again)
    and end with the uninterrupted run's weights, history, selection and cells."""
    straight, history, rows = fitted(name)
    ckpt = tmp_path / "ckpt.pt"
    if not _tiny(name).checkpoints:
        _fit(name, data, checkpoint=ckpt)
        assert not list(tmp_path.iterdir()), "a checkpoint was written: declare checkpoints=True in TINY"
        return
    loaded: list[tuple[Any, dict]] = []
    real_load = Checkpointer.load

    def load(checkpointer, **kwargs):
        state = real_load(checkpointer, **kwargs)
        if state is not None:
            loaded.append((checkpointer.path, state))
        return state

    monkeypatch.setattr(Checkpointer, "load", load)
    killed = _RowCounter(kill_at=rows)
    with monkeypatch.context() as patch, pytest.raises(_Killed):
        patch.setattr(TrainLog, "append", killed.wrap(TrainLog.append))
        _fit(name, data, checkpoint=ckpt)
    assert not loaded  # nothing to resume the first time
    resumed, resumed_history, resumed_rows = _fit(name, data, checkpoint=ckpt)
    saved = [state for path, state in loaded if path == ckpt]
    assert len(saved) == 1 and 0 < saved[0]["step"] < history["step"][-1], "no checkpoint before the last row"
    if _tiny(name).resume_phase is not None:
        assert saved[0]["history"]["phase"][-1] == _tiny(name).resume_phase
    # it went on from the checkpoints: only the rows after them were logged again
    assert resumed_rows == rows - sum(len(state["history"].get("step", [])) for _, state in loaded)
    _assert_same_state(resumed._get_state(), straight._get_state())
    assert _without_clock(resumed_history) == _without_clock(history)
    summary = {k: v for k, v in straight.training_summary.items() if k != "seconds"}
    assert {k: v for k, v in resumed.training_summary.items() if k != "seconds"} == summary
    if straight.params.get("select") == "best":
        assert summary["selected"].startswith("best"), "the monitor never ran: selection was not tested"
    _assert_same_cells(
        resumed.sample(N_SAMPLE, seed=1, batch_size=16), straight.sample(N_SAMPLE, seed=1, batch_size=16)
    )
