"""Per-cluster realism (Marouf 2020 Fig. 2, Heydari 2022 Fig. 5): the library's known answers, the workflow's steps
on the 700 demo cells (no Snakemake run), the figures and the leaderboard column."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from realism_demo import write_demo_split
from scsynth_core import steps
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.experiments import realism
from scsynth_core.leaderboard import (
    build_leaderboard,
    per_cluster_scores,
    write_leaderboard,
)
from scsynth_core.metrics.realism import PER_CLUSTER_COLUMNS, rf_per_cluster

TREES = 20
PNG = b"\x89PNG\r\n\x1a\n"


def _clusters(rng, sizes: dict[str, int], *, shift: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian cells (5 features) per cluster, cluster k centred at 4k, optionally shifted in every feature."""
    parts, labels = [], []
    for k, (cluster, n) in enumerate(sizes.items()):
        parts.append(rng.normal(4.0 * k + (shift or {}).get(cluster, 0.0), 1.0, size=(n, 5)))
        labels += [cluster] * n
    return np.vstack(parts), np.asarray(labels)


# --------------------------------------------------------------------------------------------------- library
def test_a_shifted_cluster_is_detected_the_others_stay_near_half_and_small_ones_are_skipped():
    rng = np.random.default_rng(0)
    sizes = {"A": 150, "B": 150, "C": 10}
    real, real_labels = _clusters(rng, sizes)
    gen, gen_labels = _clusters(rng, sizes, shift={"B": 3.0})  # fresh draws: only B differs in distribution
    result = rf_per_cluster(real, real_labels, gen, gen_labels, n_trees=TREES, seed=0)
    table = result.table.set_index("cluster")
    assert list(result.table.columns) == PER_CLUSTER_COLUMNS
    assert abs(table.loc["A", "rf_auc_mean"] - 0.5) < 0.12
    assert table.loc["B", "rf_auc_mean"] > 0.95 and table.loc["B", "rf_error"] < 0.1
    assert table.loc["B", "mmd"] > 10 * abs(table.loc["A", "mmd"])
    assert result.skipped == {"C": "fewer than 20 cells (10 real cells, 10 generated cells)"}
    assert table.loc["C", ["rf_auc_mean", "rf_auc_sd", "rf_error", "mmd"]].isna().all()
    assert set(result.rf) == {"A", "B"} and set(result.roc_frame()["cluster"]) == {"A", "B"}
    assert (result.roc_frame().groupby("cluster")["fold"].nunique() == 5).all()


def test_each_cluster_is_scored_as_a_whole_set_of_its_cells_would_be():
    """The per-cluster forest is the whole-set one on that cluster's cells (same subsample, folds and seed)."""
    from scsynth_core.metrics.realism import rf_real_vs_generated

    rng = np.random.default_rng(1)
    real, real_labels = _clusters(rng, {"A": 40, "B": 30})
    gen, gen_labels = _clusters(rng, {"A": 55, "B": 30}, shift={"A": 0.5})
    result = rf_per_cluster(real, real_labels, gen, gen_labels, n_trees=TREES, seed=3)
    alone = rf_real_vs_generated(real[real_labels == "A"], gen[gen_labels == "A"], n_trees=TREES, seed=3)
    np.testing.assert_array_equal(result.rf["A"].fold_aucs, alone.fold_aucs)
    row = result.table.set_index("cluster").loc["A"]
    assert (row["n_real"], row["n_generated"], row["n_per_class"]) == (40, 55, 40)


def test_identical_copies_are_not_scored_as_chance():
    """Generated cells that copy the real cells one to one give an AUC near 0, not 0.5: in every fold each test
    cell's twin sits in the training folds with the other label, and the fully grown trees follow it. A
    generator that memorises test cells is flagged too (0.5 means indistinguishable, not identical)."""
    rng = np.random.default_rng(2)
    real, labels = _clusters(rng, {"A": 100})
    result = rf_per_cluster(real, labels, real.copy(), labels, n_trees=TREES, seed=0)
    assert result.table["rf_auc_mean"].item() < 0.2


def test_clusters_of_one_set_only_and_bad_arguments_are_reported():
    rng = np.random.default_rng(3)
    real, real_labels = _clusters(rng, {"A": 30, "B": 25})
    gen, gen_labels = _clusters(rng, {"A": 30, "D": 40})
    result = rf_per_cluster(real, real_labels, gen, gen_labels, n_trees=TREES)
    assert result.skipped == {"B": "fewer than 20 cells (0 generated cells)",
                              "D": "fewer than 20 cells (0 real cells)"}  # fmt: skip
    assert list(result.table["cluster"]) == ["A", "B", "D"]  # most real cells first
    with pytest.raises(ConfigError, match="min_cells 3 is below the 5 cells"):
        rf_per_cluster(real, real_labels, gen, gen_labels, min_cells=3)
    with pytest.raises(DataError, match="54 cluster labels for 55 real cells"):
        rf_per_cluster(real, real_labels[1:], gen, gen_labels)


# ------------------------------------------------------------------------------------------------ workflow
@pytest.fixture(scope="module")
def protocol(tmp_path_factory, demo_counts) -> dict:
    """Prepared demo cells (4 bulk_labels types of 20+ cells and the rest), a 70/30 split, the protocol's PCA, and
    "generated" sets made of the real control's cells (real cells outside the PCA's fit): with the second largest
    scored type's cells replaced by cells of the largest, and without labels."""
    from scsynth_core.metrics.representation import protocol_cells

    root = tmp_path_factory.mktemp("per_cluster")
    prepared, split = write_demo_split(root, demo_counts)
    representation = root / "representation.npz"
    realism.build_realism_representation(prepared=prepared, split=split, representation=representation)
    _, control, test = protocol_cells(steps.load_prepared(prepared, split), seed=0)
    counts = test.obs["cluster"].value_counts()
    big = [c for c in counts.index if counts[c] >= 20 and (control.obs["cluster"] == c).sum() >= 20]
    shifted_type = big[1]
    # The shifted type's cells are replaced by cells of the largest type: a conditional model generating the
    # wrong cell type for one label.
    X = control.X.toarray()
    rows = np.flatnonzero(control.obs["cluster"] == shifted_type)
    X[rows] = X[np.flatnonzero(control.obs["cluster"] == big[0])[: len(rows)]]
    generated = {"shifted": root / "shifted.h5ad", "unlabelled": root / "unlabelled.h5ad"}
    ad.AnnData(sp.csr_matrix(X), obs=control.obs[["cluster"]].copy(), var=control.var[[]]).write_h5ad(
        generated["shifted"]
    )
    ad.AnnData(control.X, var=control.var[[]]).write_h5ad(generated["unlabelled"])
    return {"root": root, "prepared": prepared, "split": split, "representation": representation,
            "generated": generated, "shifted_type": shifted_type, "scored": big}  # fmt: skip


def _evaluate(protocol, name: str | None) -> dict:
    run = protocol["root"] / "ds" / (name or "real_control") / "seed0"
    run.mkdir(parents=True, exist_ok=True)
    out = {"table": run / "per_cluster.tsv", "roc": run / "per_cluster_roc.tsv"}
    realism.evaluate_per_cluster_realism(
        real=protocol["prepared"], split=protocol["split"], representation=protocol["representation"],
        generated=None if name is None else protocol["generated"][name], output=out["table"], roc=out["roc"],
        n_trees=TREES, seed=0,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def runs(protocol) -> dict[str, dict]:
    return {"shifted": _evaluate(protocol, "shifted"), "real_control": _evaluate(protocol, None)}


def test_the_step_scores_every_large_cluster_and_finds_the_shifted_one(protocol, runs):
    shifted = realism._read_per_cluster(runs["shifted"]["table"]).set_index("cluster")
    control = realism._read_per_cluster(runs["real_control"]["table"]).set_index("cluster")
    # Cells of the real control scored as generated: the same cells, so the same counts and the same AUCs
    # everywhere but the shifted type, which the forest finds.
    assert list(shifted.index) == list(control.index)
    pd.testing.assert_frame_equal(shifted[["n_real", "n_generated", "skipped"]],
                                  control[["n_real", "n_generated", "skipped"]])  # fmt: skip
    assert set(shifted.index[shifted["skipped"] == ""]) == set(protocol["scored"])
    others = [c for c in protocol["scored"] if c != protocol["shifted_type"]]
    np.testing.assert_allclose(shifted.loc[others, "rf_auc_mean"], control.loc[others, "rf_auc_mean"])
    assert shifted.loc[protocol["shifted_type"], "rf_auc_mean"] > 0.9
    assert control.loc[protocol["shifted_type"], "rf_auc_mean"] < 0.8
    assert (shifted.loc[shifted["skipped"] != "", "skipped"].str.startswith("fewer than 20 cells")).all()
    roc = pd.read_csv(runs["shifted"]["roc"], sep="\t")
    assert set(roc["cluster"]) == set(protocol["scored"])


def test_generated_cells_without_clusters_are_a_data_error_naming_the_file(protocol, tmp_path):
    with pytest.raises(DataError, match=r"unlabelled\.h5ad: no obs\['cluster'\] column"):
        realism.evaluate_per_cluster_realism(
            real=protocol["prepared"], split=protocol["split"], representation=protocol["representation"],
            generated=protocol["generated"]["unlabelled"], output=tmp_path / "t.tsv", roc=tmp_path / "r.tsv",
            n_trees=TREES,
        )  # fmt: skip


def test_summary_figures_and_leaderboard_column(protocol, runs, tmp_path):
    summary = tmp_path / "per_cluster.tsv"
    identities = [{"dataset": "ds", "model": model, "replicate": "seed0"} for model in ("shifted", "real_control")]
    realism.summarise_per_cluster(inputs=[runs["shifted"]["table"], runs["real_control"]["table"]], runs=identities,
                                  output=summary)  # fmt: skip
    table = pd.read_csv(summary, sep="\t", keep_default_na=False, na_values={"rf_auc_mean": [""]})
    assert list(table.columns[:4]) == ["dataset", "model", "replicate", "cluster"]
    assert set(table["model"]) == {"shifted", "real_control"} and set(table["dataset"]) == {"ds"}

    roc_png, tsne_png = tmp_path / "roc.png", tmp_path / "tsne.png"
    realism.plot_per_cluster_roc(rocs={k: v["roc"] for k, v in runs.items()},
                               tables={k: v["table"] for k, v in runs.items()}, output=roc_png)  # fmt: skip
    assert roc_png.read_bytes()[:8] == PNG
    realism.plot_per_cluster_embedding(prepared=protocol["prepared"], split=protocol["split"],
                                     generated={"shifted": protocol["generated"]["shifted"]}, output=tsne_png)  # fmt: skip
    assert tsne_png.read_bytes()[:8] == PNG

    # The leaderboard's per-cluster column: the mean over scored clusters; the control is shown, not ranked.
    board = tmp_path / "board.tsv"
    write_leaderboard(output=board, per_cluster=[summary])
    row = pd.read_csv(board, sep="\t").set_index("model")
    scored = table[table["rf_auc_mean"].notna()].groupby("model")["rf_auc_mean"].mean()
    assert row.loc["shifted", "realism.rf_auc_per_cluster"] == pytest.approx(scored["shifted"], abs=1e-4)
    assert row.loc["real_control", "role"] == "control" and np.isnan(
        row.loc["real_control", "realism.rf_auc_per_cluster.rank"]
    )


def test_per_cluster_figure_has_a_panel_per_scored_cluster_with_every_model():
    from scsynth_core.plots.roc import plot_roc_per_cluster

    diagonal = [(np.array([0.0, 1.0]), np.array([0.0, 1.0]))]
    curves = {c: {"cscgan": diagonal, "activa": diagonal} for c in ("0", "1", "2", "3", "4")}
    aucs = {c: {"cscgan": (0.5, 0.0), "activa": (0.5, 0.0)} for c in curves}
    fig = plot_roc_per_cluster(curves, aucs, ncols=4)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [f"cluster {c}" for c in curves]
    # each panel: two models and the chance line, one colour per model across panels
    colors = {ax.lines[0].get_color() for ax in visible}
    assert all(len(ax.lines) == 3 for ax in visible) and len(colors) == 1
    with pytest.raises(ValueError, match="every cluster was skipped"):
        plot_roc_per_cluster({}, {})


def test_leaderboard_scores_average_clusters_then_replicates_and_ignore_skipped_ones():
    frame = pd.DataFrame({
        "dataset": "d", "model": ["m"] * 5 + ["n"],
        "replicate": ["seed0", "seed0", "seed0", "seed1", "seed1", "seed0"],
        "cluster": ["a", "b", "c", "a", "b", "a"],
        "rf_auc_mean": [0.6, 0.8, np.nan, 0.9, 0.9, 0.55],
    })  # fmt: skip
    scores = per_cluster_scores(frame).set_index("model")["value"]
    assert scores["m"] == pytest.approx((0.7 + 0.9) / 2) and scores["n"] == pytest.approx(0.55)
    board = build_leaderboard([per_cluster_scores(frame)]).set_index("model")
    assert board.loc["n", "realism.rf_auc_per_cluster.rank"] == 1  # closer to 0.5
    with pytest.raises(DataError, match="no cluster was scored"):
        per_cluster_scores(frame.assign(rf_auc_mean=np.nan))
