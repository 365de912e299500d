"""benchmarks/realism_grid.py's ceiling: which metrics a generator wins by scoring better than real cells."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import realism_grid

DIRECTIONS = {"rf_auc_mean": "half", "knn_recall": "higher", "knn_density": "one", "w1": "lower", "only_one": "lower"}


def test_a_winner_is_beyond_the_real_cells_only_when_it_beats_every_control_draw():
    generators = pd.DataFrame(
        {
            "rf_auc_mean": [0.62, 0.95],  # no generator is closer to 0.5 than the control
            "knn_recall": [0.90, 0.99],  # the wide generator's recall exceeds every real draw
            "knn_density": [0.97, 0.30],  # 0.97 is closer to 1 than draw 2 (0.95) but not than draw 1 (0.99)
            "w1": [9.0, 12.0],  # 9 is below every draw (10, 10.5): beyond
            "only_one": [1.0, float("nan")],  # scored for one generator: not contested, no row
        },
        index=["flow", "wide"],
    )
    draws = [
        {"rf_auc_mean": 0.52, "knn_recall": 0.95, "knn_density": 0.99, "w1": 10.0, "only_one": 0.0},
        {"rf_auc_mean": 0.45, "knn_recall": 0.93, "knn_density": 0.95, "w1": 10.5, "only_one": 0.0},
    ]
    rows = {r["metric"]: r for r in realism_grid.beyond_real_cells(generators, draws, DIRECTIONS, model="wide")}

    assert list(rows) == ["rf_auc_mean", "knn_recall", "knn_density", "w1"]
    assert {m: (r["winner"], r["beyond"]) for m, r in rows.items()} == {
        "rf_auc_mean": ("flow", False),
        "knn_recall": ("wide", True),
        "knn_density": ("flow", False),
        "w1": ("flow", True),
    }
    assert (rows["knn_recall"]["control_min"], rows["knn_recall"]["control_max"]) == (0.93, 0.95)
    assert rows["rf_auc_mean"]["control"] == 0.52 and rows["w1"]["value"] == 9.0
    # "wide" is best on recall, worse than every draw elsewhere but on w1 (12.0 vs the worst draw's 10.5: no).
    assert {m: r["as_real"] for m, r in rows.items()} == {
        "rf_auc_mean": False,
        "knn_recall": True,
        "knn_density": False,
        "w1": False,
    }


def test_a_model_within_the_control_range_counts_as_real_though_not_best():
    generators = pd.DataFrame({"w1": [9.0, 10.2]}, index=["best", "model"])
    draws = [{"w1": 10.0}, {"w1": 10.5}]
    (row,) = realism_grid.beyond_real_cells(generators, draws, {"w1": "lower"}, model="model")
    assert row["winner"] == "best" and row["beyond"] and row["as_real"]
    (row,) = realism_grid.beyond_real_cells(generators.assign(w1=[9.0, 10.6]), draws, {"w1": "lower"}, model="model")
    assert not row["as_real"]
