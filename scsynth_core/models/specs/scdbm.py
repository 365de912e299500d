"""scDBM (Treppner et al. 2021) as plain data: presets and hyperparameter types (docs/models.md)."""

from __future__ import annotations

from typing import Any

from scsynth_core.errors import ConfigError
from scsynth_core.models.specs.kit import ModelSpec, choice, flag, integer, integers, number

#: Hidden-layer size up to which ``p(h1)`` is enumerated (exact sampler) and the exact likelihood is monitored.
EXACT_MAX_HIDDEN = 16
OPTIMIZERS = ("scaled", "sgd")
LR_SCHEDULES = ("standard", "reference")
DISPERSION_MEANS = ("reconstruction", "chains")
SAMPLERS = ("gibbs", "exact")
GIBBS_SCHEMES = ("collapsed", "blocked")

PAPER: dict[str, Any] = {
    "hidden_sizes": [4, 2],
    "pretrain_epochs": [60, 40],
    "finetune_epochs": 10,
    "batch_size": 64,
    "finetune_batch_size": 64,
    "optimizer": "scaled",
    "lr_schedule": "standard",
    "learning_rate": 0.1,
    "learning_rate_rbm2": 0.1,
    "finetune_learning_rate": 0.01,
    "cd_steps": 1,
    "pretrain_chains": None,
    "finetune_particles": 100,
    "finetune_gibbs_steps": 5,
    "finetune_model_term": "chains",
    "meanfield_tol": 1e-3,
    "meanfield_max_iter": 50,
    "theta_init": 0.5,
    "dispersion_every": 5,
    "dispersion_lambda": 1.0,
    "dispersion_iter": 20,
    "dispersion_mean": "reconstruction",
    "finetune_dispersion": False,
    "dispersion_keep_means": True,
    "sampler": "gibbs",
    "gibbs_scheme": "collapsed",
    "burn_in": 50,
    "sample_chains": None,
    "thinning": 1,
    "monitor_cells": 1000,
    "checkpoint_every": 10,
    "max_steps": None,
}
SUPPLEMENT: dict[str, Any] = PAPER | {
    "hidden_sizes": [64, 16],
    "dispersion_lambda": 2.5,
    "batch_size": 16,
    "finetune_batch_size": 16,
    "burn_in": 30,
}
DEMO: dict[str, Any] = PAPER | {
    "pretrain_epochs": [20, 10],
    "finetune_epochs": 5,
    "checkpoint_every": 5,
}

PARAMS = {
    "hidden_sizes": integers(length=2),
    "pretrain_epochs": integers(0, length=2),
    "finetune_epochs": integer(0),
    "batch_size": integer(),
    "finetune_batch_size": integer(optional=True),
    "optimizer": choice(OPTIMIZERS),
    "lr_schedule": choice(LR_SCHEDULES),
    "learning_rate": number(),
    "learning_rate_rbm2": number(),
    "finetune_learning_rate": number(),
    "cd_steps": integer(),
    "pretrain_chains": integer(optional=True),
    "finetune_particles": integer(),
    "finetune_gibbs_steps": integer(),
    "finetune_model_term": choice(("chains", "exact")),
    "meanfield_tol": number(low_open=True),
    "meanfield_max_iter": integer(),
    "theta_init": number(low_open=True),
    "dispersion_every": integer(),
    "dispersion_lambda": number(),
    "dispersion_iter": integer(),
    "dispersion_mean": choice(DISPERSION_MEANS),
    "finetune_dispersion": flag(),
    "dispersion_keep_means": flag(),
    "sampler": choice(SAMPLERS),
    "gibbs_scheme": choice(GIBBS_SCHEMES),
    "burn_in": integer(0),
    "sample_chains": integer(optional=True),
    "thinning": integer(),
    "monitor_cells": integer(),
    "checkpoint_every": integer(),
    "max_steps": integer(optional=True),
}


def exact_needs_few_hidden_units(model: str, p: dict[str, Any], preset: str) -> None:
    """The exact sampler and model term enumerate all 2^H1 states of the first hidden layer."""
    for key, value in (("sampler", "exact"), ("finetune_model_term", "exact")):
        if p[key] == value and p["hidden_sizes"][0] > EXACT_MAX_HIDDEN:
            raise ConfigError(
                f"model '{model}': {key} 'exact' enumerates 2^H1 states; needs hidden_sizes[0] "
                f"<= {EXACT_MAX_HIDDEN}, got {p['hidden_sizes'][0]}"
            )


SCDBM = ModelSpec(
    "scdbm",
    "scsynth_core.models.scdbm.model:ScDBM",
    "counts",
    presets={"paper": PAPER, "demo": DEMO, "paper_supplement": SUPPLEMENT},
    params=PARAMS,
    rules=(exact_needs_few_hidden_units,),
)
