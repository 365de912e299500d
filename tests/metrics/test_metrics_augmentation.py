"""Tests of the augmentation F1 protocol (Marouf 2020 Fig. 3, Heydari 2022 Fig. 6) on Gaussian toy clusters."""

from __future__ import annotations

import numpy as np
import pytest

from scsynth_core.errors import DataError
from scsynth_core.metrics.augmentation import augmentation_f1, augmentation_protocol, pairwise_f1

N_TREES = 50
D = 5
MU = {"t": np.r_[1.5, np.zeros(D - 1)], "o": np.zeros(D), "b": np.r_[0.0, 6.0, np.zeros(D - 2)]}


def _draw(rng, counts: dict[str, int]):
    X = np.vstack([rng.normal(size=(n, D)) + MU[k] for k, n in counts.items()])
    y = np.concatenate([[k] * n for k, n in counts.items()])
    return X, y


@pytest.fixture(scope="module")
def rare_target():
    """Target "t" overlaps "o" (1.5 sd apart) and has only 3 training cells; "b" is far from both."""
    rng = np.random.default_rng(0)
    train = _draw(rng, {"t": 3, "o": 300, "b": 300})
    test = _draw(rng, {"t": 100, "o": 100, "b": 100})
    generated = rng.normal(size=(300, D)) + MU["t"]  # a perfect generator of the target cluster
    return train, test, generated


def test_augmented_beats_downsampled(rare_target):
    (trX, trY), (teX, teY), gen = rare_target
    df = augmentation_protocol(
        trX, trY, teX, teY, target="t", generated_pcs=gen, n_trees=30, seed=0, compare_with=["o", "b"]
    )
    # per variant: rest and o, b on the variant's forest, o and b on forests retrained on two clusters
    assert len(df) == 15 and set(df["variant"]) == {"downsampled", "upsampled", "augmented"}
    assert df.groupby("forest")["comparison"].agg(set).to_dict() == {"all": {"rest", "o", "b"}, "pair": {"o", "b"}}
    f1 = df[df["forest"] == "all"].pivot(index="variant", columns="comparison", values="f1")
    assert f1.loc["augmented", "rest"] > f1.loc["downsampled", "rest"] + 0.3
    assert f1.loc["augmented", "rest"] > f1.loc["upsampled", "rest"] + 0.3
    assert f1.loc["augmented", "rest"] > 0.6
    n_extra = df[df["forest"] == "all"].set_index(["variant", "comparison"])["n_extra"]
    assert n_extra[("downsampled", "rest")] == 0 and n_extra[("augmented", "rest")] == 300
    assert (df["n_target_train"] == 3).all()
    # restricting the test set to the target and one cluster removes false positives only: F1 cannot drop
    assert (f1["o"] >= f1["rest"] - 1e-12).all() and (f1["b"] >= f1["rest"] - 1e-12).all()


def test_far_cluster_is_never_confused(rare_target):
    (trX, trY), (teX, teY), gen = rare_target
    out = augmentation_f1(trX, trY, teX, teY, target="t", extra_pcs=gen, n_trees=N_TREES, compare_with=["b", "o"])
    # "b" lies 6 sd away from "t": restricting to t + b removes the "o" false positives, t + o keeps them
    assert out["b"] > out["o"]
    # the pairwise F1 equals target-vs-rest on a test set with the third cluster removed by hand
    # (same seed and training data -> the same forest)
    for other, dropped in (("b", "o"), ("o", "b")):
        keep = teY != dropped
        sub = augmentation_f1(trX, trY, teX[keep], teY[keep], target="t", extra_pcs=gen, n_trees=N_TREES)
        assert sub["rest"] == pytest.approx(out[other], abs=1e-12)


def test_separable_classes_give_perfect_f1():
    rng = np.random.default_rng(1)
    far = {"t": np.full(D, 10.0), "o": np.zeros(D), "b": np.full(D, -10.0)}
    X = np.vstack([rng.normal(size=(n, D)) + far[k] for k, n in [("t", 5), ("o", 100), ("b", 100)]])
    y = np.repeat(["t", "o", "b"], [5, 100, 100])
    tX = np.vstack([rng.normal(size=(30, D)) + far[k] for k in ("t", "o", "b")])
    ty = np.repeat(["t", "o", "b"], 30)
    assert augmentation_f1(X, y, tX, ty, target="t", n_trees=N_TREES, compare_with=["o"]) == {"rest": 1.0, "o": 1.0}


def test_integer_labels_and_reproducibility(rare_target):
    (trX, trY), (teX, teY), gen = rare_target
    codes = {"t": 2, "o": 1, "b": 5}
    tr_int, te_int = np.array([codes[v] for v in trY]), np.array([codes[v] for v in teY])
    a = augmentation_protocol(
        trX, tr_int, teX, te_int, target=2, generated_pcs=gen, n_extra=100, n_trees=20, seed=3, compare_with=[1]
    )
    b = augmentation_protocol(
        trX, tr_int, teX, te_int, target=2, generated_pcs=gen, n_extra=100, n_trees=20, seed=3, compare_with=[1]
    )
    assert a.equals(b)
    assert (
        set(a["comparison"]) == {"rest", "1"}
        and set(a["forest"]) == {"all", "pair"}
        and (a.loc[a["variant"] != "downsampled", "n_extra"] == 100).all()
    )


def test_errors(rare_target):
    (trX, trY), (teX, teY), gen = rare_target
    with pytest.raises(DataError, match="no training cells"):
        augmentation_f1(trX[trY != "t"], trY[trY != "t"], teX, teY, target="t", n_trees=5)
    with pytest.raises(DataError, match="no test cells"):
        augmentation_f1(trX, trY, teX, teY, target="t", n_trees=5, compare_with=["zzz"])
    with pytest.raises(DataError, match="n_extra"):
        augmentation_protocol(trX, trY, teX, teY, target="t", generated_pcs=gen[:10], n_extra=50, n_trees=5)


def test_protocol_with_several_generators_shares_the_real_variants():
    rng = np.random.default_rng(3)
    train = np.vstack([rng.normal(0, 1, (200, 5)), rng.normal(3, 1, (5, 5))])
    train_y = np.array(["rest"] * 200 + ["t"] * 5)
    test = np.vstack([rng.normal(0, 1, (100, 5)), rng.normal(3, 1, (100, 5))])
    test_y = np.array(["rest"] * 100 + ["t"] * 100)
    good, bad = rng.normal(3, 1, (300, 5)), rng.normal(0, 1, (300, 5))  # bad "generator" makes rest-like cells
    df = augmentation_protocol(train, train_y, test, test_y, target="t", generated_pcs={"good": good, "bad": bad},
                               n_extra=200, n_trees=30, seed=0)  # fmt: skip
    rest = df[df["comparison"] == "rest"].set_index(["variant", "source"])["f1"]
    assert sorted(rest.index) == [("augmented", "bad"), ("augmented", "good"), ("downsampled", "real"),
                                  ("upsampled", "real")]  # fmt: skip
    assert rest[("augmented", "good")] > rest[("downsampled", "real")] + 0.1
    assert rest[("augmented", "bad")] < rest[("augmented", "good")] - 0.1


@pytest.fixture(scope="module")
def hidden_twin():
    """Target "t" and a large cluster "c" drawn from the same distribution; "o" far from both (8 sd)."""
    rng = np.random.default_rng(5)
    centre = {"t": np.zeros(D), "c": np.zeros(D), "o": np.full(D, 8.0)}

    def draw(counts):
        X = np.vstack([rng.normal(size=(n, D)) + centre[k] for k, n in counts.items()])
        return X, np.repeat(list(counts), list(counts.values()))

    return draw({"t": 40, "c": 400, "o": 200}), draw({"t": 60, "c": 60, "o": 60})


def test_pair_forest_is_not_misled_by_a_third_cluster(hidden_twin):
    (trX, trY), (teX, teY) = hidden_twin
    shared = augmentation_f1(trX, trY, teX, teY, target="t", n_trees=N_TREES, compare_with=["o"])["o"]
    pair = pairwise_f1(trX, trY, teX, teY, target="t", other="o", n_trees=N_TREES)
    # t vs o is trivially separable once "c" is gone: the retrained forest is perfect (known answer) ...
    assert pair == 1.0
    # ... while the all-cluster forest sends most t test cells to its twin "c", which counts against t vs o
    assert shared < 0.6
    # t vs its twin c is a coin toss for any forest
    assert pairwise_f1(trX, trY, teX, teY, target="t", other="c", n_trees=N_TREES) < 0.8


def test_pair_forest_is_the_forest_on_the_two_clusters_and_their_extra_cells(rare_target):
    (trX, trY), (teX, teY), gen = rare_target
    pair = pairwise_f1(trX, trY, teX, teY, target="t", other="o", extra_pcs=gen[:50], n_trees=N_TREES, seed=2)
    keep, test_keep = trY != "b", teY != "b"
    by_hand = augmentation_f1(trX[keep], trY[keep], teX[test_keep], teY[test_keep], target="t",
                              extra_pcs=gen[:50], n_trees=N_TREES, seed=2)["rest"]  # fmt: skip
    assert pair == by_hand


def test_protocol_pair_rows_are_pair_forests(rare_target):
    (trX, trY), (teX, teY), gen = rare_target
    df = augmentation_protocol(trX, trY, teX, teY, target="t", generated_pcs=gen, n_extra=50, n_trees=10, seed=2,
                               compare_with=["o"])  # fmt: skip
    pairs = df[df["forest"] == "pair"]
    assert pairs["variant"].tolist() == ["downsampled", "upsampled", "augmented"]
    assert (pairs["comparison"] == "o").all() and (pairs["n_extra"].tolist() == [0, 50, 50])
    alone = pairwise_f1(trX, trY, teX, teY, target="t", other="o", n_trees=10, seed=2)
    assert pairs["f1"].iloc[0] == alone


def test_pairwise_errors(rare_target):
    (trX, trY), (teX, teY), _ = rare_target
    with pytest.raises(DataError, match="must differ"):
        pairwise_f1(trX, trY, teX, teY, target="t", other="t", n_trees=5)
    with pytest.raises(DataError, match="'b' to compare with has no training cells"):
        pairwise_f1(trX[trY != "b"], trY[trY != "b"], teX, teY, target="t", other="b", n_trees=5)
    with pytest.raises(DataError, match="'b' to compare with has no test cells"):
        pairwise_f1(trX, trY, teX[teY != "b"], teY[teY != "b"], target="t", other="b", n_trees=5)
