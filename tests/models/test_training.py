"""Shared training utilities: device choice, seeding, minibatches, NaN detection, logs, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scsynth_core.errors import ConfigError, TrainingError
from scsynth_core.models.training import (
    Checkpointer,
    TrainLog,
    check_finite,
    dense_rows,
    get_rng_state,
    minibatches,
    resolve_device,
    seed_everything,
    set_rng_state,
)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_minibatches_cover_each_row_once_per_epoch():
    X = sp.random(103, 7, density=0.3, format="csr", random_state=0)
    rng = np.random.default_rng(0)
    batches = list(minibatches(X, batch_size=10, rng=rng, drop_last=False))
    assert sorted(np.concatenate(batches)) == list(range(103))
    dropped = list(minibatches(X, batch_size=10, rng=rng, drop_last=True))
    assert len(dropped) == 10 and all(len(b) == 10 for b in dropped)
    rows = dropped[0]
    assert np.array_equal(dense_rows(X, rows), X[rows].toarray().astype(np.float32))


def test_check_finite_stops_with_clear_error():
    check_finite({"loss": 1.0}, step=3, model="m")
    with pytest.raises(TrainingError, match="non-finite loss at step 7 .*critic=nan"):
        check_finite({"critic": float("nan"), "gen": 1.0}, step=7, model="m")


def test_train_log_keeps_columns_aligned():
    log = TrainLog()
    log.append(1, loss=0.5)
    log.append(2, loss=0.4, monitor=3.0)
    assert log.history["step"] == [1, 2]
    assert log.history["monitor"] == [None, 3.0]
    assert len(log.history["time_s"]) == 2


def _train(n_steps, ckpt, *, stop_after=None, seed=0):
    """A toy regression trained with the shared utilities, stoppable and resumable."""
    rng = seed_everything(seed)
    X = np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32)
    y = X @ np.arange(5, dtype=np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    step = 0
    state = ckpt.load()
    if state is not None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        set_rng_state(rng, state["rng"])
        step = state["step"]
    while step < n_steps:
        rows = next(minibatches(X, batch_size=16, rng=rng))
        loss = ((net(torch.from_numpy(X[rows])).squeeze(1) - torch.from_numpy(y[rows])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if ckpt.due(step):
            ckpt.save({"net": net.state_dict(), "opt": opt.state_dict(), "rng": get_rng_state(rng), "step": step})
        if stop_after is not None and step == stop_after:
            return None
    return [p.detach().clone() for p in net.parameters()]


def test_interrupted_training_resumes_to_identical_weights(tmp_path):
    straight = _train(30, Checkpointer(None, every=5))
    ckpt = Checkpointer(tmp_path / "ckpt.pt", every=5)
    assert _train(30, ckpt, stop_after=12) is None  # "killed" after step 12; last checkpoint at step 10
    resumed = _train(30, ckpt)
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))
    other_seed = _train(30, Checkpointer(None, every=5), seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(straight, other_seed))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="cannot resume"):
        Checkpointer(path, every=1).load()
