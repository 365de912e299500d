"""The model interface: registry, presets, label handling, save/load, and the two baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


# -- streamed generation ------------------------------------------------------------------------------------------
def _fitted(klass, tiny_counts):
    model = klass()
    model.fit(tiny_counts, label_key="cluster" if klass.conditional else None, seed=0)
    return model


@pytest.mark.parametrize(
    ("klass", "labels"),
    [(NoiseModel, None), (UpsampleModel, None), (UpsampleModel, {"b": 50, "a": 20}), (UpsampleModel, ["b"] * 70)],
)
def test_streamed_h5ad_holds_what_the_in_memory_path_writes(tiny_counts, tmp_path, klass, labels):
    import anndata as ad
    import h5py

    from scsynth_core.atomic import write_h5ad

    model = _fitted(klass, tiny_counts)
    write_h5ad(tmp_path / "memory.h5ad", model.sample(70, labels=labels, seed=4, batch_size=16))
    seconds = model.sample_to_h5ad(tmp_path / "streamed.h5ad", 70, labels=labels, seed=4, batch_size=16)
    memory, streamed = ad.read_h5ad(tmp_path / "memory.h5ad"), ad.read_h5ad(tmp_path / "streamed.h5ad")
    # 5 chunks, the last one partial: every row, value, name and label in order.
    assert streamed.shape == (70, 12) and streamed.X.dtype == np.float32 and sp.issparse(streamed.X)
    assert np.array_equal(streamed.X.toarray(), memory.X.toarray()) and streamed.X.nnz == memory.X.nnz
    pd.testing.assert_frame_equal(streamed.obs, memory.obs)
    pd.testing.assert_frame_equal(streamed.var, memory.var)
    info = streamed.uns["scsynth"]
    assert info.pop("generation_seconds") == round(seconds, 3) and seconds >= 0
    assert info == memory.uns["scsynth"]
    with h5py.File(tmp_path / "streamed.h5ad") as f:
        assert f["X/indptr"].dtype == np.int64  # room for more than 2**31 non-zeros
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_streamed_generation_memory_is_bounded_by_the_chunk(tiny_counts, tmp_path):
    import tracemalloc

    model = _fitted(NoiseModel, tiny_counts)
    model.sample_to_h5ad(tmp_path / "warm.h5ad", 10, seed=0)  # imports allocate too: do them before measuring
    peaks = {}
    tracemalloc.start()
    try:
        for n in (2_000, 20_000):
            tracemalloc.reset_peak()
            model.sample_to_h5ad(tmp_path / f"{n}.h5ad", n, seed=0, batch_size=500)
            peaks[n] = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Ten times the cells, the same chunks: the peak must not grow with n_cells (holding every cell, it grows 10x).
    assert peaks[20_000] < 1.3 * peaks[2_000]


def test_failed_streamed_generation_leaves_no_file(tiny_counts, tmp_path, monkeypatch):
    model = _fitted(NoiseModel, tiny_counts)
    out = tmp_path / "g.h5ad"
    out.write_text("previous output")
    calls = []

    def failing(n, labels, rng):
        calls.append(n)
        if len(calls) == 3:
            raise RuntimeError("device lost")
        return sp.csr_matrix(np.ones((n, 12), dtype=np.float32))

    monkeypatch.setattr(model, "_sample_chunk", failing)
    with pytest.raises(RuntimeError, match="device lost"):
        model.sample_to_h5ad(out, 100, seed=0, batch_size=10)
    assert out.read_text() == "previous output" and sorted(p.name for p in tmp_path.iterdir()) == ["g.h5ad"]


def test_streamed_generation_logs_the_expected_size(tiny_counts, tmp_path, caplog):
    from scsynth_core.data.h5ad_stream import estimated_bytes

    model = _fitted(NoiseModel, tiny_counts)
    with caplog.at_level("INFO", logger="scsynth"):
        model.sample_to_h5ad(tmp_path / "g.h5ad", 5_000, seed=0, batch_size=500)
    assert "writing 5000 cells x 12 genes" in caplog.text and "MB before compression" in caplog.text
    # The estimate from the first chunk is close to the real size for cells of even density.
    X = model.sample(5_000, seed=0, batch_size=500).X
    real = X.data.nbytes + X.indices.nbytes + 8 * (X.shape[0] + 1)
    assert abs(estimated_bytes(X[:500], 5_000) - real) < 0.05 * real


def test_per_cell_annotations_and_own_arguments_of_a_family_are_streamed(tiny_counts, tmp_path, monkeypatch):
    """A family's ``obs``/``obsm`` annotations (``SampledCells``) and its own ``sample`` arguments go through the
    chunks: the streamed file holds them, written a chunk at a time; other arguments are refused."""
    import anndata as ad

    from scsynth_core.data.h5ad_stream import H5adStreamWriter
    from scsynth_core.models.base import SampledCells

    class Annotated(NoiseModel):
        def _sampling_options(self, n_cells, options):
            return {"offset": float(options.pop("offset", 0.0))} | super()._sampling_options(n_cells, options)

        def _sample_chunk(self, n, labels, rng):
            start = self._sampling.state.get("start", 0)
            self._sampling.state["start"] = start + n
            rows = np.arange(start, start + n, dtype=np.float32)[:, None] + self._sampling.options["offset"]
            return SampledCells(
                super()._sample_chunk(n, labels, rng),
                obs={"row": rows[:, 0]},
                obsm={"X_codes": np.hstack([rows, -rows])},
            )

    model = _fitted(Annotated, tiny_counts)
    appended = []
    real_append = H5adStreamWriter.append
    monkeypatch.setattr(
        H5adStreamWriter,
        "append",
        lambda writer, X, obs, obsm=None: appended.append(len(obs)) or real_append(writer, X, obs, obsm),
    )
    model.sample_to_h5ad(tmp_path / "g.h5ad", 30, seed=0, batch_size=8, offset=100)
    written, memory = ad.read_h5ad(tmp_path / "g.h5ad"), model.sample(30, seed=0, batch_size=8, offset=100)
    assert appended == [8, 8, 8, 6]
    expected = np.arange(100, 130, dtype=np.float32)
    np.testing.assert_array_equal(written.obsm["X_codes"], np.column_stack([expected, -expected]))
    np.testing.assert_array_equal(memory.obsm["X_codes"], written.obsm["X_codes"])
    np.testing.assert_array_equal(written.obs["row"], expected)
    assert np.array_equal(written.X.toarray(), memory.X.toarray()) and "generation_seconds" in written.uns["scsynth"]
    with pytest.raises(ConfigError, match=r"model 'noise': sample\(\) takes no argument\(s\) codes"):
        _fitted(NoiseModel, tiny_counts).sample_to_h5ad(tmp_path / "x.h5ad", 3, codes=np.zeros((3, 2)))
    assert not (tmp_path / "x.h5ad").exists()


def test_cell_counts_must_be_whole_and_not_negative(tiny_counts):
    model = _fitted(UpsampleModel, tiny_counts)
    with pytest.raises(ConfigError, match=r"n_cells must be a positive integer, got 2\.5"):
        model.sample(2.5, seed=0)
    with pytest.raises(ConfigError, match="n_cells must be a positive integer, got '3'"):
        model.sample("3", seed=0)
    with pytest.raises(ConfigError, match="n_cells must be a positive integer, got True"):
        model.sample(True, seed=0)
    assert model.sample(3.0, seed=0).n_obs == 3  # a whole float (e.g. 1e6 in a config) is a count
    with pytest.raises(ConfigError, match="count of 'a' must be a non-negative integer, got -1"):
        model.sample(2, labels={"a": -1, "b": 3}, seed=0)
    with pytest.raises(ConfigError, match=r"count of 'a' must be a non-negative integer, got 1\.5"):
        model.sample(3, labels={"a": 1.5, "b": 1.5}, seed=0)
    assert list(model.sample(2, labels={"a": 0, "b": 2}, seed=0).obs["cluster"]) == ["b", "b"]
    with pytest.raises(ConfigError, match="batch_size must be a positive integer, got 0"):
        model.sample_to_h5ad("unused.h5ad", 2, seed=0, batch_size=0)
