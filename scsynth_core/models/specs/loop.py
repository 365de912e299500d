"""The training loop's hyperparameters, which every torch family has (:mod:`scsynth_core.models.training`)."""

from __future__ import annotations

from typing import Any

from scsynth_core.models.specs.kit import choice, fraction, integer, number

SELECTIONS = ("best", "last")

#: Hyperparameters of the loop that every torch model family has (values: the paper presets' defaults).
LOOP_DEFAULTS: dict[str, Any] = {
    "max_minutes": None,  # wall-clock budget of the loop (outside the determinism guarantee)
    "monitor_every": 1000,  # steps between realism monitor evaluations (0: no monitor)
    "monitor_cells": 500,  # validation cells held out of training for the monitor (at most)
    "validation_fraction": 0.1,  # ... and at most this fraction of the training cells
    "select": "last",  # "best": keep the weights of the best monitored step
    "patience": None,  # stop after this many monitor evaluations without improvement
    "ema_decay": 0.0,  # exponential moving average of the generating weights (0: off)
    "log_every": 100,
    "checkpoint_every": 1000,
}

LOOP_PARAMS = {
    "max_minutes": number(low_open=True, optional=True),
    "monitor_every": integer(0),
    "monitor_cells": integer(0),
    "validation_fraction": number(0.0, 0.5),
    "select": choice(SELECTIONS),
    "patience": integer(1, optional=True),
    "ema_decay": fraction(),
    "log_every": integer(1),
    "checkpoint_every": integer(1),
}
