"""The scVI samplers (Lopez et al. 2018; scvi-tools) as plain data: presets and hyperparameter types
(docs/models.md)."""

from __future__ import annotations

from typing import Any

from scsynth_core.errors import ConfigError
from scsynth_core.models.specs.kit import ModelSpec, choice, flag, integer, number
from scsynth_core.models.specs.loop import LOOP_DEFAULTS, LOOP_PARAMS

GENE_LIKELIHOODS = ("nb", "zinb", "poisson")
DISPERSIONS = ("gene", "gene-cell")
LIBRARIES = ("prior", "observed")
BATCHNORM_STATS = ("running", "recompute")

#: The shared loop's hyperparameters that apply to scvi-tools' trainer (``monitor_every`` counts epochs; scVI
#: monitors on its own validation split, so ``validation_fraction`` is ``1 - train_size``; no weight average).
LOOP_KEYS = ("max_minutes", "monitor_every", "monitor_cells", "select", "patience")

PAPER: dict[str, Any] = {key: LOOP_DEFAULTS[key] for key in LOOP_KEYS} | {
    "n_hidden": 64,
    "n_latent": 14,
    "n_layers": 2,
    "dropout_rate": 0.1,
    "gene_likelihood": "nb",
    "dispersion": "gene",
    "use_observed_lib_size": False,
    "learning_rate": 0.01,
    "max_epochs": 200,
    "n_epochs_kl_warmup": 75,
    "batch_size": 36,
    "train_size": 0.7,
    "max_steps": None,
    "batchnorm_stats": "running",
    "monitor_every": 10,
}
#: Shorter training (25 epochs, warm-up scaled to 9), same model: well under a minute for 1,000 cells.
DEMO: dict[str, Any] = PAPER | {"max_epochs": 25, "n_epochs_kl_warmup": 9, "monitor_every": 5}
#: The paper's whole training (200 epochs) fits a 2-core workstation; the realism monitor selects the epoch.
WORKSTATION: dict[str, Any] = PAPER | {"max_minutes": 10.0, "select": "best"}

PARAMS = {key: LOOP_PARAMS[key] for key in LOOP_KEYS} | {
    "n_hidden": integer(),
    "n_latent": integer(),
    "n_layers": integer(),
    "dropout_rate": number(0.0, 0.99),
    "gene_likelihood": choice(GENE_LIKELIHOODS),
    "dispersion": choice(DISPERSIONS),
    "use_observed_lib_size": flag(),
    "learning_rate": number(low_open=True),
    "max_epochs": integer(),
    "n_epochs_kl_warmup": integer(0),
    "batch_size": integer(2),
    "train_size": number(0.0, 1.0, low_open=True),
    "max_steps": integer(optional=True),
    "batchnorm_stats": choice(BATCHNORM_STATS),
}


def prior_library_needs_fitted_prior(model: str, p: dict[str, Any], preset: str) -> None:
    """Library sizes from the prior need the prior scVI fits only without observed library sizes."""
    if p["library"] == "prior" and p["use_observed_lib_size"]:
        raise ConfigError(
            f"model '{model}': library 'prior' needs use_observed_lib_size false (with observed library "
            "sizes scVI fits no library prior); use library 'observed' instead"
        )


SCVI_POSTERIOR = ModelSpec(
    "scvi_posterior",
    "scsynth_core.models.scvi:ScviPosterior",
    "counts",
    presets={"paper": PAPER, "workstation": WORKSTATION, "demo": DEMO},
    params=PARAMS,
)
SCVI_PRIOR = ModelSpec(
    "scvi_prior",
    "scsynth_core.models.scvi:ScviPrior",
    "counts",
    presets={
        "paper": PAPER | {"library": "prior"},
        "workstation": WORKSTATION | {"library": "prior"},
        "demo": DEMO | {"library": "prior"},
    },
    params=PARAMS | {"library": choice(LIBRARIES)},
    rules=(prior_library_needs_fitted_prior,),
)
