"""scsynth_core: deep generative models for single-cell RNA-seq, reproduced on modern software.

The library behind the scsynth Snakemake workflow. Submodules:

- :mod:`scsynth_core.data`: downloads, readers, preparation recipes, splits.
- :mod:`scsynth_core.models`: the :class:`~scsynth_core.models.base.GenerativeModel` interface and its families.
- :mod:`scsynth_core.metrics`: the papers' evaluation metrics.
- :mod:`scsynth_core.plots`: one function per figure type.
- :mod:`scsynth_core.experiments`: one module per experiment (realism, augmentation, pilot, ...), the steps its
  rules call; :mod:`scsynth_core.steps` holds the generic stage steps.

Submodules are imported lazily so that ``import scsynth_core`` stays cheap (no torch, no scanpy).
"""

from __future__ import annotations

import importlib

from scsynth_core.errors import ScsynthError

#: The one place of the version: pyproject.toml reads it ([tool.setuptools.dynamic]), `scsynth --version` prints it.
__version__ = "0.1.0"
__all__ = ["ScsynthError", "__version__", "data", "experiments", "metrics", "models", "plots"]


def __getattr__(name: str):
    if name in {"data", "experiments", "models", "metrics", "plots"}:
        return importlib.import_module(f"scsynth_core.{name}")
    raise AttributeError(f"module 'scsynth_core' has no attribute {name!r}")
