"""The model kit's registry: what every registered model is, as plain data readable without importing torch.

One :class:`~scsynth_core.models.specs.kit.ModelSpec` per registry name holds where the class lives, its class
flags, its presets and the type and range of every hyperparameter; each family's are declared in the module of the
same name here (``specs/scgan.py`` for ``models/scgan.py``). The classes take flags and presets from their spec
when they are defined and check its declarations when they are constructed
(:class:`~scsynth_core.models.base.GenerativeModel`); the workflow's config check reads and checks the same specs,
so planning a run (``snakemake -n``) imports no training framework (docs/development.md, "Model kit").
"""

from __future__ import annotations

from scsynth_core.errors import ConfigError
from scsynth_core.models.specs import activa, baselines, classic, flow, michigan, scdbm, scgan, scvi, vae
from scsynth_core.models.specs.kit import FLAGS, ModelSpec

__all__ = ["FLAGS", "SPECS", "ModelSpec", "model_spec"]

#: Registry name -> spec, in the order the models are listed to users.
SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        baselines.UPSAMPLE,
        baselines.NOISE,
        scgan.SCGAN,
        scgan.CSCGAN,
        activa.ACTIVA,
        vae.VAE,
        vae.BETATCVAE,
        michigan.WGANGP,
        michigan.MICHIGAN,
        scdbm.SCDBM,
        classic.PCA,
        classic.GMM,
        scvi.SCVI_POSTERIOR,
        scvi.SCVI_PRIOR,
        flow.LATENTFLOW,
    )
}


def model_spec(name: str) -> ModelSpec:
    """The spec registered as ``name``; unknown names raise a :class:`ConfigError` listing the known ones."""
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown model '{name}' (available: {', '.join(sorted(SPECS))})") from None
