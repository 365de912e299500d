"""ACTIVA (Heydari et al. 2022) as plain data: presets and hyperparameter types (docs/models.md)."""

from __future__ import annotations

from typing import Any

from scsynth_core.errors import ConfigError
from scsynth_core.models.specs.kit import ModelSpec, choice, flag, fraction, integer, integers, number
from scsynth_core.models.specs.loop import LOOP_DEFAULTS, LOOP_PARAMS

UPDATES = ("paper", "reference")
ENCODER_HEADS = ("linear", "reference")
CLASSIFIER_SCHEDULES = ("pretrain", "reference")

PAPER: dict[str, Any] = LOOP_DEFAULTS | {
    "latent_dim": 128,
    "encoder_layers": [1024, 512, 256],
    "decoder_layers": [256, 512, 1024],
    "encoder_head": "linear",
    "output_lsn": True,
    "output_threshold": 0.0,
    "update": "paper",
    "alpha1": 0.25,
    "alpha2": 0.05,
    "margin": 110.0,
    "learning_rate": 2e-4,
    "batch_size": 128,
    "epochs": 500,
    "warmup_epochs": 9,
    "max_steps": None,
    "classifier_schedule": "pretrain",
    "classifier_epochs": 50,
    "classifier_layers": [100, 50, 25],
    "classifier_log_input": True,
    "classifier_learning_rate": 1e-4,
    "classifier_weight_decay": 0.005,
    "classifier_lr_decay": 0.95,
    "classifier_decay_every": 1000,
    "checkpoint_every": 5,
    "monitor_every": 10,
    "monitor_cells": 3000,
    "type_threshold": 0.0,
    "max_draw_factor": 1000,
}
#: The demo data hold a few hundred training cells (4 minibatches per epoch): more epochs, same method.
DEMO: dict[str, Any] = PAPER | {
    "epochs": 150,
    "classifier_epochs": 200,
    "checkpoint_every": 25,
    "monitor_every": 5,
    "monitor_cells": 300,
}
#: At most 10 minutes on 2 CPU cores for up to 5,000 cells x 2,000 genes, measured (docs/results.md, realism):
#: the run is under-trained, not over-fitted, at any length that fits (reconstruction still falling steeply), so
#: it trains for a step budget, not the paper's 500 epochs (which take 10 minutes only below ~600 cells); learning
#: rate 6e-4 (RF AUC 0.900 vs 0.954 with 2e-4 after 4,000 steps on pbmc68k; lower MMD on pbmc3k, higher on
#: Zeisel); last weights (the monitor's kNN AUC is pinned at 1 on 2,000-gene sets, so "best" picked early epochs);
#: no weight average (it helped only at 1.2e-3).
WORKSTATION: dict[str, Any] = PAPER | {
    "learning_rate": 6e-4,
    "epochs": 5000,
    "max_steps": 3000,
    "max_minutes": 10.0,
    "monitor_every": 10,
    "monitor_cells": 500,
}

PARAMS = LOOP_PARAMS | {
    "latent_dim": integer(),
    "encoder_layers": integers(),
    "decoder_layers": integers(),
    "encoder_head": choice(ENCODER_HEADS),
    "output_lsn": flag(),
    "output_threshold": number(also=("auto",)),
    "update": choice(UPDATES),
    "alpha1": number(),
    "alpha2": number(),
    "margin": number(),
    "learning_rate": number(),
    "batch_size": integer(2),  # batch normalisation
    "epochs": integer(),
    "warmup_epochs": integer(0),
    "max_steps": integer(optional=True),
    "classifier_schedule": choice(CLASSIFIER_SCHEDULES),
    "classifier_epochs": integer(),
    "classifier_layers": integers(),
    "classifier_log_input": flag(),
    "classifier_learning_rate": number(),
    "classifier_weight_decay": number(),
    "classifier_lr_decay": number(0.0, 1.0, low_open=True),
    "classifier_decay_every": integer(),
    "type_threshold": fraction(),
    "max_draw_factor": integer(),
}


def reference_schedule_fits_warmup(model: str, p: dict[str, Any], preset: str) -> None:
    """The reference schedule trains the classifier during the VAE warm-up."""
    if p["classifier_schedule"] == "reference" and p["classifier_epochs"] > p["warmup_epochs"]:
        raise ConfigError(
            f"model '{model}': classifier_schedule 'reference' trains the classifier during the VAE warm-up: "
            f"classifier_epochs ({p['classifier_epochs']}) must be <= warmup_epochs ({p['warmup_epochs']}); "
            "the reference uses 4"
        )


ACTIVA = ModelSpec(
    "activa",
    "scsynth_core.models.activa:ACTIVA",
    "lsn",
    conditional=True,
    labels_optional=True,
    labels_by_filtering=True,
    presets={"paper": PAPER, "workstation": WORKSTATION, "demo": DEMO},
    params=PARAMS,
    rules=(reference_schedule_fits_warmup,),
)
