"""The classic baselines of MichiGAN's comparison (Yu & Welch 2021), probabilistic PCA and a Gaussian mixture on
principal components, as plain data: presets and hyperparameter types (docs/models.md)."""

from __future__ import annotations

from scsynth_core.models.specs.kit import ModelSpec, choice, choices, flag, integer, integers, number

COVARIANCE_TYPES = ("spherical", "tied", "diag", "full")

PCA = ModelSpec(
    "pca",
    "scsynth_core.models.classic:PPCAModel",
    "log1p",
    latent_param="n_latent",
    presets={
        "paper": {"n_latent": 10, "clip_at_zero": False, "scale_genes": False},
        "demo": {"n_latent": 10, "clip_at_zero": False, "scale_genes": False},
    },
    params={"n_latent": integer(), "clip_at_zero": flag(), "scale_genes": flag()},  # n_latent < genes: fit checks
)
GMM = ModelSpec(
    "gmm",
    "scsynth_core.models.classic:GMMModel",
    "log1p",
    presets={
        "paper": {
            "n_components": "bic",
            "bic_components": [*range(1, 11), 15, 20, 25, 30, 40, 50],
            "covariance_types": list(COVARIANCE_TYPES),
            "covariance_type": "full",
            "n_pcs": 50,
            "residual_noise": True,
            "max_iter": 100,
            "n_init": 1,
            "reg_covar": 1e-6,
            "clip_at_zero": False,
        },
        "demo": {
            "n_components": 10,
            "bic_components": [*range(1, 11)],
            "covariance_types": ["full"],
            "covariance_type": "full",
            "n_pcs": 20,
            "residual_noise": True,
            "max_iter": 100,
            "n_init": 1,
            "reg_covar": 1e-6,
            "clip_at_zero": False,
        },
    },
    params={
        "n_components": integer(also=("bic",)),
        "bic_components": integers(),
        "covariance_types": choices(COVARIANCE_TYPES),
        "covariance_type": choice(COVARIANCE_TYPES),
        "n_pcs": integer(),  # at most the genes: fit checks
        "residual_noise": flag(),
        "max_iter": integer(),
        "n_init": integer(),
        "reg_covar": number(),
        "clip_at_zero": flag(),
    },
)
