"""Generative models behind one interface (:class:`~scsynth_core.models.base.GenerativeModel`).

``MODELS`` maps registry names to classes; it imports each family lazily, so listing the names
(``available_models()``) costs nothing while ``MODELS["upsample"]`` imports the family that defines it.
"""

from scsynth_core.models.base import MODELS, GenerativeModel, available_models, get_model_class, load_model

__all__ = ["MODELS", "GenerativeModel", "available_models", "get_model_class", "load_model"]
