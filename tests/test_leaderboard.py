"""Ranks that respect each metric's direction, and the leaderboard table figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scsynth_core.leaderboard import rank_columns
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
