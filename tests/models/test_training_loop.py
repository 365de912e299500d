"""The shared training loop: budgets, checkpoint selection, early stopping, weight averaging, runs killed at random
steps resuming exactly, and the realism monitor (kNN AUC known answers). Every model's own resume check is in
tests/models/test_model_contract.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scsynth_core.errors import ConfigError
from scsynth_core.models import get_model_class
from scsynth_core.models import training as training_module
from scsynth_core.models.monitors import knn_auc, validation_rows
from scsynth_core.models.training import (
    LOOP_DEFAULTS,
    TrainingLoop,
    TrainingTask,
    WeightAverage,
    check_loop_params,
)

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------- a scripted task
class _ScriptedMonitor:
    """Scores a 'cell' by its distance from 0: the generator's weight IS its quality."""

    n_cells = 1

    def score(self, cells, representation):
        value = abs(float(cells))
        return {"monitor_auc": min(1.0, 0.5 + value / 100), "monitor_mmd": value}


class _ScriptedTask(TrainingTask):
    """One weight that step ``i`` sets to ``script[i]`` (an optimiser records the step count)."""

    generator_names = ("net",)

    def __init__(self, script):
        self.net = torch.nn.Linear(1, 1, bias=False)
        self.script = script
        self.modules = {"net": self.net}
        self.optimizers = {"sgd": torch.optim.SGD(self.net.parameters(), lr=0.0)}

    def step(self, step):
        with torch.no_grad():
            self.net.weight.fill_(self.script[step])
        return {"loss": self.net.weight.sum().detach()}

    def generate(self, n, seed):
        return self.net.weight.item()


def _loop(script, **params):
    p = LOOP_DEFAULTS | {"monitor_every": 1, "log_every": 1} | params
    loop = TrainingLoop(
        "toy", p, max_steps=len(script), rng=np.random.default_rng(0), monitor=_ScriptedMonitor(), progress=False
    )
    task = _ScriptedTask(script)
    history = loop.run(task)
    return loop, task, history


SCRIPT = [9.0, 7.0, 2.0, 5.0, 3.0, 8.0, 6.0]


def test_select_best_keeps_the_best_monitored_weights():
    loop, task, history = _loop(SCRIPT, select="best")
    assert task.net.weight.item() == 2.0 and loop.summary["best_step"] == 3
    assert history["monitor_mmd"] == SCRIPT  # every step monitored
    loop, task, _ = _loop(SCRIPT, select="last")
    assert task.net.weight.item() == 6.0 and loop.summary["stopped"] == "max_steps"


def test_early_stopping_after_patience_evaluations_without_improvement():
    loop, task, history = _loop(SCRIPT, select="best", patience=2)
    assert history["step"] == [1, 2, 3, 4, 5]  # best at 3, no better at 4 and 5
    assert loop.summary["stopped"] == "patience" and task.net.weight.item() == 2.0


def test_weight_average_known_answer():
    loop, task, history = _loop([4.0, 0.0, 0.0, 0.0], ema_decay=0.3, select="last")
    # shadow: 4 (the first update copies), then decay min(0.3, 2/11) = 2/11, min(0.3, 3/12) = 1/4, then 0.3
    expected = [4.0, 8 / 11, 2 / 11, 0.3 * 2 / 11]
    np.testing.assert_allclose(history["monitor_mmd"], expected, rtol=1e-6)  # the monitor scores the shadow
    assert task.net.weight.item() == pytest.approx(expected[-1]) and loop.summary["selected"] == "last (averaged)"
    module = torch.nn.BatchNorm1d(2)
    average = WeightAverage(module, 0.9)
    module.running_mean.fill_(3.0)
    average.update()
    assert torch.equal(average.shadow["running_mean"], module.running_mean)  # buffers are copied


def test_wall_clock_budget_stops_cleanly_with_a_final_evaluation(tmp_path):
    loop, task, history = _loop(SCRIPT, max_minutes=1e-9, select="best", monitor_every=100)
    assert loop.summary["stopped"] == "max_minutes" and loop.summary["steps"] == 1
    assert history["step"] == [1] and history["monitor_mmd"] == [9.0]  # the stop is evaluated and logged
    assert task.net.weight.item() == 9.0


@pytest.mark.parametrize(
    "bad",
    [
        {"select": "first"},
        {"patience": 0},
        {"ema_decay": 1.0},
        {"max_minutes": -1},
        {"monitor_every": "10"},
        {"validation_fraction": 0.9},
    ],
)
def test_loop_hyperparameters_are_checked(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        check_loop_params("toy", LOOP_DEFAULTS | bad)


# ------------------------------------------------------------------------------------------- the monitor
def test_knn_auc_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 5))
    assert knn_auc(a, a + 100.0) == 1.0  # far apart: every neighbour is of the own set
    same = knn_auc(a, rng.normal(size=(200, 5)))
    assert abs(same - 0.5) < 0.08
    assert knn_auc(a, a.copy()) <= 0.5 + 1e-9  # exact duplicates: each point's twin is of the other set


def test_validation_rows_hold_out_no_rare_class_cells():
    labels = np.array(["common"] * 500 + ["rare"] * 10)
    rows, train = validation_rows(510, fraction=0.1, max_cells=1000, seed=0, labels=labels)
    assert len(rows) == 51 and set(labels[rows]) == {"common"}
    assert np.array_equal(np.sort(np.r_[rows, train]), np.arange(510))
    again, _ = validation_rows(510, fraction=0.1, max_cells=1000, seed=0, labels=labels)
    assert np.array_equal(rows, again)
    none, everything = validation_rows(100, fraction=0.1, max_cells=1000, seed=0)
    assert len(none) == 0 and len(everything) == 100  # 10 cells are too few to monitor


# ------------------------------------------------------------- runs killed at random steps resume exactly
MONITORED = {
    "monitor_cells": 30,
    "validation_fraction": 0.5,
    "ema_decay": 0.9,
    "select": "best",
    "log_every": 1,
    "checkpoint_every": 4,
}
GAN = {"generator_layers": [16, 16], "critic_layers": [16, 8], "batch_size": 16, "monitor_every": 2}
CASES = {
    "scgan": GAN | {"latent_dim": 8, "max_steps": 12},
    # one autoencoder step (a batch larger than the cells), then 12 flow steps
    "latentflow": {
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
    },
}


class _Killed(Exception):
    pass


def _fit(name, data, checkpoint=None):
    klass = get_model_class(name)
    params = MONITORED | CASES[name]
    model = klass("demo", **params)
    label_key = "cluster" if (klass.conditional or klass.labels_optional) else None
    history = model.fit(data, label_key=label_key, seed=0, device="cpu", progress=False, checkpoint=checkpoint)
    return model, history


def _state(model):
    nets = {k: v for k, v in vars(model).items() if isinstance(v, torch.nn.Module)}
    return {f"{n}.{k}": v.clone() for n, net in nets.items() for k, v in net.state_dict().items()}


def _deeper(counts):
    data = counts.copy()
    data.X = data.X * 3  # deeper cells: the monitor's PCA needs some spread
    return data


def _own_steps(name, history):
    """Steps of the history rows that the model's own training loop logged (not latentflow's autoencoder's)."""
    phases = history.get("phase", [None] * len(history["step"]))
    own = ["flow"] if name == "latentflow" else [None]
    return [s for s, ph in zip(history["step"], phases) if ph in own]


def _killed_and_resumed(name, data, checkpoint, monkeypatch, dies):
    """Train with ``checkpoint`` until ``dies(step, row)`` (``row``: the model's log rows, counted from 1) kills the
    run, then train again from the checkpoint. Returns the resumed model and history, the step the checkpoint
    held and how many rows the resumed run logged."""
    real_check = training_module.check_finite
    rows = {"killed": 0, "resumed": 0}

    def killed(losses, *, step, model):
        real_check(losses, step=step, model=model)
        rows["killed"] += model == name
        if model == name and dies(step, rows["killed"]):
            raise _Killed

    monkeypatch.setattr(training_module, "check_finite", killed)
    with pytest.raises(_Killed):
        _fit(name, data, checkpoint=checkpoint)
    saved_step = training_module.Checkpointer(checkpoint, every=1).load()["step"]

    def counted(losses, *, step, model):
        real_check(losses, step=step, model=model)
        rows["resumed"] += model == name

    monkeypatch.setattr(training_module, "check_finite", counted)
    resumed, history = _fit(name, data, checkpoint=checkpoint)
    monkeypatch.setattr(training_module, "check_finite", real_check)
    return resumed, history, saved_step, rows["resumed"]


def _assert_same_result(straight, history, resumed, resumed_history):
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for column in ("step", "monitor_auc", "monitor_mmd"):
        assert resumed_history[column] == history[column], column
    assert resumed.training_summary["best_step"] == straight.training_summary["best_step"]
    x, y = straight.sample(20, seed=1).X, resumed.sample(20, seed=1).X
    assert (x != y).nnz == 0


@pytest.mark.parametrize("name", sorted(CASES))  # 12 steps of their own loop each
def test_training_killed_at_random_steps_resumes_to_the_uninterrupted_result(name, tiny_counts, tmp_path, monkeypatch):
    """Fault injection: three runs killed at steps drawn at random between the first checkpoint and the end (the
    last step included) each resume to the weights, history and cells of the uninterrupted run."""
    data = _deeper(tiny_counts)
    straight, history = _fit(name, data)
    every = (MONITORED | CASES[name])["checkpoint_every"]
    candidates = [s for s in _own_steps(name, history) if s > every]
    assert len(candidates) >= 3
    for kill_step in np.random.default_rng(18).choice(candidates, size=3, replace=False).tolist():
        resumed, resumed_history, saved_step, rows = _killed_and_resumed(
            name, data, tmp_path / f"ckpt{kill_step}.pt", monkeypatch, lambda step, row, k=kill_step: step == k
        )
        assert saved_step == (kill_step - 1) // every * every, kill_step  # the last checkpoint before the kill
        assert rows == sum(s > saved_step for s in _own_steps(name, history)), kill_step
        _assert_same_result(straight, history, resumed, resumed_history)


# ------------------------------------------------------------- the monitor ranks checkpoints as the forest does
def test_monitor_ranks_checkpoints_as_the_random_forest(demo_counts):
    """A short latentflow run on the embedded real cells (the monitor is the same for every model; this one trains
    in seconds): at each monitor evaluation the same weights also generate a test-sized set for the realism
    protocol's forest; the monitor must order the checkpoints as the forest does."""
    import sys

    from sklearn.model_selection import train_test_split

    from scsynth_core.metrics.representation import fit_representation
    from scsynth_core.models.flow import LatentFlow

    sys.path.insert(0, str(REPO / "benchmarks"))
    from monitor_vs_rf import agreement, checkpoint_realism

    rows = np.arange(demo_counts.n_obs)
    train_rows, test_rows = train_test_split(
        rows, test_size=0.3, random_state=0, stratify=demo_counts.obs["bulk_labels"]
    )
    train, test = demo_counts[train_rows].copy(), demo_counts[test_rows].copy()
    model = LatentFlow("demo", monitor_every=60, monitor_cells=150, validation_fraction=0.3, log_every=60)
    table = checkpoint_realism(model, train, test, fit_representation(train), trees=100, max_steps=240)
    summary = agreement(table)
    assert list(table["step"]) == [60, 120, 180, 240]
    assert table["rf_auc"].iloc[0] > table["rf_auc"].iloc[-1]  # training helps the forest's view too
    assert summary["spearman_monitor_mmd_rf_auc"] >= 0.79, table  # at most one neighbouring pair swapped
    assert summary["rf_auc_of_monitor_best"] <= summary["rf_auc_best"] + 0.02
