"""Ranks of models on metrics that are better in different directions.

A metric is better ``"lower"`` (distances, errors: 0 is identical), ``"higher"`` (F1, recall, correlations) or
``"half"`` (0.5 is best: a real-vs-generated classifier's AUC, error or 1-NN accuracy at chance). The same words as
:data:`scsynth_core.metrics.modern.DIRECTIONS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping

DIRECTION_WORDS = ("lower", "higher", "half")


def badness(values: pd.Series, direction: str) -> pd.Series:
    """``values`` turned into "smaller is better" for ranking and sorting."""
    if direction == "lower":
        return values
    if direction == "higher":
        return -values
    if direction == "half":
        return (values - 0.5).abs()
    raise ValueError(f"unknown metric direction {direction!r} (expected one of {', '.join(DIRECTION_WORDS)})")


def rank_columns(
    values: pd.DataFrame, directions: Mapping[str, str], *, ranked: np.ndarray | pd.Series | None = None
) -> pd.DataFrame:
    """Rank of every row in each column: 1 is best, ties share the better rank, NaN where the value is missing.

    ``directions`` gives each column's direction (:data:`DIRECTION_WORDS`); ``ranked`` (a boolean per row) keeps
    reference rows, such as the real control, out of the ranking: their ranks are NaN and they push no one down.
    """
    missing = [c for c in values.columns if c not in directions]
    if missing:
        raise ValueError(f"rank_columns: no direction for column(s) {missing} (give each one of "
                         f"{', '.join(DIRECTION_WORDS)})")
    keep = np.ones(len(values), dtype=bool) if ranked is None else np.asarray(ranked, dtype=bool)
    if keep.shape != (len(values),):
        raise ValueError(f"rank_columns: ranked has {keep.size} entries for {len(values)} rows")
    ranks = pd.DataFrame(np.nan, index=values.index, columns=values.columns)
    for column in values.columns:
        scores = badness(pd.to_numeric(values[column], errors="coerce"), directions[column])
        ranks.loc[keep, column] = scores[keep].rank(method="min", na_option="keep").to_numpy()
    return ranks
