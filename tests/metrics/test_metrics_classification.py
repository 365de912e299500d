"""Classification scores of predicted cell types (ACTINN's evaluation; Heydari 2022 Supp. Tables S6-S7):
known answers computed by hand."""

from __future__ import annotations

import pytest

from scsynth_core.errors import DataError
from scsynth_core.metrics.classification import classification_scores, per_type_scores

# 5 cells: one 'a' cell predicted as 'b'. Per type: a precision 1, recall 1/2, F1 2/3; b precision 2/3, recall 1,
# F1 4/5; c precision 1, recall 1, F1 1. Support a 2, b 2, c 1.
TRUTH = ["a", "a", "b", "b", "c"]
PREDICTED = ["a", "b", "b", "b", "c"]


def test_scores_match_hand_computed_values():
    scores = classification_scores(TRUTH, PREDICTED)
    assert scores["accuracy"] == pytest.approx(4 / 5) and scores["n_cells"] == 5
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 4 / 5 + 1) / 3)
    assert scores["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 * 4 / 5 + 1 * 1) / 5)
    table = per_type_scores(TRUTH, PREDICTED).set_index("type")
    assert table["f1"].to_dict() == pytest.approx({"a": 2 / 3, "b": 4 / 5, "c": 1.0})
    assert table["precision"].to_dict() == pytest.approx({"a": 1.0, "b": 2 / 3, "c": 1.0})
    assert table["recall"].to_dict() == pytest.approx({"a": 1 / 2, "b": 1.0, "c": 1.0})
    assert table["support"].to_dict() == {"a": 2, "b": 2, "c": 1}


def test_a_type_never_predicted_or_unknown_to_the_classifier_scores_zero():
    # 'c' is never predicted (F1 0); 'x' is a test type the classifier does not know (all its cells are errors)
    scores = classification_scores(["a", "c", "x", "a"], ["a", "a", "a", "a"])
    assert scores["accuracy"] == pytest.approx(1 / 2)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0 + 0) / 3)  # a: precision 1/2, recall 1
    assert scores["weighted_f1"] == pytest.approx(2 * (2 / 3) / 4)
    perfect = classification_scores([1, 2, 2], ["1", "2", "2"])  # labels compared as text
    assert perfect == {"accuracy": 1.0, "macro_f1": 1.0, "weighted_f1": 1.0, "n_cells": 3}


def test_mismatched_or_empty_labels_fail_clearly():
    with pytest.raises(DataError, match="one predicted label per cell"):
        classification_scores(["a", "b"], ["a"])
    with pytest.raises(DataError, match="at least one labelled cell"):
        classification_scores([], [])
