"""scDBM's training schedule: the phases and the learning rate of each epoch, under the standard schedule or
the reference notebook's (``lr_schedule="reference"``, one of the reference behaviours kept as options)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PHASES = ("nb_rbm", "bernoulli_rbm", "dbm")

#: The reference notebook's per-epoch NB-RBM learning rates (``lr_rbm`` in scDBM_notebook.jl).
REFERENCE_NB_RBM_LR = ((3500, 1e-11), (1000, 5e-5), (10000, 1e-5))
REFERENCE_LR = 1e-11


def learning_rate(params: Mapping[str, Any], phase: str, epoch: int) -> float:
    """Learning rate of 1-based ``epoch`` of ``phase`` under ``params["lr_schedule"]``."""
    p = params
    reference = p["lr_schedule"] == "reference"
    if phase == "nb_rbm":
        if not reference:
            return float(p["learning_rate"])
        remaining = epoch
        for count, value in REFERENCE_NB_RBM_LR:
            if remaining <= count:
                return value
            remaining -= count
        return REFERENCE_NB_RBM_LR[-1][1]
    if phase == "bernoulli_rbm":
        return REFERENCE_LR if reference else float(p["learning_rate_rbm2"])
    base = REFERENCE_LR if reference else float(p["finetune_learning_rate"])
    return base * 11.0 / (10.0 + epoch)
