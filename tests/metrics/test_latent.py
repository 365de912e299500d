"""Latent arithmetic and delta-H (Yu & Welch 2021): toy codes z = type + condition + noise."""

from __future__ import annotations

import numpy as np
import pytest

from scsynth_core.errors import DataError
from scsynth_core.metrics.latent import delta_h, latent_arithmetic, latent_entropy

NOISE = 0.05
D = 6


def _toy(sizes: dict[tuple[str, str], int], seed: int = 0):
    """Codes z = type_vector + condition_vector + N(0, NOISE^2) for the given (type, condition) group sizes."""
    rng = np.random.default_rng(seed)
    type_vec = {t: rng.normal(scale=3, size=D) for t in ("A", "B", "C")}
    cond_vec = {c: rng.normal(scale=3, size=D) for c in ("ctrl", "d1", "d2", "d3")}
    z, ct, cond = [], [], []
    for (t, c), n in sizes.items():
        z.append(type_vec[t] + cond_vec[c] + NOISE * rng.normal(size=(n, D)))
        ct += [t] * n
        cond += [c] * n
    return np.vstack(z), np.array(ct), np.array(cond), type_vec, cond_vec


def test_recovers_held_out_combination_with_unbalanced_groups():
    # B x d3 held out; group sizes differ wildly between types, so pooled (unbalanced) means would be biased
    sizes = {
        ("A", "ctrl"): 400,
        ("A", "d1"): 20,
        ("A", "d2"): 50,
        ("A", "d3"): 300,
        ("B", "ctrl"): 15,
        ("B", "d1"): 500,
        ("B", "d2"): 60,
    }
    z, ct, cond, tv, cv = _toy(sizes)
    pred = latent_arithmetic(z, ct, cond, control_type="A", target_condition="d3")
    assert pred.shape == (300, D)
    truth = tv["B"] + cv["d3"]
    assert np.abs(pred.mean(axis=0) - truth).max() < 4 * NOISE / np.sqrt(15)
    # predicted codes keep the control cells' spread (a shift, not a collapse)
    np.testing.assert_allclose(pred.std(axis=0), z[(ct == "A") & (cond == "d3")].std(axis=0))
    # the naive pooled difference is far off on this design: the balancing matters
    naive = z[ct == "B"].mean(0) - z[(ct == "A") & (cond != "d3")].mean(0) + z[(ct == "A") & (cond == "d3")].mean(0)
    assert np.abs(naive - truth).max() > 1.0


def test_resample_balancing_close_and_seeded():
    sizes = {("A", "ctrl"): 300, ("A", "d1"): 100, ("A", "d3"): 200, ("B", "ctrl"): 50, ("B", "d1"): 250}
    z, ct, cond, tv, cv = _toy(sizes, seed=1)
    kw = {"control_type": "A", "target_condition": "d3", "balance": "resample"}
    pred = latent_arithmetic(z, ct, cond, seed=3, **kw)
    np.testing.assert_array_equal(pred, latent_arithmetic(z, ct, cond, seed=3, **kw))
    assert np.abs(pred.mean(axis=0) - (tv["B"] + cv["d3"])).max() < 0.05


def test_target_type_inference_and_held_out_cells_ignored():
    sizes = {
        ("A", "ctrl"): 100,
        ("A", "d1"): 100,
        ("A", "d2"): 100,
        ("B", "ctrl"): 100,
        ("B", "d1"): 100,
        ("C", "ctrl"): 100,
        ("C", "d1"): 100,
        ("C", "d2"): 100,
    }
    z, ct, cond, _, _ = _toy(sizes, seed=2)
    inferred = latent_arithmetic(z, ct, cond, control_type="A", target_condition="d2")  # B lacks d2
    explicit = latent_arithmetic(z, ct, cond, control_type="A", target_condition="d2", target_type="B")
    np.testing.assert_array_equal(inferred, explicit)
    # adding real held-out cells (C x d2 exists; B x d2 added with garbage codes) changes nothing for B
    z2 = np.vstack([z, np.full((10, D), 1e3)])
    ct2, cond2 = np.r_[ct, ["B"] * 10], np.r_[cond, ["d2"] * 10]
    np.testing.assert_array_equal(
        latent_arithmetic(z2, ct2, cond2, control_type="A", target_condition="d2", target_type="B"), explicit
    )
    with pytest.raises(DataError, match="cannot be inferred"):
        latent_arithmetic(z2, ct2, cond2, control_type="A", target_condition="d2")


def test_missing_groups_raise_data_error():
    sizes = {("A", "ctrl"): 20, ("A", "d1"): 20, ("B", "d2"): 20, ("B", "ctrl"): 20}
    z, ct, cond, *_ = _toy(sizes)
    with pytest.raises(DataError, match="cell type 'A' under condition 'd3'"):
        latent_arithmetic(z, ct, cond, control_type="A", target_condition="d3", target_type="B")
    with pytest.raises(DataError, match="share no observed condition"):
        latent_arithmetic(
            z[cond != "ctrl"],
            ct[cond != "ctrl"],
            cond[cond != "ctrl"],
            control_type="A",
            target_condition="d1",
            target_type="B",
        )
    with pytest.raises(DataError, match="target_type 'C' has no cells"):
        latent_arithmetic(z, ct, cond, control_type="A", target_condition="d1", target_type="C")
    with pytest.raises(DataError, match="cell_type must have one value per cell"):
        latent_arithmetic(z, ct[:-1], cond, control_type="A", target_condition="d1")


# ---------------------------------------------------------------------------------------------- entropy
def test_latent_entropy_known_answers():
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(50_000, 1))
    assert latent_entropy(u) == pytest.approx(0.0, abs=0.01)  # U(0,1): h = 0
    g = rng.normal(size=(50_000, 2))
    assert latent_entropy(g) == pytest.approx(2 * 0.5 * np.log(2 * np.pi * np.e), abs=0.05)
    # scaling dim j by s_j adds log s_j exactly (equal-width bins are scale-equivariant)
    s = np.array([3.0, 0.5])
    assert latent_entropy(g * s + 7) == pytest.approx(latent_entropy(g) + np.log(s).sum(), abs=1e-9)
    with pytest.raises(DataError, match="constant"):
        latent_entropy(np.column_stack([g[:, 0], np.ones(len(g))]))


def test_delta_h_same_distribution_and_wider_prediction():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(5000, 10))
    same = rng.normal(size=(5000, 10))
    wider = 1.5 * rng.normal(size=(5000, 10))
    narrower = 0.5 * rng.normal(size=(5000, 10))
    assert abs(delta_h(same, real)) < 0.2
    assert delta_h(wider, real) == pytest.approx(10 * np.log(1.5), abs=0.3)
    assert delta_h(narrower, real) < -5
    with pytest.raises(DataError, match="dims"):
        delta_h(real[:, :3], real)
