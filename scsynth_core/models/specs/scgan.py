"""scGAN and cscGAN (Marouf et al. 2020) as plain data: presets and hyperparameter types (docs/models.md)."""

from __future__ import annotations

from typing import Any

from scsynth_core.models.specs.kit import ModelSpec, choice, fraction, integer, integers, number
from scsynth_core.models.specs.loop import LOOP_DEFAULTS, LOOP_PARAMS

CRITIC_HEADS = ("unconditional", "projection", "projection_only")
CRITIC_FAKE_LABELS = ("real_batch", "reference")
#: How a code-conditioned critic projects a real-valued code ``c`` onto its last hidden layer ``h``:
#: ``<c, h>`` (widths[-1] == code dims, MichiGAN's reference) or ``<c, V h>`` with a learned ``V``.
CODE_PROJECTIONS = ("identity", "learned")
GP_INTERPOLATIONS = ("per_cell", "per_batch")

PAPER: dict[str, Any] = LOOP_DEFAULTS | {
    "latent_dim": 128,
    "generator_layers": [256, 512, 1024],
    "critic_layers": [1024, 512, 256],
    "batch_size": 128,
    "critic_iters": 5,
    "gp_weight": 10.0,
    "learning_rate": 1e-4,
    "final_learning_rate": 1e-5,
    "beta1": 0.5,
    "beta2": 0.9,
    "max_steps": 1_000_000,
    "log_every": 100,
    "monitor_every": 1000,
    "monitor_cells": 3000,
    "checkpoint_every": 1000,
}
#: Tiny schedule for tests and the smoke run: minutes on a CPU, not realistic cells.
DEMO: dict[str, Any] = PAPER | {
    "learning_rate": 1e-3,
    "final_learning_rate": 1e-4,
    "max_steps": 500,
    "log_every": 10,
    "monitor_every": 100,
    "monitor_cells": 300,
    "checkpoint_every": 100,
}
#: At most 10 minutes on 2 CPU cores for up to 5,000 cells x 2,000 genes, measured (docs/results.md, realism):
#: 2 critic steps per generator step (the largest lever: ~4 generator steps per CPU second instead of 1.7, RF
#: AUC 0.972-0.978 vs 0.983-0.990 at equal CPU time on pbmc3k; 1 or 3 were worse), learning rate 1e-3 -> 1e-4
#: (3e-4 and 2e-3 worse), weight average 0.998, the best monitored weights.
WORKSTATION: dict[str, Any] = PAPER | {
    "critic_iters": 2,
    "learning_rate": 1e-3,
    "final_learning_rate": 1e-4,
    "max_steps": 1600,
    "max_minutes": 10.0,
    "log_every": 50,
    "monitor_every": 100,
    "monitor_cells": 500,
    "select": "best",
    "ema_decay": 0.998,
    "checkpoint_every": 200,
}
CONDITIONAL = {"critic_head": "projection", "critic_fake_labels": "real_batch"}

PARAMS = LOOP_PARAMS | {
    "latent_dim": integer(),
    "generator_layers": integers(),
    "critic_layers": integers(),
    "batch_size": integer(2),  # batch normalisation
    "critic_iters": integer(),
    "gp_weight": number(),
    "learning_rate": number(),
    "final_learning_rate": number(),
    "beta1": fraction(),
    "beta2": fraction(),
    "max_steps": integer(),
}

SCGAN = ModelSpec(
    "scgan",
    "scsynth_core.models.scgan:ScGAN",
    "lsn",
    reads_rows=True,
    presets={"paper": PAPER, "workstation": WORKSTATION, "demo": DEMO},
    params=PARAMS,
)
CSCGAN = ModelSpec(
    "cscgan",
    "scsynth_core.models.scgan:CscGAN",
    "lsn",
    conditional=True,
    reads_rows=True,
    presets={"paper": PAPER | CONDITIONAL, "workstation": WORKSTATION | CONDITIONAL, "demo": DEMO | CONDITIONAL},
    params=PARAMS | {"critic_head": choice(CRITIC_HEADS[1:]), "critic_fake_labels": choice(CRITIC_FAKE_LABELS)},
)
