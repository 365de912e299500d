"""The WGAN-GP and MichiGAN (Yu & Welch 2021) as plain data: presets and hyperparameter types (docs/models.md)."""

from __future__ import annotations

from typing import Any

from scsynth_core.errors import ConfigError
from scsynth_core.models.specs.kit import ModelSpec, choice, fraction, integer, integers, mapping, number, path
from scsynth_core.models.specs.loop import LOOP_DEFAULTS, LOOP_PARAMS
from scsynth_core.models.specs.scgan import CODE_PROJECTIONS, GP_INTERPOLATIONS
from scsynth_core.models.specs.vae import BETATCVAE, LAYER_MODES

OUTPUT_ACTIVATIONS = ("relu", "linear")
CODE_MODES = ("mean", "sample")

GAN_PAPER: dict[str, Any] = LOOP_DEFAULTS | {
    "noise_dim": 128,
    "generator_layers": [256, 512, 1024],
    "critic_layers": [1024, 512, 10],
    "dropout": 0.2,
    "output_activation": "relu",
    "batchnorm_dropout": "active",
    "batch_size": 32,
    "critic_iters": 5,
    "gp_weight": 10.0,
    "gp_interpolation": "per_cell",
    "learning_rate": 1e-4,
    "beta1": 0.9,
    "beta2": 0.999,
    "epochs": 1000,
    "max_steps": None,
    "log_every": 100,
    "monitor_every": 1000,
    "monitor_cells": 3000,
    "checkpoint_every": 1000,
}
#: ~2,000 cells x 500 genes in a few minutes on 2 cores: 62 generator steps per epoch x 50 epochs. The paper's
#: learning rate is kept: at 5e-4 the 10 ReLU units of the critic's last layer died within 250 steps (measured).
GAN_DEMO: dict[str, Any] = GAN_PAPER | {"epochs": 50, "log_every": 20, "monitor_every": 0, "checkpoint_every": 500}
#: At most 10 minutes on 2 CPU cores for up to 5,000 cells x 2,000 genes, measured (docs/results.md, realism):
#: Adam 3e-4 with betas (0.5, 0.9) (monitor kNN AUC 0.86 vs 0.91 at 1,000 steps, RF 0.943 vs 0.962 against the
#: paper's 1e-4 / (0.9, 0.999) on pbmc3k), 3 critic steps per generator step (cheaper, no worse), a weight
#: average of 0.99 and the best monitored weights (at 3e-4 the last weights got worse after ~1,250 steps: RF
#: 0.965 vs 0.943 for the selected ones); 3,000 generator steps (~5.7 steps per CPU second on one thread at 2,000
#: genes: about 9 minutes on one core).
GAN_WORKSTATION: dict[str, Any] = GAN_PAPER | {
    "epochs": 100,
    "max_steps": 3000,
    "max_minutes": 10.0,
    "log_every": 50,
    "learning_rate": 3e-4,
    "beta1": 0.5,
    "beta2": 0.9,
    "critic_iters": 3,
    "monitor_every": 250,
    "monitor_cells": 500,
    "select": "best",
    "ema_decay": 0.99,
    "checkpoint_every": 250,
}
CODES: dict[str, Any] = {
    "noise_dim": 118,
    "code_dim": 10,
    "codes": "mean",
    "code_projection": "identity",
    "vae": {},
    "vae_path": None,
}

GAN_PARAMS = LOOP_PARAMS | {
    "noise_dim": integer(),
    "generator_layers": integers(),
    "critic_layers": integers(),
    "dropout": fraction(),
    "output_activation": choice(OUTPUT_ACTIVATIONS),
    "batchnorm_dropout": choice(LAYER_MODES),
    "batch_size": integer(2),  # batch normalisation
    "critic_iters": integer(),
    "gp_weight": number(),
    "gp_interpolation": choice(GP_INTERPOLATIONS),
    "learning_rate": number(),
    "beta1": fraction(),
    "beta2": fraction(),
    "epochs": integer(),
    "max_steps": integer(optional=True),
}
CODE_PARAMS = {
    "code_dim": integer(),
    "codes": choice(CODE_MODES),
    "code_projection": choice(CODE_PROJECTIONS),
    "vae": mapping(),  # overrides of the inner beta-TCVAE's preset (the same preset name as MichiGAN's)
    "vae_path": path(),  # a saved beta-TCVAE to use instead of training one
}


def codes_fit_critic_and_vae(model: str, p: dict[str, Any], preset: str) -> None:
    """The code's width agrees with the critic and the inner beta-TCVAE, whose settings are checked now, not after
    training starts."""
    if p["code_projection"] == "identity" and p["critic_layers"][-1] != p["code_dim"]:
        raise ConfigError(
            f"model '{model}': code_projection 'identity' needs the last critic layer "
            f"({p['critic_layers'][-1]}) to be code_dim ({p['code_dim']}) wide"
        )
    if p["vae"].get("latent_dim", p["code_dim"]) != p["code_dim"]:
        raise ConfigError(f"model '{model}': vae latent_dim must equal code_dim ({p['code_dim']})")
    BETATCVAE.settings(preset, p["vae"] | {"latent_dim": p["code_dim"]})


WGANGP = ModelSpec(
    "wgangp",
    "scsynth_core.models.michigan:WGANGP",
    "log1p",
    presets={"paper": GAN_PAPER, "workstation": GAN_WORKSTATION, "demo": GAN_DEMO},
    params=GAN_PARAMS,
)
MICHIGAN = ModelSpec(
    "michigan",
    "scsynth_core.models.michigan:MichiGAN",
    "log1p",
    presets={
        "paper": GAN_PAPER | CODES,
        # the beta-TCVAE in 25 epochs at lr 1e-3 (37 s on pbmc3k instead of ~2.5 min): the GAN gets the budget
        "workstation": GAN_WORKSTATION | CODES | {"vae": {"epochs": 25, "learning_rate": 1e-3, "monitor_every": 0}},
        "demo": GAN_DEMO | CODES,
    },
    params=GAN_PARAMS | CODE_PARAMS,
    rules=(codes_fit_critic_and_vae,),
)
