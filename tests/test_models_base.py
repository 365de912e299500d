"""The model interface: registry, presets, label handling, save/load, and the two baselines."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scsynth_core.errors import ConfigError, DataError
from scsynth_core.models import MODELS, available_models, get_model_class, load_model
from scsynth_core.models.baselines import NoiseModel, UpsampleModel


def test_registry_lists_and_resolves_models():
    assert {"upsample", "noise"} <= set(available_models())
    assert MODELS["noise"] is NoiseModel
    assert set(MODELS) == set(available_models())
    with pytest.raises(ConfigError, match="unknown model 'scgann'.*available: .*noise"):
        get_model_class("scgann")


def test_presets_and_overrides_are_checked():
    assert NoiseModel("paper").params == {"shape_max": 10.0, "scale_max": 5.0}
    assert NoiseModel("demo", shape_max=2.0).params["shape_max"] == 2.0
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        NoiseModel("huge")
    with pytest.raises(ConfigError, match="unknown hyperparameter.*learning_rate"):
        NoiseModel("paper", learning_rate=1e-3)


def test_fit_rejects_bad_counts(tiny_counts):
    bad = tiny_counts.copy()
    bad.X = bad.X.copy()
    bad.X.data[0] = -1
    with pytest.raises(DataError, match="negative"):
        UpsampleModel().fit(bad, seed=0)
    bad.X.data[0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        UpsampleModel().fit(bad, seed=0)
    bad.X.data[0] = 0.5
    with pytest.raises(DataError, match="not integer"):
        UpsampleModel().fit(bad, seed=0)
    with pytest.raises(DataError, match=r"obs\['celltype'\] does not exist"):
        UpsampleModel().fit(tiny_counts, label_key="celltype", seed=0)


def test_upsample_draws_real_cells_of_the_requested_label(tiny_counts):
    model = UpsampleModel()
    model.fit(tiny_counts, label_key="cluster", seed=0)
    gen = model.sample(40, labels={"a": 10, "b": 30}, seed=1)
    assert gen.obs["cluster"].value_counts().to_dict() == {"a": 10, "b": 30}
    real = {label: {tuple(row) for row in tiny_counts[tiny_counts.obs.cluster == label].X.toarray()} for label in "ab"}
    for row, label in zip(gen.X.toarray(), gen.obs["cluster"]):
        assert tuple(row) in real[label]
    assert list(gen.var_names) == list(tiny_counts.var_names)
    assert gen.uns["scsynth"]["model"] == "upsample"


def test_label_arguments(tiny_counts):
    model = UpsampleModel()
    model.fit(tiny_counts, label_key="cluster", seed=0)
    holistic = model.sample(2000, seed=0)
    # Holistic sampling of a conditional model follows the training label frequencies (1:1 here).
    assert abs((holistic.obs["cluster"] == "a").mean() - 0.5) < 0.05
    assert list(model.sample(3, labels=["b", "a", "b"], seed=0).obs["cluster"]) == ["b", "a", "b"]
    with pytest.raises(ConfigError, match="asks for 5 cells"):
        model.sample(4, labels={"a": 5}, seed=0)
    with pytest.raises(ConfigError, match="unknown label"):
        model.sample(1, labels=["z"], seed=0)
    noise = NoiseModel()
    noise.fit(tiny_counts, seed=0)
    with pytest.raises(ConfigError, match="not conditional"):
        noise.sample(2, labels=["a", "a"], seed=0)


def test_noise_baseline_adds_poisson_noise_to_stacked_pilot_copies(tiny_counts):
    model = NoiseModel()
    model.fit(tiny_counts, seed=0)
    n = 150  # 2.5 copies of the 60-cell pilot
    gen = model.sample(n, seed=3, batch_size=40)
    pilot = tiny_counts.X.toarray()
    X = gen.X.toarray()
    noise = X - pilot[np.arange(n) % 60]
    assert noise.min() >= 0 and np.allclose(noise, np.round(noise))
    # Per-cell rates are Gamma(U(0,10), U(0,5)) mixtures: mean rate E[shape]*E[scale] = 5 * 2.5 = 12.5.
    assert 8 < noise.mean() < 18
    # One rate per cell: within-cell variance is Poisson-like (close to the cell's mean), not over-dispersed.
    cell_means, cell_vars = noise.mean(1), noise.var(1)
    busy = cell_means > 2
    assert np.median(cell_vars[busy] / cell_means[busy]) < 2.0


def test_same_seed_same_cells_and_save_load_roundtrip(tiny_counts, tmp_path):
    for klass in (UpsampleModel, NoiseModel):
        model = klass()
        model.fit(tiny_counts, seed=0)
        a = model.sample(70, seed=5, batch_size=16)
        b = model.sample(70, seed=5, batch_size=16)
        c = model.sample(70, seed=6, batch_size=16)
        assert (a.X != b.X).nnz == 0
        assert (a.X != c.X).nnz > 0
        model.save(tmp_path / f"{klass.name}.pt")
        loaded = load_model(tmp_path / f"{klass.name}.pt")
        assert type(loaded) is klass
        assert (loaded.sample(70, seed=5, batch_size=16).X != a.X).nnz == 0
        assert sp.issparse(a.X) and a.X.dtype == np.float32


def test_load_rejects_foreign_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a scsynth model file"):
        load_model(bad)
    with pytest.raises(DataError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_unfitted_model_cannot_sample_or_save(tmp_path):
    with pytest.raises(ConfigError, match="not fitted"):
        NoiseModel().sample(3, seed=0)
    with pytest.raises(ConfigError, match="not fitted"):
        NoiseModel().save(tmp_path / "x.pt")
