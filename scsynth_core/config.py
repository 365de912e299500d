"""Checks of a workflow configuration: JSON-Schema types and defaults, then what a schema cannot check.

:func:`validate_config` checks types against the schema (``config/schema.yaml``) and fills defaults;
:func:`check_config` checks that every model is registered, every dataset is in the registry, and every preset
and hyperparameter exists with a value of the declared type and range (from the torch-free model specs,
:mod:`scsynth_core.models.specs`: a dry run imports no training framework). Each problem is a one-line
:class:`~scsynth_core.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scsynth_core.errors import ConfigError

#: JSON-Schema scalar types a command-line string may stand for, and the Python values that satisfy them.
_SCALAR_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def workflow_file(key: str, path: str, workflow_dir: str | os.PathLike) -> str:
    """The file a config ``key`` names: ``path`` itself when it is absolute or exists relative to the working
    directory, else the same relative path inside the workflow's own folder ``workflow_dir``.

    So a project that uses scsynth as a Snakemake ``module`` from another directory finds scsynth's registry
    without copying it, while a file of the user's own (in the working directory) wins. The path is returned as
    given where it is found as given, so the rules' parameters, and with them Snakemake's re-run checks, do not
    change with where the workflow lies.
    """
    if os.path.isabs(path) or os.path.exists(path):
        return path
    inside = os.path.join(workflow_dir, path)
    if os.path.exists(inside):
        return inside
    raise ConfigError(
        f"config: {key}: '{path}' exists neither in the working directory ({os.getcwd()}) nor in the "
        f"workflow's directory ({workflow_dir})"
    )


def validate_config(config: dict[str, Any], schema_path: str | os.PathLike) -> None:
    """Check ``config`` against the JSON schema in place: coerce command-line strings, fill defaults.

    Snakemake hands nested ``--config`` values (``'realism={seeds: [1]}'``) over as strings; where the schema
    expects a number, boolean or null and the string reads as one in YAML, it is replaced by that value (as a
    config file would have given it), and likewise for ``models.<name>.params`` against the preset's values.
    The first violation raises a one-line :class:`ConfigError` naming the key path, the value and what is
    expected, e.g. ``config: realism.seeds[0]: 'x' is not of type 'integer' (expected an integer >= 0)``.
    """
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    _coerce(config, schema)
    validator = _filling_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        # One value failing several keywords (type and enum) is one problem: show its type error, count the rest.
        here = [e for e in errors if e.absolute_path == errors[0].absolute_path]
        shown = next((e for e in here if e.validator == "type"), here[0])
        others = len(errors) - len(here)
        raise ConfigError(_error_line(shown) + (f" (and {others} more error(s))" if others else ""))
    _coerce_model_params(config)


def _yaml_scalar(text: str) -> Any:
    """``text`` read as a YAML value (``'1'`` -> 1, ``'true'`` -> True), or unchanged where it is no valid YAML."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with strings replaced, in place, by the number, boolean or null the schema expects there."""
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key in value:
            sub = props.get(key, extra)
            if isinstance(sub, Mapping):
                value[key] = _coerce(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        value[:] = [_coerce(v, schema["items"]) for v in value]
    elif isinstance(value, str):
        types = schema.get("type", [])
        types = [types] if isinstance(types, str) else types
        if "string" not in types and any(t in _SCALAR_TYPES for t in types):
            parsed = _yaml_scalar(value)
            if any(_SCALAR_TYPES[t](parsed) for t in types if t in _SCALAR_TYPES):
                return parsed
    return value


def _coerce_model_params(config: dict[str, Any]) -> None:
    """Command-line strings in ``models.<name>.params`` as the type of the preset's value (the schema has none)."""
    from scsynth_core.models.specs import SPECS

    for model, settings in config.get("models", {}).items():
        params = settings.get("params")
        if not params or model not in SPECS:  # an unknown model: check_config reports it
            continue
        preset = SPECS[model].presets.get(settings.get("preset", config.get("preset", "paper")), {})
        for key, value in params.items():
            if key in preset:
                params[key] = _like(value, preset[key])


def _like(value: Any, default: Any) -> Any:
    """A string ``value`` as the number or boolean ``default`` is (element-wise for lists), else unchanged."""
    if isinstance(value, list) and isinstance(default, list) and default:
        return [_like(v, default[0]) for v in value]
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    parsed = _yaml_scalar(value)
    if isinstance(default, bool):
        return parsed if isinstance(parsed, bool) else value
    return parsed if isinstance(default, (int, float)) and _SCALAR_TYPES["number"](parsed) else value


def _filling_defaults(validator_class):
    """A validator class that fills each object's missing keys with the schema's defaults while validating."""
    import jsonschema

    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def _error_line(error) -> str:
    """One line: the key path (``realism.seeds[0]``), jsonschema's message (it shows the value) and what fits."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    expected = ""
    if error.validator in ("type", "pattern"):
        expected = f" (expected {_describe(error.schema)})"
    elif error.validator == "additionalProperties" and "properties" in error.schema:
        expected = f" (known keys: {', '.join(error.schema['properties'])})"
    return f"config: {path + ': ' if path else ''}{error.message}{expected}"


def _describe(schema: Mapping[str, Any]) -> str:
    """What a schema accepts, in words: ``an integer >= 0``, ``a list, each item one of: umap, tsne``."""
    if "enum" in schema:
        return "one of: " + ", ".join(map(str, schema["enum"]))
    if "pattern" in schema:
        return schema.get("description") or f"text matching {schema['pattern']}"
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    words = {
        "integer": "an integer",
        "number": "a number",
        "string": "text",
        "boolean": "true or false",
        "object": "a mapping",
        "null": "null",
        "array": "a list",
    }
    text = " or ".join(words.get(t, t) for t in types) or "a value"
    bounds = [
        f"{op} {schema[key]}"
        for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in schema
    ]
    if bounds:
        text += " " + " and ".join(bounds)
    if "array" in types and isinstance(schema.get("items"), Mapping):
        text += f", each item {_describe(schema['items'])}"
    return text


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
    from scsynth_core.experiments.pilot import MODEL_VARIANTS
    from scsynth_core.models.specs import SPECS, model_spec

    known = sorted(SPECS)
    for experiment in config.get("experiments", []):
        section = config.get(experiment, {})
        for model in section.get("models", []):
            if model not in known and not (experiment == "pilot" and model in MODEL_VARIANTS):
                raise ConfigError(
                    f"config: {experiment}.models: unknown model '{model}' (available: {', '.join(known)})"
                )
        for dataset in section.get("datasets", []):
            if dataset not in registry:
                raise ConfigError(
                    f"config: {experiment}.datasets: unknown dataset '{dataset}' "
                    f"(registered: {', '.join(sorted(registry))})"
                )
    if "realism" in config.get("experiments", []) and "papers" not in config["realism"].get("metrics", ["papers"]):
        raise ConfigError(
            f"config: realism.metrics: {config['realism']['metrics']} must include 'papers' (the "
            "summary, leaderboard and figures are built on the papers' panel); add today's groups "
            "after it, e.g. [papers, wasserstein, prdc]"
        )
    if "augmentation" in config.get("experiments", []):
        for model in config["augmentation"]["models"]:
            if model in known and not SPECS[model].conditional:
                raise ConfigError(
                    f"config: augmentation.models: model '{model}' is not conditional and cannot generate the "
                    "target cluster"
                )
    if "pilot" in config.get("experiments", []):
        for model in config["pilot"]["models"]:
            if model in known and SPECS[model].representation != "counts":
                raise ConfigError(
                    f"config: pilot.models: model '{model}' generates {SPECS[model].representation} "
                    "values; the pilot experiment compares count matrices"
                )
    if "disentanglement" in config.get("experiments", []):
        for model in config["disentanglement"]["models"]:
            if model in known and SPECS[model].latent_param is None:
                raise ConfigError(
                    f"config: disentanglement.models: model '{model}' has no latent representation to score "
                    "(models with one: pca, vae, betatcvae)"
                )
    for model in config.get("models", {}):
        if model not in known:
            raise ConfigError(f"config: models: unknown model '{model}' (available: {', '.join(known)})")
    used = {m for e in config.get("experiments", []) for m in config.get(e, {}).get("models", [])}
    used = {MODEL_VARIANTS[m][0] if m in MODEL_VARIANTS else m for m in used}  # a pilot variant's model
    if "disentanglement" in config.get("experiments", []):
        used |= set(config["disentanglement"]["code_data_models"])
    if "perturbation" in config.get("experiments", []):
        used.add("michigan")  # the perturbation experiment trains MichiGAN
        dataset = config["perturbation"]["dataset"]
        if dataset != "simulated" and dataset not in registry:
            raise ConfigError(
                f"config: perturbation.dataset: unknown dataset '{dataset}' (use 'simulated' or one "
                f"of: {', '.join(sorted(registry))})"
            )
    for dataset, spec in registry.items():
        for model in spec.get("model_params", {}):
            if model not in known:
                raise ConfigError(
                    f"registry: {dataset}.model_params: unknown model '{model}' (available: {', '.join(known)})"
                )
    for model in sorted(used | set(config.get("models", {}))):
        spec = model_spec(model)
        settings = model_settings(config, model)
        # The spec checks the preset name and every hyperparameter as the model class will, without importing it.
        try:
            spec.settings(settings["preset"], settings["params"])
        except ConfigError as exc:
            raise ConfigError(f"config: models.{model}: {exc}") from None
        for dataset in _datasets_of(config, model):
            try:
                spec.settings(settings["preset"], model_settings(config, model, registry.get(dataset))["params"])
            except ConfigError as exc:
                raise ConfigError(
                    f"registry: {dataset}.model_params.{model} (with config models.{model}): {exc}"
                ) from None


def conditional_models(models: list[str]) -> list[str]:
    """The models that generate cells of requested clusters (the ``conditional`` flag of their spec; no model
    class is imported)."""
    from scsynth_core.models.specs import model_spec

    return [model for model in models if model_spec(model).conditional]


def _datasets_of(config: Mapping[str, Any], model: str) -> list[str]:
    """Datasets a model trains on in this configuration's experiments."""
    return sorted(
        {
            d
            for e in config.get("experiments", [])
            if model in config.get(e, {}).get("models", [])
            for d in config.get(e, {}).get("datasets", [])
        }
    )
