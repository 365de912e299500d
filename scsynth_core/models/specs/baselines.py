"""The baselines that copy training cells, upsampling (Marouf et al. 2020) and pilot cells plus Poisson noise
(Treppner et al. 2021), as plain data: presets and hyperparameter types (docs/models.md)."""

from __future__ import annotations

from scsynth_core.models.specs.kit import ModelSpec, number

UPSAMPLE = ModelSpec(
    "upsample",
    "scsynth_core.models.baselines:UpsampleModel",
    "counts",
    conditional=True,
    labels_optional=True,
    presets={"paper": {}, "demo": {}},
)
NOISE = ModelSpec(
    "noise",
    "scsynth_core.models.baselines:NoiseModel",
    "counts",
    presets={"paper": {"shape_max": 10.0, "scale_max": 5.0}, "demo": {"shape_max": 10.0, "scale_max": 5.0}},
    params={"shape_max": number(), "scale_max": number()},  # upper ends of uniform draws: 0 means no noise
)
