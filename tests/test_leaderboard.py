"""Ranks that respect each metric's direction, and the leaderboard table figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scsynth_core.leaderboard import is_better, rank_columns
from scsynth_core.plots.leaderboard import plot_rank_table


def _values() -> pd.DataFrame:
    return pd.DataFrame(
        {"w2": [3.0, 1.0, 1.0, 0.1], "recall": [0.2, 0.9, np.nan, 1.0], "auc": [0.9, 0.45, 0.6, 0.5]},
        index=pd.Index(["a", "b", "c", "real_control"], name="model"),
    )


def test_ranks_follow_each_metrics_direction_ties_share_and_missing_stay_missing():
    ranks = rank_columns(_values(), {"w2": "lower", "recall": "higher", "auc": "half"})
    assert ranks["w2"].tolist() == [4, 2, 2, 1]  # b and c tie for 2nd, nobody is 3rd
    assert ranks["recall"].tolist()[:2] == [3, 2] and np.isnan(ranks.loc["c", "recall"])
    assert ranks["auc"].tolist() == [4, 2, 3, 1]  # distance from 0.5


def test_knn_density_is_best_at_one_not_highest():
    density = pd.DataFrame({"knn_density": [1.6, 0.9, 1.05, 0.5]}, index=["crowded", "b", "c", "sparse"])
    from scsynth_core.metrics import DIRECTIONS

    ranks = rank_columns(density, {"knn_density": DIRECTIONS["knn_density"]})
    assert ranks["knn_density"].tolist() == [4, 2, 1, 3]  # distance from 1 ("higher" would put crowded first)
    assert is_better(1.05, 1.6, "one") and not is_better(1.6, 1.05, "one") and is_better(0.4, 0.7, "half")
    assert not is_better(0.5, 0.5, "lower")  # strictly better


def test_reference_rows_are_unranked_and_push_no_one_down():
    values = _values()
    ranks = rank_columns(values, {"w2": "lower", "recall": "higher", "auc": "half"},
                         ranked=values.index != "real_control")  # fmt: skip
    assert ranks.loc["real_control"].isna().all()
    assert ranks["w2"].tolist()[:3] == [3, 1, 1] and ranks["auc"].tolist()[:3] == [3, 1, 2]


def test_a_column_without_a_known_direction_is_an_error():
    with pytest.raises(ValueError, match=r"no direction for column\(s\) \['auc'\]"):
        rank_columns(_values(), {"w2": "lower", "recall": "higher"})
    with pytest.raises(ValueError, match="unknown metric direction 'up'"):
        rank_columns(_values(), {"w2": "up", "recall": "higher", "auc": "half"})


def test_rank_table_figure_colours_ranked_cells_and_writes_every_value():
    values = _values()
    ranks = rank_columns(values, {"w2": "lower", "recall": "higher", "auc": "half"},
                         ranked=values.index != "real_control")  # fmt: skip
    fig = plot_rank_table(values, ranks, title="t")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == values.size and "NA" in texts and "0.45" in texts
    image = ax.get_images()[0].get_array()
    assert image.mask.sum() == 3 + 1  # the control's row and the missing recall are grey
    assert [t.get_text() for t in ax.get_yticklabels()] == list(values.index)
    with pytest.raises(ValueError, match="same rows and columns"):
        plot_rank_table(values, ranks.iloc[::-1])


# -- one leaderboard over every experiment, from hand-made summary tables -------------------------------------
def _realism() -> pd.DataFrame:
    """The realism leaderboard of one dataset: the real control, two models and a baseline; w2 only for some."""
    return pd.DataFrame(
        {
            "dataset": "pbmc",
            "model": ["real_control", "scgan", "activa", "noise"],
            "rf_auc_mean_mean": [0.52, 0.70, 0.35, 0.99],
            "mmd_mean": [0.0, 0.02, 0.01, 1.7],
            "w2_mean": [12.0, 14.0, 13.0, np.nan],
            "nn1_accuracy_mean": [0.5, 0.8, 0.45, 0.95],
        }
    )


def _f1() -> pd.DataFrame:
    """Augmentation F1: two fractions, two seeds, a generated-cell sweep (n_extra 100) that must be ignored."""
    rows = []
    for fraction, seed in [(0.5, 0), (0.1, 0), (0.1, 1)]:
        variants = [("downsampled", "real", 0, 0.40 + seed * 0.02), ("upsampled", "real", 500, 0.50),
                    ("augmented", "activa", 500, 0.70 + seed * 0.1), ("augmented", "activa", 100, 0.99),
                    ("augmented", "upsample", 500, 0.60)]  # fmt: skip
        rows += [(*variant, fraction, seed) for variant in variants]
    frame = pd.DataFrame(rows, columns=["variant", "source", "n_extra", "f1", "fraction", "seed"])
    return frame.assign(comparison="rest", target="1")


def _pilot() -> pd.DataFrame:
    frame = pd.DataFrame({"dataset": "pbmc", "model": ["noise", "noise", "scdbm", "scdbm", "noise"],
                          "pilot_size": [96, 96, 96, 96, 384], "seed": [0, 1, 0, 1, 0],
                          "dbi_original": 1.0, "dbi_synthetic": [1.5, 1.3, 0.9, 0.9, 1.0],
                          "ari": [0.2, 0.4, 0.6, 0.6, 0.9]})  # fmt: skip
    return frame.assign(mad_median=1.0, mad_iqr=2.0, mad_cv=[0.5, 0.5, 0.1, 0.3, 0.1], mad_zero_fraction=0.1)


def _board():
    from scsynth_core.leaderboard import (
        augmentation_scores,
        build_leaderboard,
        disentanglement_scores,
        perturbation_scores,
        pilot_scores,
        realism_scores,
    )

    dis = pd.DataFrame({"simulation": "linear", "model": ["vae", "vae", "pca"], "latent_dim": [5, 10, 5],
                        "seed": 0, "mig": [0.2, 0.4, 0.1]})  # fmt: skip
    pert = pd.DataFrame({"combination": "A:B", "seed": [0, 0, 0, 1, 1, 1],
                         "method": ["michigan", "betatcvae", "control"] * 2,
                         "rf_error": [0.02, 0.0, 0.04, 0.04, 0.0, 0.04]})  # fmt: skip
    scores = [realism_scores(_realism()), augmentation_scores({"pbmc": _f1()}, n_extra=500), pilot_scores(_pilot()),
              disentanglement_scores(dis), perturbation_scores(pert, dataset="simulated")]  # fmt: skip
    return build_leaderboard(scores).set_index(["dataset", "model"])


def test_leaderboard_ranks_each_metric_its_way_per_dataset_with_references_unranked():
    board = _board()
    pbmc = board.loc["pbmc"]
    # realism: AUC by distance from 0.5 (activa 0.35 beats scgan 0.70), MMD lower, 1-NN accuracy by |x - 0.5|
    assert pbmc.loc[["activa", "scgan", "noise"], "realism.rf_auc.rank"].tolist() == [1, 2, 3]
    assert pbmc.loc[["activa", "scgan", "noise"], "realism.mmd.rank"].tolist() == [1, 2, 3]
    assert pbmc.loc[["activa", "scgan", "noise"], "realism.nn1_accuracy.rank"].tolist() == [1, 2, 3]
    # the real control is shown, not ranked (its AUC 0.52 would otherwise be first)
    assert pbmc.loc["real_control", "role"] == "control" and pbmc.loc["real_control", "realism.rf_auc"] == 0.52
    assert pbmc.loc["real_control", [c for c in pbmc.columns if c.endswith(".rank")]].isna().all()
    # augmentation at the smallest fraction (0.1), mean over seeds, n_extra 500 only; references unranked
    assert pbmc.loc["activa", "augmentation.f1@0.1"] == pytest.approx(0.75)
    assert pbmc.loc[["activa", "upsample"], "augmentation.f1@0.1.rank"].tolist() == [1, 2]
    assert pbmc.loc["downsampled", "augmentation.f1@0.1"] == pytest.approx(0.41)
    assert pbmc.loc["real_upsampled", "role"] == "reference" and np.isnan(
        pbmc.loc["real_upsampled", "augmentation.f1@0.1.rank"]
    )
    # pilot at the smallest size (96): |DBI - original| lower (scdbm 0.1 < noise 0.4), ARI higher
    assert pbmc.loc["noise", "pilot.dbi_gap@96"] == pytest.approx(0.4)
    assert pbmc.loc[["scdbm", "noise"], "pilot.dbi_gap@96.rank"].tolist() == [1, 2]
    assert pbmc.loc[["scdbm", "noise"], "pilot.ari@96.rank"].tolist() == [1, 2]
    assert pbmc.loc["noise", "role"] == "baseline" and pbmc.loc["scgan", "role"] == "model"


def test_leaderboard_shows_a_model_missing_from_an_experiment_as_na_and_datasets_as_facets():
    board = _board()
    assert np.isnan(board.loc[("pbmc", "noise"), "realism.w2"])  # the run lacks it: NA, unranked
    assert np.isnan(board.loc[("pbmc", "noise"), "realism.w2.rank"])
    assert board.loc[("pbmc", "scgan"), ["augmentation.f1@0.1", "pilot.ari@96"]].isna().all()  # not in them
    assert np.isnan(board.loc[("pbmc", "activa"), "pilot.ari@96"])
    # other datasets are separate facets with their own ranks: the simulations of disentanglement and perturbation
    assert set(board.index.get_level_values("dataset")) == {"pbmc", "splatter_linear", "simulated"}
    linear = board.loc["splatter_linear"]
    assert linear.loc["vae", "disentanglement.mig"] == pytest.approx(0.3)  # mean over latent sizes and seeds
    assert linear.loc["vae", "disentanglement.mig.rank"] == 1
    assert linear["realism.rf_auc"].isna().all()
    sim = board.loc["simulated"]
    # RF error: 0.5 is indistinguishable, so the larger error ranks first; the unshifted control is a reference
    assert sim.loc[["michigan", "betatcvae"], "perturbation.rf_error.rank"].tolist() == [1, 2]
    assert sim.loc["unshifted_control", "role"] == "reference"
    # column groups in experiment order, each value beside its rank; ranked rows before the references
    columns = list(board.columns)
    assert columns[:3] == ["role", "realism.rf_auc", "realism.rf_auc.rank"]
    order = [columns.index(c) for c in ("augmentation.f1@0.1", "pilot.dbi_gap@96", "disentanglement.mig")]
    assert order == sorted(order)
    # (by the ranks in column order: upsample, without realism ranks, comes before scdbm through augmentation)
    assert list(board.loc["pbmc"].index) == ["activa", "scgan", "noise", "upsample", "scdbm", "downsampled",
                                             "real_control", "real_upsampled"]  # fmt: skip


def test_write_leaderboard_reads_the_experiments_tables_and_writes_na(tmp_path):
    from scsynth_core.errors import DataError
    from scsynth_core.leaderboard import write_leaderboard

    realism, f1 = tmp_path / "realism.tsv", tmp_path / "augmentation/pbmc/f1.tsv"
    f1.parent.mkdir(parents=True)
    _realism().to_csv(realism, sep="\t", index=False)
    _f1().to_csv(f1, sep="\t", index=False)
    out, figure = tmp_path / "leaderboard.tsv", tmp_path / "leaderboard.png"
    write_leaderboard(output=out, figure=figure, realism=realism, augmentation=[f1], n_extra=500)
    text = out.read_text()
    assert "\tNA\t" in text and "nan" not in text.lower().replace("\tna", "")
    table = pd.read_csv(out, sep="\t").set_index("model")
    assert table.loc["activa", "augmentation.f1@0.1"] == pytest.approx(0.75) and set(table["dataset"]) == {"pbmc"}
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DataError, match=r"no augmented rows with 1000 generated cells at fraction 0.1"):
        write_leaderboard(output=out, augmentation=[f1], n_extra=1000)
    with pytest.raises(DataError, match="no experiment's table given"):
        write_leaderboard(output=out)
    # The workflow names each table's dataset (a folder such as results/augmentation/<run>/<dataset> is not read).
    write_leaderboard(output=out, augmentation=[f1], augmentation_datasets=["pbmc68k"], n_extra=500)
    assert set(pd.read_csv(out, sep="\t")["dataset"]) == {"pbmc68k"}
    with pytest.raises(DataError, match=r"1 augmentation table\(s\) for 2 dataset name\(s\)"):
        write_leaderboard(output=out, augmentation=[f1], augmentation_datasets=["a", "b"], n_extra=500)
