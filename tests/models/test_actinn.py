"""ACTINN on its own (Ma & Pellegrini 2020; the classifier ACTIVA conditions on, Heydari et al. 2022): presets and
parameter checks, training on the embedded PBMC cells, held-out accuracy and F1, save/load, and ACTIVA's trained
conditioner seen as an ACTINN.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models import available_models
from scsynth_core.models.actinn import ACTINN, ActinnNet


def test_presets_and_parameter_checks():
    assert "actinn" not in available_models()  # a classifier, not a generative model
    paper = ACTINN("paper").params
    assert paper == {
        "layers": [100, 50, 25],
        "learning_rate": 1e-4,
        "weight_decay": 0.005,
        "lr_decay": 0.95,
        "decay_every": 1000,
        "batch_size": 128,
        "epochs": 50,
        "log_input": True,
    }
    assert ACTINN("workstation").params == paper and ACTINN("demo").params["epochs"] == 200
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        ACTINN(critic_iters=5)
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        ACTINN("huge")
    with pytest.raises(ConfigError, match="lr_decay"):
        ACTINN(lr_decay=0.0)
    with pytest.raises(ConfigError, match="not fitted"):
        ACTINN().predict(None)


def test_network_is_the_reference_architecture():
    net = ActinnNet(765, 10, widths=(100, 50, 25), log_input=True)
    shapes = [tuple(m.weight.shape) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert shapes == [(100, 765), (50, 100), (25, 50), (10, 25)]
    assert all(torch.all(m.bias == 0.01) for m in net.modules() if isinstance(m, torch.nn.Linear))
    x = torch.rand(3, 765)
    assert torch.equal(net(x), net.output(net.hidden(x.log1p())))  # log1p of the LSN input inside the network


def test_actinn_classifies_held_out_cells(demo_counts, tmp_path):
    from sklearn.model_selection import train_test_split

    key = "bulk_labels"  # the FACS-sorted types of the demo data (10 types)
    rows = np.arange(demo_counts.n_obs)
    tr, te = train_test_split(rows, test_size=0.3, random_state=0, stratify=demo_counts.obs[key])
    train, test = demo_counts[tr].copy(), demo_counts[te].copy()
    clf = ACTINN("demo").fit(train, label_key=key, seed=0, device="cpu", progress=False)
    scores = clf.evaluate(test, key)
    majority = test.obs[key].value_counts(normalize=True).max()
    # measured: accuracy 0.80, macro-F1 0.65, weighted-F1 0.80 (majority class 0.34, uniform-guess macro-F1 ~0.1)
    assert scores["accuracy"] > majority + 0.3 and scores["macro_f1"] > 0.5, scores
    assert set(scores) == {"accuracy", "macro_f1", "weighted_f1", "n_cells"} and scores["n_cells"] == test.n_obs
    assert clf.history["phase"][-1] == "classifier" and clf.history["classifier_accuracy"][-1] > 0.95
    probs = clf.predict_proba(test)
    assert list(probs.columns) == clf.categories and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    clf.save(tmp_path / "actinn.pt")
    loaded = ACTINN.load(tmp_path / "actinn.pt", device="cpu")
    assert (loaded.predict(test) == clf.predict(test)).all() and loaded.params == clf.params
    same_net = ACTINN.from_network(clf.net, var_names=clf.var_names, categories=clf.categories, label_key=key)
    assert same_net.evaluate(test) == scores
    with pytest.raises(DataError, match="different genes"):
        clf.predict(test[:, :10])
    with pytest.raises(DataError, match="not an ACTINN"):
        ACTINN.load(_not_actinn(tmp_path))
    with pytest.raises(DataError, match="obs\\['nope'\\] does not exist"):
        clf.evaluate(test, "nope")


def _not_actinn(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": "scgan"}, path)
    return path
