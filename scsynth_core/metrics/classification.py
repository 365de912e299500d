"""How well predicted cell types match the true ones: accuracy, macro- and weighted-F1 and per-type scores, the
measures of ACTINN's evaluation (Ma & Pellegrini 2020; ACTINN-PyTorch reports scikit-learn's ``f1_score`` with
``average="macro"`` and ``"weighted"``) that Heydari et al. 2022 report for ACTINN per dataset (Supp. Tables
S6-S7). Computed with scikit-learn on the labels as text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scsynth_core.errors import DataError


def _as_labels(truth: Sequence, predicted: Sequence) -> tuple[np.ndarray, np.ndarray]:
    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    if truth.ndim != 1 or truth.shape != predicted.shape:
        raise DataError(
            f"classification scores need one predicted label per cell: got {truth.shape} true and "
            f"{predicted.shape} predicted labels"
        )
    if truth.size == 0:
        raise DataError("classification scores need at least one labelled cell")
    return truth, predicted


def classification_scores(truth: Sequence, predicted: Sequence) -> dict[str, float | int]:
    """``accuracy`` (fraction of cells whose predicted type is their type), ``macro_f1`` (unweighted mean of the
    per-type F1 scores), ``weighted_f1`` (mean weighted by each type's number of true cells) and ``n_cells``.

    The types are those of ``truth`` and ``predicted`` together, so a type the classifier never predicts scores
    F1 0 (``zero_division=0``) and a test type it was not trained on counts as errors.
    """
    from sklearn.metrics import accuracy_score, f1_score

    truth, predicted = _as_labels(truth, predicted)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(truth, predicted, average="weighted", zero_division=0)),
        "n_cells": int(truth.size),
    }


def per_type_scores(truth: Sequence, predicted: Sequence) -> pd.DataFrame:
    """One row per type (sorted): ``precision``, ``recall``, ``f1`` and ``support`` (its number of true cells)."""
    from sklearn.metrics import precision_recall_fscore_support

    truth, predicted = _as_labels(truth, predicted)
    types = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=types, zero_division=0)
    return pd.DataFrame({"type": types, "precision": precision, "recall": recall, "f1": f1, "support": support})
