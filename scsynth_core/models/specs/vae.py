"""The VAE and beta-TCVAE of MichiGAN's comparison (Yu & Welch 2021) as plain data: presets and hyperparameter
types (docs/models.md)."""

from __future__ import annotations

from typing import Any

from scsynth_core.models.specs.kit import ModelSpec, choice, flag, fraction, integer, integers, number
from scsynth_core.models.specs.loop import LOOP_DEFAULTS, LOOP_PARAMS

#: ``chen``: TC weighted by beta (Chen et al. 2018 eq. 4; Yu & Welch 2021, Methods "beta-TCVAE"), the default;
#: ``reference``: beta x TC on top of the full KL, as welch-lab/MichiGAN's code (scsynth_core.models.vae).
TC_FORMS = ("chen", "reference")
LAYER_MODES = ("active", "inert")

PAPER: dict[str, Any] = LOOP_DEFAULTS | {
    "latent_dim": 10,
    "encoder_layers": [512, 256],
    "decoder_layers": [256, 512],
    "dropout": 0.2,
    "beta": 1.0,
    "tc_form": "chen",
    "batchnorm_dropout": "active",
    "scale_genes": True,
    "batch_size": 128,
    "learning_rate": 1e-4,
    "epochs": 1000,  # the paper's (Yu & Welch 2021); the reference script trains 100
    "max_steps": None,
    "log_every": 10,
    "monitor_every": 0,
    "checkpoint_every": 1000,
}
#: ~2,000 cells x 500 genes in well under a minute on 2 cores: 15 steps per epoch x 150 epochs at a 10x rate.
DEMO: dict[str, Any] = PAPER | {"learning_rate": 1e-3, "epochs": 150, "checkpoint_every": 200}
#: The reference script's 100 epochs fit a 2-core workstation; the realism monitor is logged.
WORKSTATION: dict[str, Any] = PAPER | {"epochs": 100, "monitor_every": 200, "max_minutes": 10.0}

PARAMS = LOOP_PARAMS | {
    "latent_dim": integer(),
    "encoder_layers": integers(),
    "decoder_layers": integers(),
    "dropout": fraction(),
    "beta": number(),
    "tc_form": choice(TC_FORMS),
    "batchnorm_dropout": choice(LAYER_MODES),
    "scale_genes": flag(),
    "batch_size": integer(2),  # batch normalisation
    "learning_rate": number(),
    "epochs": integer(),
    "max_steps": integer(optional=True),
}

VAE = ModelSpec(
    "vae",
    "scsynth_core.models.vae:VAE",
    "log1p",
    latent_param="latent_dim",
    presets={"paper": PAPER, "workstation": WORKSTATION, "demo": DEMO},
    params=PARAMS,
)
BETATCVAE = ModelSpec(
    "betatcvae",
    "scsynth_core.models.vae:BetaTCVAE",
    "log1p",
    latent_param="latent_dim",
    presets={
        "paper": PAPER | {"beta": 10.0},
        "workstation": WORKSTATION | {"beta": 10.0},
        "demo": DEMO | {"beta": 10.0},
    },
    params=PARAMS,
)
