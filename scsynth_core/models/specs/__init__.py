"""What every registered model is, as plain data readable without importing torch: the model kit's registry.

One :class:`ModelSpec` per registry name holds where the class lives and its class flags. The classes take their
flags from here when they are defined (:meth:`GenerativeModel.__init_subclass__
<scsynth_core.models.base.GenerativeModel>`), and the workflow's config check reads them here, so planning a run
(``snakemake -n``) needs no training framework. Hyperparameters (presets, types, ranges) are still declared in the
family modules: docs/development.md, "Model kit".
"""

from __future__ import annotations

from dataclasses import dataclass

from scsynth_core.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its class (``"module:Class"``, imported only when the model is used) and flags.

    ``representation``: what it trains on and generates (``counts``, ``lsn``, ``log1p``); ``conditional``: it
    generates cells of requested labels; ``labels_optional``: a conditional model that can also be fitted without
    labels; ``labels_by_filtering``: label-specific cells are holistic samples kept by a classifier (no imposed
    composition); ``reads_rows``: trains from cells whose matrix stays on disk; ``latent_param``: the
    hyperparameter that sizes its latent code, None where it has none (disentanglement needs one).
    """

    name: str
    target: str
    representation: str
    conditional: bool = False
    labels_optional: bool = False
    labels_by_filtering: bool = False
    reads_rows: bool = False
    latent_param: str | None = None


#: The class flags a model class receives from its spec.
FLAGS = ("representation", "conditional", "labels_optional", "labels_by_filtering", "reads_rows", "latent_param")


_M = "scsynth_core.models."

SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("upsample", _M + "baselines:UpsampleModel", "counts", conditional=True, labels_optional=True),
    ModelSpec("noise", _M + "baselines:NoiseModel", "counts"),
    ModelSpec("scgan", _M + "scgan:ScGAN", "lsn", reads_rows=True),
    ModelSpec("cscgan", _M + "scgan:CscGAN", "lsn", conditional=True, reads_rows=True),
    ModelSpec("activa", _M + "activa:ACTIVA", "lsn", conditional=True, labels_optional=True,
              labels_by_filtering=True),
    ModelSpec("vae", _M + "vae:VAE", "log1p", latent_param="latent_dim"),
    ModelSpec("betatcvae", _M + "vae:BetaTCVAE", "log1p", latent_param="latent_dim"),
    ModelSpec("wgangp", _M + "michigan:WGANGP", "log1p"),
    ModelSpec("michigan", _M + "michigan:MichiGAN", "log1p"),
    ModelSpec("scdbm", _M + "scdbm:ScDBM", "counts"),
    ModelSpec("pca", _M + "classic:PPCAModel", "log1p", latent_param="n_latent"),
    ModelSpec("gmm", _M + "classic:GMMModel", "log1p"),
    ModelSpec("scvi_posterior", _M + "scvi:ScviPosterior", "counts"),
    ModelSpec("scvi_prior", _M + "scvi:ScviPrior", "counts"),
    ModelSpec("latentflow", _M + "flow:LatentFlow", "counts", conditional=True, labels_optional=True),
)}


def model_spec(name: str) -> ModelSpec:
    """The spec registered as ``name``; unknown names raise a :class:`ConfigError` listing the known ones."""
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown model '{name}' (available: {', '.join(sorted(SPECS))})") from None
