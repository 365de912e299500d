"""Semantic checks of a workflow configuration, after JSON-Schema validation of types.

The schema (``config/schema.yaml``) checks types and fills defaults; this module checks what a schema cannot:
that every model is registered, every dataset is in the registry, and every preset and hyperparameter exists.
Each problem is a one-line :class:`~scsynth_core.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scsynth_core.errors import ConfigError


def model_settings(config: Mapping[str, Any], model: str, dataset: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Preset, hyperparameter overrides and step limit for ``model`` (defaults from the top-level preset).

    ``dataset``: the registry entry of the dataset trained on; its ``model_params`` come first, the config's own
    ``models.<model>.params`` override them.
    """
    own = dict(config.get("models", {}).get(model, {}))
    from_dataset = dict((dataset or {}).get("model_params", {}).get(model, {}))
    return {
        "preset": own.get("preset", config.get("preset", "paper")),
        "params": from_dataset | dict(own.get("params", {})),
        "max_steps": own.get("max_steps"),
    }


def check_config(config: Mapping[str, Any], registry: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for unknown models, datasets, presets or hyperparameters."""
    from scsynth_core.models import available_models

    known = available_models()
    for experiment in config.get("experiments", []):
        section = config.get(experiment, {})
        for model in section.get("models", []):
            if model not in known:
                raise ConfigError(f"config: {experiment}.models: unknown model '{model}' (available: {', '.join(known)})")
        for dataset in section.get("datasets", []):
            if dataset not in registry:
                raise ConfigError(
                    f"config: {experiment}.datasets: unknown dataset '{dataset}' "
                    f"(registered: {', '.join(sorted(registry))})"
                )
    if "augmentation" in config.get("experiments", []):
        for model in config["augmentation"]["models"]:
            if model in known and (cls := _importable(model)) is not None and not cls.conditional:
                raise ConfigError(
                    f"config: augmentation.models: model '{model}' is not conditional and cannot generate the "
                    "target cluster"
                )
    if "pilot" in config.get("experiments", []):
        for model in config["pilot"]["models"]:
            if model in known and (cls := _importable(model)) is not None and cls.representation != "counts":
                raise ConfigError(
                    f"config: pilot.models: model '{model}' generates {cls.representation} "
                    "values; the pilot experiment compares count matrices"
                )
    if "disentanglement" in config.get("experiments", []):
        for model in config["disentanglement"]["models"]:
            if model in known and (cls := _importable(model)) is not None and getattr(cls, "latent_param", None) is None:
                raise ConfigError(
                    f"config: disentanglement.models: model '{model}' has no latent representation to score "
                    "(models with one: pca, vae, betatcvae)"
                )
    for model in config.get("models", {}):
        if model not in known:
            raise ConfigError(f"config: models: unknown model '{model}' (available: {', '.join(known)})")
    used = {m for e in config.get("experiments", []) for m in config.get(e, {}).get("models", [])}
    if "disentanglement" in config.get("experiments", []):
        used |= set(config["disentanglement"]["code_data_models"])
    if "perturbation" in config.get("experiments", []):
        used.add("michigan")  # the perturbation experiment trains MichiGAN
        dataset = config["perturbation"]["dataset"]
        if dataset != "simulated" and dataset not in registry:
            raise ConfigError(f"config: perturbation.dataset: unknown dataset '{dataset}' (use 'simulated' or one "
                              f"of: {', '.join(sorted(registry))})")
    for dataset, spec in registry.items():
        for model in spec.get("model_params", {}):
            if model not in known:
                raise ConfigError(f"registry: {dataset}.model_params: unknown model '{model}' "
                                  f"(available: {', '.join(known)})")
    for model in sorted(used | set(config.get("models", {}))):
        model_class = _importable(model)
        if model_class is None:
            continue
        settings = model_settings(config, model)
        # Instantiating validates the preset name and every hyperparameter key, without training.
        try:
            model_class(settings["preset"], **settings["params"])
        except ConfigError as exc:
            raise ConfigError(f"config: models.{model}: {exc}") from None
        for dataset in _datasets_of(config, model):
            try:
                model_class(preset=settings["preset"],
                            **model_settings(config, model, registry.get(dataset))["params"])
            except ConfigError as exc:
                raise ConfigError(f"registry: {dataset}.model_params.{model} (with config models.{model}): {exc}") \
                    from None


def _importable(model: str) -> type | None:
    """The model's class, or None where its framework (torch) is not installed in this process.

    A Snakemake process without torch (``envs/analysis.yaml``) still plans and runs the torch-free rules; the
    training rule instantiates the model with the same settings and raises the same errors there.
    """
    from scsynth_core.models import get_model_class

    try:
        return get_model_class(model)
    except ImportError:
        return None


def _datasets_of(config: Mapping[str, Any], model: str) -> list[str]:
    """Datasets a model trains on in this configuration's experiments."""
    return sorted({d for e in config.get("experiments", []) if model in config.get(e, {}).get("models", [])
                   for d in config.get(e, {}).get("datasets", [])})
