"""latentflow, CFGen's conditional flow matching in an autoencoder's code space (Palma et al. 2025), as plain data:
presets and hyperparameter types (docs/models.md)."""

from __future__ import annotations

from typing import Any

from scsynth_core.models.specs.kit import ModelSpec, fraction, integer, integers, number
from scsynth_core.models.specs.loop import LOOP_DEFAULTS, LOOP_PARAMS

PAPER: dict[str, Any] = LOOP_DEFAULTS | {
    "latent_dim": 50,
    "encoder_layers": [512, 256],
    "decoder_layers": [256, 512],
    "ae_epochs": 200,
    # At least this many autoencoder steps whatever the data size (0: epochs only, as CFGen).
    "ae_min_steps": 0,
    "ae_learning_rate": 1e-3,
    # Our departures from CFGen (docs/models.md, "latentflow"): the dispersions' own step size, and noise on the
    # codes while the autoencoder trains, in units of how far halving a cell's counts moves its code.
    "dispersion_learning_rate": 1e-2,
    "code_noise": 2.0,
    # Fitted without labels, the flow is conditioned on this many k-means clusters of the codes (0 or 1: none).
    "code_clusters": 20,
    "flow_width": 512,
    "flow_blocks": 3,
    "embedding_dim": 256,
    "epochs": 1000,
    "max_steps": None,
    "batch_size": 256,
    "learning_rate": 1e-4,
    "weight_decay": 1e-5,
    "gradient_clip": 1.0,
    "sigma": 1e-4,
    "label_dropout": 0.2,
    "guidance": 1.0,
    "ode_steps": 50,
    "log_every": 100,
    "monitor_every": 0,
    "checkpoint_every": 1000,
}
#: At most 10 minutes on 2 CPU cores for up to 5,000 cells x 2,000 genes, measured on pbmc3k and Zeisel 2015
#: (realism protocol, 300-tree forests; docs/results.md, realism): CFGen's networks and 1,000 flow epochs at lr 1e-4
#: did not fit (10 minutes stopped the flow at 3,457 steps: RF AUC 0.87 on pbmc3k). Smaller networks learn
#: faster per CPU second: codes of 16 dims (pbmc3k 0.65 vs 0.70 with 32), one hidden layer of 256 units each
#: side, 100 autoencoder epochs (0.64 vs 0.65 with 40), a flow of 3 x 256 units with 64-dim embeddings at lr 1e-3
#: and batch 128 for 600 epochs (pbmc3k 0.64 vs 0.65 with 300; Zeisel 0.73 vs 0.80 with 300 epochs and 40
#: autoencoder epochs). The monitor is logged every 1,000 flow steps; the last weights are kept. The autoencoder
#: trains at least 3,000 steps (sets of 500-2,000 cells get 500-1,900 from 100 epochs; pilots of 384-1,152 cells,
#: 300-900): better on the five shared sets of 1,700+ cells and on pilots, worse on the two of ~600 (pancreas RF
#: AUC 0.66 -> 0.73); benchmarks/results/realism_minsteps/README.md. With that floor the dispersions take the
#: networks' step size (1e-3): at 1e-2 and 3,000 steps those of pancreas ran to a median of 71 (near Poisson, the
#: decoder's means absorbing the over-dispersion; pbmc3k: 0.7) and RF AUC rose there; at 1e-3 they stay near 1 on
#: pancreas, which scores 0.64 (pbmc68k 0.51, 6 of 7 sets <= 0.65; benchmarks/results/realism_displr/README.md),
#: and on pilots of 768 and 1,152 cells it ties scVI posterior (benchmarks/results/pilot_copy/README.md).
WORKSTATION: dict[str, Any] = PAPER | {
    "latent_dim": 16,
    "encoder_layers": [256],
    "decoder_layers": [256],
    "ae_epochs": 100,
    "ae_min_steps": 3000,
    "dispersion_learning_rate": 1e-3,
    "flow_width": 256,
    "embedding_dim": 64,
    "epochs": 600,
    "batch_size": 128,
    "learning_rate": 1e-3,
    "monitor_every": 1000,
    "monitor_cells": 500,
    "max_minutes": 10.0,
}
#: A few seconds on a few hundred cells: small networks, short stages, a 10x flow learning rate.
DEMO: dict[str, Any] = PAPER | {
    "latent_dim": 10,
    "encoder_layers": [64],
    "decoder_layers": [64],
    "ae_epochs": 40,
    "flow_width": 64,
    "flow_blocks": 2,
    "embedding_dim": 32,
    "epochs": 60,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "ode_steps": 10,
    "log_every": 20,
    "checkpoint_every": 200,
}

PARAMS = LOOP_PARAMS | {
    "latent_dim": integer(),
    "encoder_layers": integers(),
    "decoder_layers": integers(),
    "ae_epochs": integer(),
    "ae_min_steps": integer(0),
    "ae_learning_rate": number(low_open=True),
    "dispersion_learning_rate": number(low_open=True),
    "code_noise": number(),
    "code_clusters": integer(0),
    "flow_width": integer(),
    "flow_blocks": integer(),
    "embedding_dim": integer(2),
    "epochs": integer(),
    "max_steps": integer(optional=True),
    "batch_size": integer(2),
    "learning_rate": number(low_open=True),
    "weight_decay": number(),
    "gradient_clip": number(),
    "sigma": number(),
    "label_dropout": fraction(),
    "guidance": number(),
    "ode_steps": integer(),
}

LATENTFLOW = ModelSpec(
    "latentflow",
    "scsynth_core.models.flow:LatentFlow",
    "counts",
    conditional=True,
    labels_optional=True,
    presets={"paper": PAPER, "workstation": WORKSTATION, "demo": DEMO},
    params=PARAMS,
)
